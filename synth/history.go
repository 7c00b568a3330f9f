package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"

	"github.com/bildrum/bildrum"
)

// simulator makes the screening histories of one region's women within the
// period [from, to]. It holds no state between women.
type simulator struct {
	region   string
	profile  regionProfile
	units    []unitShare
	from, to bildrum.Date
}

func newSimulator(region string, from, to bildrum.Date) simulator {
	return simulator{region: region, profile: regionProfiles[region], units: regionUnits[region], from: from, to: to}
}

// traits are what stays with a woman across her episodes.
type traits struct {
	unit       string
	attendance float64 // her chance of attending an invitation
	densityZ   float64 // her breast density, as a standard normal score
}

// history returns a woman's episodes in the region, oldest first. Her random
// stream depends on the seed and her number only.
func (s simulator) history(w woman) []bildrum.ScreeningEpisode {
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(w.key[0:8]), binary.LittleEndian.Uint64(w.key[8:16])))
	t := traits{
		unit:       s.pickUnit(rng),
		attendance: betaVariate(rng, attendanceKappa*s.profile.attendance, attendanceKappa*(1-s.profile.attendance)),
		densityZ:   rng.NormFloat64(),
	}
	invites, round := s.invitations(rng, w.birth)
	// A woman invited first at 40 in the period has never been screened; an
	// older one is taken to have been screened before it.
	screenedBefore := round > 1
	var out []bildrum.ScreeningEpisode
	for i, inv := range invites {
		e := bildrum.ScreeningEpisode{
			ID:      episodeID(s.region, w.id, inv),
			Person:  w.id,
			Region:  s.region,
			Unit:    t.unit,
			Round:   round + i,
			Invited: inv,
		}
		var next bildrum.Date
		if i+1 < len(invites) {
			next = invites[i+1]
		}
		attends := rng.Float64() < t.attendance
		exam := inv.AddDays(min(rng.IntN(examDelayMaxDays+1), rng.IntN(examDelayMaxDays+1)))
		cancer := false
		if attends && !s.to.Before(exam) {
			age := bildrum.AgeAt(w.birth.Time(), inv.Time())
			cancer = s.screen(rng, &e, exam, age, !screenedBefore, t.densityZ, next)
			screenedBefore = true
		}
		out = append(out, e)
		if cancer {
			break // she leaves screening for clinical follow-up
		}
	}
	return out
}

// pickUnit chooses her screening unit by the units' shares.
func (s simulator) pickUnit(rng *rand.Rand) string {
	total := 0
	for _, u := range s.units {
		total += u.weight
	}
	n := rng.IntN(total)
	for _, u := range s.units[:len(s.units)-1] {
		if n < u.weight {
			return u.Code
		}
		n -= u.weight
	}
	return s.units[len(s.units)-1].Code
}

// invitations returns her invitation dates within the period and the round
// of the first: from her 40th birthday (+0–6 months) or, if she was older at
// the start, a random day of the first interval; then every interval ±30
// days while she is 40–74. Every woman of screening age within the period
// gets at least one: the first date is drawn within her eligible days.
func (s simulator) invitations(rng *rand.Rand, birth bildrum.Date) ([]bildrum.Date, int) {
	at40 := birthday(birth, firstAge)
	last := birthday(birth, lastAge+1).AddDays(-1) // last day she is 74
	if s.to.Before(last) {
		last = s.to
	}
	lo, window := at40, 183 // about six months
	if at40.Before(s.from) {
		lo, window = s.from, s.from.DaysUntil(s.from.AddMonths(s.profile.interval))
	}
	if d := lo.DaysUntil(last) + 1; d < window {
		window = d
	}
	first := lo.AddDays(rng.IntN(window))
	intervalDays := float64(s.profile.interval) * 365.25 / 12
	round := 1 + int(float64(at40.DaysUntil(first))/intervalDays)
	dates := []bildrum.Date{first}
	for {
		next := dates[len(dates)-1].AddMonths(s.profile.interval).AddDays(rng.IntN(2*intervalJitterDays+1) - intervalJitterDays)
		if last.Before(next) {
			return dates, round
		}
		dates = append(dates, next)
	}
}

// episodeID is opaque and stable: the region and 16 hex digits of
// SHA-256(region|person|invitation date), never the number itself.
func episodeID(region string, id bildrum.PersonID, invited bildrum.Date) string {
	sum := sha256.Sum256([]byte(region + "|" + string(id) + "|" + invited.String()))
	return region + "-" + hex.EncodeToString(sum[:8])
}

