package synth

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
)

// The synthetic detector: a full-field digital mammography detector of
// 3328 × 4096 elements at 70 µm (24 × 29 cm), the size and pitch of the
// common large-field selenium detectors (Hologic Selenia Dimensions and
// its kind). A smaller Width keeps the field of view and scales the pitch.
const (
	detectorColumns = 3328
	detectorRows    = 4096
	detectorPitchMM = 0.07
	fieldWidthMM    = detectorColumns * detectorPitchMM // 232.96
	fieldHeightMM   = detectorRows * detectorPitchMM    // 286.72
)

// The stored pixel ranges: processed (For Presentation) images use 12 of
// their 16 bits, raw (For Processing) images 14, as detectors of this kind do.
const (
	presentationBits = 12
	processingBits   = 14
)

// gridMinMM is the finest step, in mm, at which the tissue is modelled; the
// pixels interpolate it and add their own noise.
const gridMinMM = 0.3

// Linear attenuation coefficients at a mammographic spectrum (about 20 keV
// effective), per mm. Only their ratios matter for the picture: glandular
// tissue and muscle attenuate about 1.6 times as much as fat.
const (
	muFat    = 0.045
	muGland  = 0.074
	muMuscle = 0.078
	muSkin   = 0.080
)

// breastShape is the geometry of one view of one breast, in mm on the
// detector, with u the distance from the chest-wall edge of the image and y
// the distance from its top edge. The image of a left breast has the chest
// wall on its left edge (u = x), of a right breast on its right edge (u
// runs from the right), so R and L views are mirror images as on a
// back-to-back hanging.
type breastShape struct {
	mlo   bool
	right bool

	depth      float64 // chest wall to skin at the nipple line, mm
	yc         float64 // height of the widest point (the nipple line)
	bTop, bBot float64 // semi-axes of the outline above and below yc
	exp        float64 // superellipse exponent of the outline (2 is an ellipse)
	thickness  float64 // compressed thickness, mm

	nippleY, nippleH, nippleW float64 // nipple in profile: height, length, half-width

	pecTop, pecLeft, pecBulge float64 // MLO pectoral muscle: width at the top, height at the chest wall, convexity

	densityBias float64 // shifts the fibroglandular threshold: higher is denser
	glandSpread float64 // half-height of the fibroglandular cone, mm
}

// rowOutline returns the depth of the breast at height y (0 outside) and the
// factor 1/sqrt(1+depth'(y)²) that turns a horizontal distance to the skin
// into a distance along the normal.
func (b *breastShape) rowOutline(y float64) (depth, normal float64) {
	d0 := b.outline(y)
	h := 0.25
	slope := (b.outline(y+h) - b.outline(y-h)) / (2 * h)
	return d0, 1 / math.Sqrt(1+slope*slope)
}

// outline is the breast's depth at height y.
func (b *breastShape) outline(y float64) float64 {
	semi := b.bBot
	if y < b.yc {
		semi = b.bTop
	}
	t := math.Abs(y-b.yc) / semi
	if t >= 1 {
		return 0
	}
	d := b.depth * math.Pow(1-math.Pow(t, b.exp), 1/b.exp)
	dn := (y - b.nippleY) / b.nippleW
	if dn*dn < 16 {
		d += b.nippleH * math.Exp(-dn*dn)
	}
	return d
}

// pectoral returns the depth of the pectoral muscle at height y (0 below it).
func (b *breastShape) pectoral(y float64) float64 {
	if !b.mlo || y >= b.pecLeft {
		return 0
	}
	s := y / b.pecLeft
	return b.pecTop * (1 - s) * (1 + b.pecBulge*s)
}

// newBreastShape draws the geometry of a view from the woman's breast size
// (shared by her views) and the view's own random numbers.
func newBreastShape(r *hashRand, size float64, mlo, right bool, density string) *breastShape {
	b := &breastShape{mlo: mlo, right: right}
	// size in [0,1): small to large breasts; compressed thickness grows with it.
	b.depth = 70 + 85*size + r.norm()*4
	b.thickness = 38 + 30*size + r.norm()*3
	b.exp = 2.0 + 0.5*r.float()
	if !mlo {
		b.yc = fieldHeightMM/2 + r.norm()*6
		half := math.Min(b.depth*(1.15+0.15*r.float()), 0.47*fieldHeightMM)
		b.bTop, b.bBot = half*(1+0.05*r.norm()), half*(1+0.05*r.norm())
		b.nippleY = b.yc + r.norm()*4
	} else {
		b.depth *= 1.05
		b.yc = fieldHeightMM * (0.50 + 0.04*r.norm())
		b.bTop = fieldHeightMM * (0.60 + 0.04*r.float())
		b.bBot = math.Min(fieldHeightMM*(0.33+0.05*r.float()), fieldHeightMM-b.yc-6)
		b.exp = 2.0 + 0.3*r.float()
		b.nippleY = b.yc + 8 + r.norm()*5
		top := b.outline(0)
		b.pecTop = top * (0.55 + 0.2*r.float())
		b.pecLeft = fieldHeightMM * (0.42 + 0.2*r.float())
		b.pecBulge = 0.3 + 0.4*r.float()
	}
	b.depth = math.Min(b.depth, 0.78*fieldWidthMM)
	b.nippleH = 3.5 + 2.5*r.float()
	b.nippleW = 4.5 + 1.5*r.float()
	bias, spread := densityParams(density)
	b.glandSpread = spread * math.Min(b.bTop, b.bBot)
	b.densityBias = bias + 0.12*r.norm()
	return b
}

