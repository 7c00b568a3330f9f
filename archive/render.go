package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// VOI LUT functions (PS3.3 C.11.2.1.3).
const (
	VOILinear      = "LINEAR"
	VOILinearExact = "LINEAR_EXACT"
	VOISigmoid     = "SIGMOID"
)

// Window is a VOI LUT window (PS3.3 C.11.2.1.2): the centre and width in
// modality units (after Rescale Slope and Intercept) and the function.
type Window struct {
	Center, Width float64
	Function      string // VOILinear (default), VOILinearExact or VOISigmoid
}

// RenderOptions choose what Render draws.
type RenderOptions struct {
	Frame  int     // frame number from 1; 0 is the first
	Window *Window // nil: the image's own first window, else its value range
	// Width and Height, when set, bound the size of the result (PS3.18
	// §8.3.5.1.2 viewport): the image is scaled down to fit, keeping its
	// aspect ratio, never up.
	Width, Height int
}

// ErrNotRenderable wraps the errors of Render for images it cannot draw
// (not monochrome, no pixel data, an unsupported layout).
var ErrNotRenderable = errors.New("cannot render this image")

// SetDecompressor names the program that decodes compressed pixel data for
// rendering: gdcmconv (libgdcm-tools), run as `gdcmconv --raw IN OUT`. An
// empty path (the default) leaves compressed images unrendered
// (ErrCompressed).
func (a *Archive) SetDecompressor(path string) { a.gdcmconv = path }

// Render draws a frame of a monochrome instance as 8-bit greys: the stored
// values through the Modality LUT (Rescale Slope and Intercept, PS3.3
// C.11.1), the VOI LUT window (PS3.3 C.11.2.1.2, LINEAR, LINEAR_EXACT or
// SIGMOID) and, for MONOCHROME1 or an INVERSE Presentation LUT Shape,
// inversion. Compressed pixel data are first decoded by the decompressor
// (SetDecompressor), or give ErrCompressed.
func (a *Archive) Render(ctx context.Context, in bildrum.Instance, opt RenderOptions) (*image.Gray, error) {
	h, ra, closer, err := a.Header(ctx, in)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if h.Pixel != nil && h.Pixel.Encapsulated {
		if a.gdcmconv == "" {
			return nil, ErrCompressed
		}
		dir, err := os.MkdirTemp("", "bildrum-render-")
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		defer os.RemoveAll(dir)
		src, dst := filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.dcm")
		if err := copyTo(src, io.NewSectionReader(ra, 0, in.Object.Size)); err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		if out, err := exec.CommandContext(ctx, a.gdcmconv, "--raw", src, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w: %s could not decode the %s pixel data: %v: %s", ErrNotRenderable, filepath.Base(a.gdcmconv), h.TransferSyntaxUID, err, strings.TrimSpace(string(out)))
		}
		f, err := os.Open(dst)
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		if h, err = ReadHeader(f, st.Size()); err != nil {
			return nil, fmt.Errorf("render: decoded file: %w", err)
		}
		ra = f
	}
	return renderFrame(h, ra, opt)
}