// screen fills in an attended examination on exam, at age, and what followed
// until the next invitation (zero if none), leaving out whatever falls after
// the period. It reports whether she was diagnosed with cancer.
func (s simulator) screen(rng *rand.Rand, e *bildrum.ScreeningEpisode, exam bildrum.Date, age int, first bool, densityZ float64, next bildrum.Date) bool {
	e.Attended = true
	e.Examined = exam
	e.Views = bildrum.StandardViews()
	e.TechnicalRepeat = rng.Float64() < technicalRepeatRate

	density := drawDensity(rng, densityZ, age)
	pCancer := (cancerPerMilleAt40 + cancerPerMillePerYr*float64(age-firstAge)) / 1000 * densityFactor[density]
	pRecall := s.profile.recall
	if first {
		pCancer *= firstScreenCancerX
		pRecall *= firstScreenRecallX
	}
	u := rng.Float64()
	cancer := u < pCancer
	recalled := u < max(pRecall, pCancer)

	resultDays := resultMinDays + rng.IntN(resultMaxDays-resultMinDays+1)
	if s.to.Before(exam.AddDays(resultDays)) {
		return false // still being read when the period ends
	}
	e.Density = density
	e.Recalled = recalled
	e.ResultDay = exam.AddDays(resultDays)
	e.Reader1, e.Reader2, e.Consensus = readings(rng, recalled, cancer)
	if recalled {
		s.assess(rng, e, exam, resultDays, cancer)
		return cancer
	}
	return s.intervalCancer(rng, e, exam, density, next)
}

// drawDensity draws the BI-RADS density of one screen from her own density
// score, a little noise and her age (younger breasts are denser).
func drawDensity(rng *rand.Rand, z float64, age int) bildrum.Density {
	x := densityWomanWeight*z + densityScreenWeight*rng.NormFloat64() - densitySlopePerYear*float64(age-57)
	switch {
	case x < -densityThresholdUnit:
		return "a"
	case x < 0:
		return "b"
	case x < densityThresholdUnit:
		return "c"
	}
	return "d"
}

// readings returns the two readers' BI-RADS and the consensus. A recall
// needs at least one reader flagging (0, 4 or 5) and the consensus upholding
// it; a few flags are dismissed at consensus; otherwise both read 1 or 2.
func readings(rng *rand.Rand, recalled, cancer bool) (r1, r2, consensus bildrum.BIRADS) {
	r1, r2 = negativeReading(rng), negativeReading(rng)
	if !recalled {
		if rng.Float64() < dismissedFlagRate {
			if rng.IntN(2) == 0 {
				r1 = "0"
			} else {
				r2 = "0"
			}
			return r1, r2, "2"
		}
		return r1, r2, max(r1, r2)
	}
	consensus = pick(rng, []bildrum.BIRADS{"0", "4", "5"}, []float64{0.70, 0.28, 0.02})
	if cancer {
		consensus = pick(rng, []bildrum.BIRADS{"0", "4", "5"}, []float64{0.30, 0.40, 0.30})
	}
	switch v := rng.Float64(); {
	case v < bothReadersFlag:
		r1, r2 = consensus, consensus
	case v < bothReadersFlag+(1-bothReadersFlag)/2:
		r1 = consensus
	default:
		r2 = consensus
	}
	return r1, r2, consensus
}

// negativeReading is a reader's "1" (negative) or "2" (benign finding).
func negativeReading(rng *rand.Rand) bildrum.BIRADS {
	if rng.Float64() < 0.55 {
		return "1"
	}
	return "2"
}

// assess fills in the assessment after a recall and its diagnosis: a cancer,
// a benign biopsy, or nothing found.
func (s simulator) assess(rng *rand.Rand, e *bildrum.ScreeningEpisode, exam bildrum.Date, resultDays int, cancer bool) {
	days := max(assessMinDays+rng.IntN(assessMaxDays-assessMinDays+1), resultDays+3)
	assessed := exam.AddDays(days)
	if s.to.Before(assessed) {
		return
	}
	e.Assessed = assessed
	e.AdditionalImaging = rng.Float64() < additionalImagingP
	if !cancer {
		e.Ultrasound = rng.Float64() < ultrasoundOtherP
		e.NeedleBiopsy = rng.Float64() < needleOtherP
		e.OpenBiopsy = rng.Float64() < openOtherP
		if !e.NeedleBiopsy && !e.OpenBiopsy {
			e.AssessmentBIRADS = pick(rng, []bildrum.BIRADS{"1", "2", "3"}, []float64{0.50, 0.45, 0.05})
			return
		}
		e.AssessmentBIRADS = "4"
		if rng.Float64() < benignBirads3P {
			e.AssessmentBIRADS = "3"
		}
		if d := assessed.AddDays(3 + rng.IntN(12)); !s.to.Before(d) {
			e.Outcome, e.Diagnosed = bildrum.OutcomeBenign, d
		}
		return
	}
	e.Ultrasound = rng.Float64() < ultrasoundCancerP
	preop := rng.Float64() < preopDiagnosisP
	e.NeedleBiopsy = preop || rng.Float64() < needleNotPreopP
	e.AssessmentBIRADS = pick(rng, []bildrum.BIRADS{"4", "5"}, []float64{0.35, 0.65})
	diagnosed := assessed.AddDays(3 + rng.IntN(12))
	if !preop {
		// Diagnosed only by an open surgical biopsy some weeks later.
		diagnosed = assessed.AddDays(14 + rng.IntN(35))
	}
	t := drawTumour(rng, dcisScreenShare, screenMedianMM, screenSigma, metastasisScreenP)
	if s.to.Before(diagnosed) {
		return // diagnosis pending when the period ends
	}
	e.OpenBiopsy, e.PreopDiagnosis = !preop, preop
	e.Detection, e.Diagnosed = bildrum.DetectedAtScreen, diagnosed
	t.record(e)
}