// densityParams returns the threshold shift and the spread (relative to
// the breast's height) of the fibroglandular tissue that give the share of
// each BI-RADS composition: a almost entirely fatty (< 25 %), b scattered
// (25–50 %), c heterogeneously dense (51–75 %), d extremely dense (> 75 %).
func densityParams(d string) (bias, spread float64) {
	switch d {
	case "a":
		return -0.8, 0.45
	case "c":
		return 0.7, 0.85
	case "d":
		return 1.6, 1.2
	}
	return -0.1, 0.6 // b, and readings not yet recorded
}

// viewPixels is one rendered view: its size and its pixel values, little
// endian 16-bit as they go into Pixel Data.
type viewPixels struct {
	cols, rows int
	spacing    float64 // mm, square
	data       []byte
	// tissueLo and tissueHi bound the values inside the breast (2nd and
	// 99.5th percentiles), for the window.
	tissueLo, tissueHi float64
}

// renderView draws one view at cols × rows pixels of spacing mm into dst,
// 2·cols·rows bytes, little-endian 16-bit as Pixel Data holds them. The
// tissue is a function of tissueSeed and the shape, the pixel noise of
// noiseSeed: a smaller image of the same view is a blurred copy of the
// larger, not another breast. Rows are drawn in parallel bands; each row has
// a random stream of its own, so the result does not depend on the
// scheduling.
func renderView(dst []byte, tissueSeed, noiseSeed uint64, b *breastShape, cols, rows int, spacing float64, forProcessing bool) viewPixels {
	// The tissue is computed on a grid in mm no finer than gridMinMM, and
	// interpolated to the pixels, with quantum noise added per pixel.
	gs := math.Max(spacing, gridMinMM)
	gx := int(math.Ceil(fieldWidthMM/gs)) + 2
	gy := int(math.Ceil(fieldHeightMM/gs)) + 2
	att := tissueGrid(tissueSeed, b, gx, gy, gs, forProcessing)

	bits := presentationBits
	if forProcessing {
		bits = processingBits
	}
	maxv := float64(int(1)<<bits - 1)
	vp := viewPixels{cols: cols, rows: rows, spacing: spacing, data: dst[:2*cols*rows]}
	noiseScale := math.Min(1, detectorPitchMM/spacing) // larger pixels average the noise

	// The grid column and weight of each image column.
	gi := make([]int32, cols)
	gw := make([]float32, cols)
	for col := range cols {
		u := (float64(col) + 0.5) * spacing
		if b.right {
			u = fieldWidthMM - u
		}
		fx := u/gs + 0.5
		gi[col] = int32(fx)
		gw[col] = float32(fx - math.Floor(fx))
	}
	parallelBands(rows, func(r0, r1 int) struct{} {
		for row := r0; row < r1; row++ {
			rng := newHashRand(mix(noiseSeed, uint64(row)))
			fy := ((float64(row)+0.5)*spacing)/gs + 0.5
			j := int(fy)
			wy := float32(fy - float64(j))
			top, bottom := att[j*gx:(j+1)*gx], att[(j+1)*gx:(j+2)*gx]
			line := vp.data[2*cols*row : 2*cols*(row+1)]
			var bits uint64 // four 16-bit uniforms: noise for two pixels
			for col := range cols {
				if col&1 == 0 {
					bits = rng.next()
				} else {
					bits >>= 32
				}
				noise := (float64(bits&0xffff)+float64(bits>>16&0xffff))/65535 - 1
				noise *= 2.449 * noiseScale // triangular, unit standard deviation
				i, wx := gi[col], gw[col]
				var a float64
				if top[i]+top[i+1]+bottom[i]+bottom[i+1] > 0 {
					a0 := top[i] + wx*(top[i+1]-top[i])
					a1 := bottom[i] + wx*(bottom[i+1]-bottom[i])
					a = float64(a0 + wy*(a1-a0))
				}
				var v float64
				if forProcessing {
					v = processingValue(a, noise)
				} else {
					v = presentationValue(a, noise)
				}
				p := uint16(max(0, min(maxv, v+0.5)))
				line[2*col] = byte(p)
				line[2*col+1] = byte(p >> 8)
			}
		}
		return struct{}{}
	})
	// The window comes from the values of every fourth row and column.
	hist := make([]int, int(maxv)+1)
	for row := 0; row < rows; row += 4 {
		line := vp.data[2*cols*row : 2*cols*(row+1)]
		for col := 0; col < cols; col += 4 {
			p := binary.LittleEndian.Uint16(line[2*col:])
			hist[p]++
		}
	}
	vp.tissueLo, vp.tissueHi = tissueRange(hist, backgroundCeiling(forProcessing))
	return vp
}