func copyTo(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// renderFrame draws a frame of native pixel data.
func renderFrame(h *Header, ra io.ReaderAt, opt RenderOptions) (*image.Gray, error) {
	photometric := h.String(tag.PhotometricInterpretation)
	if photometric != "MONOCHROME1" && photometric != "MONOCHROME2" {
		return nil, fmt.Errorf("%w: Photometric Interpretation %q: only MONOCHROME1 and MONOCHROME2 images are rendered", ErrNotRenderable, photometric)
	}
	frame := max(opt.Frame, 1)
	off, n, err := h.Frame(frame)
	if err != nil {
		return nil, err
	}
	rows, _ := h.Int(tag.Rows)
	cols, _ := h.Int(tag.Columns)
	bits, _ := h.Int(tag.BitsAllocated)
	stored, ok := h.Int(tag.BitsStored)
	if !ok || stored < 1 || stored > bits {
		stored = bits
	}
	signed, _ := h.Int(tag.PixelRepresentation)
	if bits != 8 && bits != 16 {
		return nil, fmt.Errorf("%w: Bits Allocated %d: only 8 and 16 are rendered", ErrNotRenderable, bits)
	}
	data := make([]byte, n)
	if _, err := ra.ReadAt(data, off); err != nil {
		return nil, fmt.Errorf("render: read frame %d: %w", frame, err)
	}

	slope, intercept := 1.0, 0.0
	if s := h.Floats(tag.RescaleSlope); len(s) > 0 && s[0] != 0 {
		slope = s[0]
	}
	if i := h.Floats(tag.RescaleIntercept); len(i) > 0 {
		intercept = i[0]
	}
	// The stored values, masked to Bits Stored and sign-extended.
	var bo binary.ByteOrder = binary.LittleEndian
	if h.TransferSyntaxUID == ExplicitVRBigEndian {
		bo = binary.BigEndian
	}
	mask := uint32(1)<<stored - 1
	value := func(raw uint32) float64 {
		v := int64(raw & mask)
		if signed == 1 && v&(1<<(stored-1)) != 0 {
			v -= 1 << stored
		}
		return float64(v)*slope + intercept
	}
	domain := 1 << bits
	w := opt.Window
	if w == nil {
		w = fileWindow(h)
	}
	if w == nil {
		// No window: the range of the frame's values.
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := 0; i+bits/8 <= len(data); i += bits / 8 {
			raw := uint32(data[i])
			if bits == 16 {
				raw = uint32(bo.Uint16(data[i:]))
			}
			v := value(raw)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		w = &Window{Center: (lo + hi + 1) / 2, Width: hi - lo + 1}
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	invert := photometric == "MONOCHROME1" || h.String(tag.PresentationLUTShape) == "INVERSE"
	lut := make([]uint8, domain)
	for raw := range lut {
		y := w.apply(value(uint32(raw)))
		if invert {
			y = 255 - y
		}
		lut[raw] = y
	}
	img := image.NewGray(image.Rect(0, 0, cols, rows))
	if bits == 16 {
		for i := range img.Pix {
			img.Pix[i] = lut[bo.Uint16(data[2*i:])]
		}
	} else {
		for i := range img.Pix {
			img.Pix[i] = lut[data[i]]
		}
	}
	if opt.Width > 0 || opt.Height > 0 {
		return fit(img, opt.Width, opt.Height), nil
	}
	return img, nil
}

// fileWindow returns the first window of the file (PS3.3 C.11.2), or nil.
func fileWindow(h *Header) *Window {
	c, w := h.Floats(tag.WindowCenter), h.Floats(tag.WindowWidth)
	if len(c) == 0 || len(w) == 0 {
		return nil
	}
	return &Window{Center: c[0], Width: w[0], Function: h.String(tag.VOILUTFunction)}
}

// check says what is wrong with a window.
func (w *Window) check() error {
	switch strings.ToUpper(w.Function) {
	case "", VOILinear:
		if w.Width < 1 {
			return bildrum.Errorf(bildrum.EINVALID, "window width %g: LINEAR needs a width of at least 1 (PS3.3 C.11.2.1.2.1)", w.Width)
		}
	case VOILinearExact, VOISigmoid:
		if w.Width <= 0 {
			return bildrum.Errorf(bildrum.EINVALID, "window width %g: the width must be positive", w.Width)
		}
	default:
		return bildrum.Errorf(bildrum.EINVALID, "VOI LUT function %q: use LINEAR, LINEAR_EXACT or SIGMOID", w.Function)
	}
	return nil
}

// apply maps a modality value x to an output grey 0–255 (PS3.3 C.11.2.1.2).
func (w *Window) apply(x float64) uint8 {
	const ymin, ymax = 0, 255
	c, wd := w.Center, w.Width
	var y float64
	switch strings.ToUpper(w.Function) {
	case VOISigmoid:
		y = (ymax-ymin)/(1+math.Exp(-4*(x-c)/wd)) + ymin
	case VOILinearExact:
		switch {
		case x <= c-wd/2:
			y = ymin
		case x > c+wd/2:
			y = ymax
		default:
			y = ((x-c)/wd+0.5)*(ymax-ymin) + ymin
		}
	default:
		switch {
		case x <= c-0.5-(wd-1)/2:
			y = ymin
		case x > c-0.5+(wd-1)/2:
			y = ymax
		default:
			y = ((x-(c-0.5))/(wd-1)+0.5)*(ymax-ymin) + ymin
		}
	}
	return uint8(math.Round(math.Max(ymin, math.Min(ymax, y))))
}

// fit scales img down to fit within width × height (0: unbounded),
// averaging the source pixels each target pixel covers.
func fit(img *image.Gray, width, height int) *image.Gray {
	sw, sh := img.Rect.Dx(), img.Rect.Dy()
	scale := 1.0
	if width > 0 {
		scale = math.Min(scale, float64(width)/float64(sw))
	}
	if height > 0 {
		scale = math.Min(scale, float64(height)/float64(sh))
	}
	if scale >= 1 {
		return img
	}
	dw, dh := max(1, int(math.Round(float64(sw)*scale))), max(1, int(math.Round(float64(sh)*scale)))
	out := image.NewGray(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		y0, y1 := y*sh/dh, max((y+1)*sh/dh, y*sh/dh+1)
		for x := 0; x < dw; x++ {
			x0, x1 := x*sw/dw, max((x+1)*sw/dw, x*sw/dw+1)
			sum, n := 0, 0
			for sy := y0; sy < y1; sy++ {
				row := img.Pix[sy*img.Stride:]
				for sx := x0; sx < x1; sx++ {
					sum += int(row[sx])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8((sum + n/2) / n)
		}
	}
	return out
}