// intervalCancer draws an interval cancer after a negative screen: within 24
// months, before her next invitation and within the period; a third in the
// first year. It reports whether one was recorded.
func (s simulator) intervalCancer(rng *rand.Rand, e *bildrum.ScreeningEpisode, exam bildrum.Date, density bildrum.Density, next bildrum.Date) bool {
	if rng.Float64() >= intervalPerMille[density]/1000 {
		return false
	}
	lo, hi := exam.AddDays(intervalMinDays), exam.AddMonths(12)
	if rng.Float64() >= intervalFirstYearP {
		lo, hi = exam.AddMonths(12), exam.AddMonths(24)
	}
	diagnosed := lo.AddDays(rng.IntN(lo.DaysUntil(hi)))
	t := drawTumour(rng, dcisIntervalShare, intervalMedianMM, intervalSigma, metastasisIntervalP)
	preop := rng.Float64() < preopDiagnosisP
	if s.to.Before(diagnosed) || !next.IsZero() && !diagnosed.Before(next) {
		return false // found at her next screen or after the period, not here
	}
	e.Detection, e.Diagnosed, e.PreopDiagnosis = bildrum.DetectedInterval, diagnosed, preop
	e.IntervalMonths = wholeMonths(exam, diagnosed)
	t.record(e)
	return true
}

// wholeMonths returns the number of whole calendar months from a to b.
func wholeMonths(a, b bildrum.Date) int {
	m := (b.Year-a.Year)*12 + int(b.Month) - int(a.Month)
	if b.Day < a.Day {
		m--
	}
	return m
}

// tumour is a diagnosed cancer.
type tumour struct {
	outcome bildrum.Outcome
	sizeMM  int    // invasive size; 0 for DCIS
	nodes   string // "" for DCIS
	stage   string
}

// drawTumour draws DCIS with probability dcis, otherwise an invasive cancer
// of lognormal size, nodal status rising with size, and a simplified stage.
func drawTumour(rng *rand.Rand, dcis, medianMM, sigma, metastasis float64) tumour {
	if rng.Float64() < dcis {
		return tumour{outcome: bildrum.OutcomeDCIS, stage: "0"}
	}
	size := int(math.Round(medianMM * math.Exp(sigma*rng.NormFloat64())))
	size = min(max(size, 1), 150)
	nodes := bildrum.NodesNegative
	if rng.Float64() < nodePositiveP(size) {
		nodes = bildrum.NodesPositive
	}
	m1 := rng.Float64() < metastasis
	return tumour{outcome: bildrum.OutcomeInvasive, sizeMM: size, nodes: nodes, stage: stage(size, nodes == bildrum.NodesPositive, m1)}
}

// record writes the tumour into the episode.
func (t tumour) record(e *bildrum.ScreeningEpisode) {
	e.Outcome, e.TumourSizeMM, e.NodalStatus, e.Stage = t.outcome, t.sizeMM, t.nodes, t.stage
}

// nodePositiveP is the chance of axillary node metastasis by invasive size.
func nodePositiveP(sizeMM int) float64 {
	switch {
	case sizeMM <= 10:
		return 0.10
	case sizeMM <= 20:
		return 0.24
	case sizeMM <= 50:
		return 0.40
	}
	return 0.60
}

// stage is a simplified AJCC anatomic stage of an invasive cancer: T1 ≤20 mm,
// T2 ≤50 mm, T3 larger; N0 or N1; M1 is stage IV.
func stage(sizeMM int, nodePositive, metastasis bool) string {
	switch {
	case metastasis:
		return "IV"
	case sizeMM > 50 && nodePositive:
		return "III"
	case sizeMM <= 20 && !nodePositive:
		return "I"
	}
	return "II"
}

// pick returns one of values with the given probabilities (summing to 1).
func pick[T any](rng *rand.Rand, values []T, p []float64) T {
	u := rng.Float64()
	for i, v := range values {
		if u < p[i] {
			return v
		}
		u -= p[i]
	}
	return values[len(values)-1]
}

// betaVariate draws from the Beta(a, b) distribution.
func betaVariate(rng *rand.Rand, a, b float64) float64 {
	x, y := gammaVariate(rng, a), gammaVariate(rng, b)
	return x / (x + y)
}

// gammaVariate draws from the Gamma(shape, 1) distribution (Marsaglia and
// Tsang, ACM TOMS 26(3), 2000; shapes below 1 by their boosting trick).
func gammaVariate(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaVariate(rng, shape+1) * math.Pow(1-rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := 1 - rng.Float64() // in (0, 1]
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