// parallelBands splits [0, n) into one band per CPU, runs fn on each
// concurrently and returns the results in band order.
func parallelBands[T any](n int, fn func(lo, hi int) T) []T {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/16))
	out := make([]T, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Go(func() { out[w] = fn(lo, hi) })
	}
	wg.Wait()
	return out
}

// tissueRange returns the 2nd and 99.5th percentiles of the values above
// floor (the background), from a histogram.
func tissueRange(hist []int, floor int) (float64, float64) {
	n := 0
	for _, c := range hist[floor:] {
		n += c
	}
	if n == 0 {
		return float64(floor), float64(len(hist) - 1)
	}
	lo, hi := -1, -1
	acc := 0
	for v := floor; v < len(hist); v++ {
		acc += hist[v]
		if lo < 0 && acc >= n/50 {
			lo = v
		}
		if hi < 0 && acc >= n-n/200 {
			hi = v
		}
	}
	return float64(lo), float64(hi)
}

// backgroundCeiling is the highest value the dark background takes.
func backgroundCeiling(forProcessing bool) int {
	if forProcessing {
		return 400
	}
	return 120
}

// The value mappings of the two intents take the grid's attenuation (0 air,
// 1 fat over the full compressed thickness, about 1.65 glandular tissue) and
// a unit noise sample. For Processing keeps the thickness fall-off at the
// breast edge; For Presentation has it mostly equalised (tissueRow), as the
// vendors' processing does.

// presentationValue maps an attenuation to a 12-bit display value.
func presentationValue(a, noise float64) float64 {
	if a <= 0.002 {
		return 40 + 12*noise
	}
	// Fat at about a quarter of the range, glandular tissue at three quarters.
	x := (a - 1) / 0.75 // 0 fat, 0.87 gland, 1 muscle
	v := 1000 + 2400*x + 35*noise*(1+0.5*x)
	if a < 1 {
		// The skin edge, where the tissue thins out.
		v = 40 + (1000-40)*math.Sqrt(a) + 35*noise
	}
	return v
}

// processingValue maps an attenuation to a 14-bit raw (log) value.
// The noise grows with attenuation, as fewer quanta get through: about
// exp(0.6a), to second order.
func processingValue(a, noise float64) float64 {
	return 260 + 5200*a + 40*noise*(1+a*(0.6+0.18*a))
}

// tissueGrid computes the equalised attenuation on a gx × gy grid of
// spacing gs mm, point (i, j) at u = (i-0.5)·gs, y = (j-0.5)·gs.
func tissueGrid(seed uint64, b *breastShape, gx, gy int, gs float64, forProcessing bool) []float32 {
	out := make([]float32, gx*gy)
	margin := 8.0
	var iso, rad, fine, ligs *noiseField
	var wg sync.WaitGroup
	wg.Go(func() {
		iso = newNoiseField(mix(seed, 1), -margin, -margin, fieldWidthMM+margin, fieldHeightMM+margin, 24, gs, 0.62)
	})
	wg.Go(func() {
		rad = newNoiseField(mix(seed, 2), -margin, -math.Pi*arc-margin, 400*stretch+margin, math.Pi*arc+margin, 24, gs, 0.7)
	})
	wg.Go(func() {
		fine = newNoiseField(mix(seed, 3), -margin, -margin, fieldWidthMM+margin, fieldHeightMM+margin, 3, gs, 0.5)
	})
	wg.Go(func() {
		// Ligaments are the zero lines of a smooth field, so they are
		// thin curves, not contours of the fractal.
		ligs = newNoiseField(mix(seed, 4), -margin, -math.Pi*arc-margin, 400*stretch+margin, math.Pi*arc+margin, 16, math.Max(gs, 0.6), 0.4)
	})
	wg.Wait()
	nippleU := b.outline(b.nippleY)
	parallelBands(gy, func(j0, j1 int) struct{} {
		for j := j0; j < j1; j++ {
			tissueRow(out[j*gx:(j+1)*gx], j, gs, b, nippleU, iso, rad, fine, ligs, forProcessing)
		}
		return struct{}{}
	})
	return out
}

// The radial fields are sampled in (distance from the nipple × stretch,
// angle × arc mm): structures stretched along lines to the nipple, as
// ducts and Cooper's ligaments run.
const stretch, arc = 0.3, 80.0

// tissueRow fills row j of the tissue grid.
func tissueRow(out []float32, j int, gs float64, b *breastShape, nippleU float64, iso, rad, fine, ligs *noiseField, forProcessing bool) {
	y := (float64(j) - 0.5) * gs
	depth, normal := b.rowOutline(y)
	pec := b.pectoral(y)
	dyN := y - b.nippleY
	for i := range out {
		u := (float64(i) - 0.5) * gs
		if u < 0 {
			u = 0
		}
		if u >= depth {
			continue
		}
		e := (depth - u) * normal // distance to the skin, mm
		// Thickness: full in the compressed part, a half-circle at
		// the edge.
		t := 1.0
		if r := b.thickness / 2; e < r {
			s := 1 - e/r
			t = math.Sqrt(1 - s*s)
		}
		// Fibroglandular tissue: a cone from the chest wall to the
		// nipple, under a subcutaneous layer of fat and in front of
		// the retromammary fat.
		h := b.glandSpread * (1 - 0.5*u/nippleU)
		c := dyN / h
		env := smoothstep(2, 16, e) * smoothstep(0, 15, u-pec) * math.Exp(-c*c)
		du, dv := nippleU-u, dyN
		rho := math.Hypot(du, dv)
		th := math.Atan2(dv, du)
		n := iso.at(u, y)
		if rho > 6 {
			w := smoothstep(6, 40, rho)
			n = (1-0.4*w)*n + 0.75*w*rad.at(rho*stretch, th*arc)
		}
		n += 0.3 * fine.at(u, y)
		g := env * smoothstep(-1.1, 1.1, n+b.densityBias) * (0.9 + 0.06*max(-1.5, min(1.5, fine.at(y, u))))
		// Cooper's ligaments and vessels: thin strands through the fat.
		lig := math.Max(0, 1-10*math.Abs(ligs.at(rho*stretch, th*arc)))
		lig *= lig
		// Fat is not flat: lobules and septa give it a low-contrast mottle.
		fat := 0.06*fine.at(u*0.7, y*0.7) + 0.22*lig*smoothstep(1, 8, e)*(1-smoothstep(20, 45, e))
		mu := muFat + (muGland-muFat)*(g+(1-g)*fat)
		if pec > 0 {
			// The muscle thickens from its edge into the corner.
			m := smoothstep(-0.6, 0.6, pec-u) * (0.3 + 0.5*smoothstep(0, 50, pec-u))
			mu += m * (muMuscle - mu) * (1 + 0.05*iso.at(u*0.3+y*0.3, y*0.3-u*0.3))
		}
		a := mu / muFat
		// The skin: a rim of about 1.5 mm.
		a += (muSkin/muFat - 1) * 0.5 * smoothstep(0, 0.25, e) * (1 - smoothstep(1.0, 1.8, e))
		if !forProcessing {
			// Peripheral equalisation: the processed image hides
			// most of the thickness fall-off at the edge.
			t = math.Pow(t, 0.12)
		}
		out[i] = float32(a * t)
	}
}

// smoothstep is 0 below e0, 1 above e1, and a smooth ramp between.
func smoothstep(e0, e1, x float64) float64 {
	t := (x - e0) / (e1 - e0)
	if t <= 0 {
		return 0
	}
	if t >= 1 {
		return 1
	}
	return t * t * (3 - 2*t)
}

// noiseField is fractal noise on a grid, made coarse to fine: each level
// doubles the resolution by cubic B-spline subdivision of the last and adds
// white noise of decreasing amplitude, down to the finest step asked for.
// The white noise of a lattice point depends only on the seed, the level and
// the point, so a field of a finer finest step has the same coarse structure.
type noiseField struct {
	x0, y0, step float64
	nx, ny       int
	v            []float32
}

// newNoiseField makes noise over [x0,x1]×[y0,y1] with the coarsest
// structure coarse mm, details down to fine mm, and the amplitude of each
// level gain times that of the one before (0.5–0.7 for tissue-like 1/f^β
// texture, β ≈ 3).
func newNoiseField(seed uint64, x0, y0, x1, y1, coarse, fine, gain float64) *noiseField {
	step := coarse
	nx := int(math.Ceil((x1-x0)/step)) + 3
	ny := int(math.Ceil((y1-y0)/step)) + 3
	f := &noiseField{x0: x0 - step, y0: y0 - step, step: step, nx: nx, ny: ny, v: make([]float32, nx*ny)}
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			f.v[j*nx+i] = float32(hashFloat(mix(seed, 0, uint64(i), uint64(j))))
		}
	}
	amp := 1.0
	for level := uint64(1); f.step/2 >= fine*0.99; level++ {
		f = f.subdivide()
		amp *= gain
		a := float32(amp)
		for j := 0; j < f.ny; j++ {
			for i := 0; i < f.nx; i++ {
				f.v[j*f.nx+i] += a * float32(hashFloat(mix(seed, level, uint64(i), uint64(j))))
			}
		}
	}
	// Normalise to about unit spread.
	var sum, sq float64
	for _, x := range f.v {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	n := float64(len(f.v))
	mean := sum / n
	sd := math.Sqrt(math.Max(sq/n-mean*mean, 1e-12))
	for k := range f.v {
		f.v[k] = float32((float64(f.v[k]) - mean) / sd)
	}
	return f
}

// subdivide halves the step: cubic B-spline subdivision in x, then in y.
func (f *noiseField) subdivide() *noiseField {
	nx, ny := 2*f.nx-1, 2*f.ny-1
	tmp := make([]float32, nx*f.ny)
	for j := 0; j < f.ny; j++ {
		src := f.v[j*f.nx : (j+1)*f.nx]
		dst := tmp[j*nx : (j+1)*nx]
		subdivideLine(dst, src)
	}
	out := &noiseField{x0: f.x0, y0: f.y0, step: f.step / 2, nx: nx, ny: ny, v: make([]float32, nx*ny)}
	col := make([]float32, f.ny)
	res := make([]float32, ny)
	for i := 0; i < nx; i++ {
		for j := 0; j < f.ny; j++ {
			col[j] = tmp[j*nx+i]
		}
		subdivideLine(res, col)
		for j := 0; j < ny; j++ {
			out.v[j*nx+i] = res[j]
		}
	}
	return out
}

// subdivideLine writes the 2n-1 points of one B-spline subdivision of src.
func subdivideLine(dst, src []float32) {
	n := len(src)
	for k := 0; k < n; k++ {
		c := src[k]
		l, r := c, c
		if k > 0 {
			l = src[k-1]
		}
		if k+1 < n {
			r = src[k+1]
		}
		dst[2*k] = (l + 6*c + r) / 8
		if k+1 < n {
			dst[2*k+1] = (c + r) / 2
		}
	}
}

// at returns the field at (x, y) by bilinear interpolation, clamped at the edges.
func (f *noiseField) at(x, y float64) float64 {
	fx := (x - f.x0) / f.step
	fy := (y - f.y0) / f.step
	fx = math.Max(0, math.Min(fx, float64(f.nx-2)))
	fy = math.Max(0, math.Min(fy, float64(f.ny-2)))
	i, j := int(fx), int(fy)
	wx, wy := float32(fx-float64(i)), float32(fy-float64(j))
	k := j*f.nx + i
	a := f.v[k] + wx*(f.v[k+1]-f.v[k])
	c := f.v[k+f.nx] + wx*(f.v[k+f.nx+1]-f.v[k+f.nx])
	return float64(a + wy*(c-a))
}

// mix hashes its arguments into 64 bits (splitmix64 finaliser chained).
func mix(seed uint64, xs ...uint64) uint64 {
	h := seed ^ 0x6a09e667f3bcc909
	for _, x := range xs {
		h = splitmix(h ^ splitmix(x+0x9e3779b97f4a7c15))
	}
	return h
}

func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashFloat maps a hash to [-1, 1).
func hashFloat(h uint64) float64 {
	return float64(h>>11)/(1<<52) - 1
}

// hashRand is a small, fast deterministic random stream (splitmix64).
type hashRand struct{ s uint64 }

func newHashRand(seed uint64) *hashRand { return &hashRand{s: seed} }

func (r *hashRand) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a number in [0, 1).
func (r *hashRand) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// norm returns an approximately standard normal number (sum of four uniforms).
func (r *hashRand) norm() float64 {
	return (r.float() + r.float() + r.float() + r.float() - 2) * math.Sqrt(3)
}
