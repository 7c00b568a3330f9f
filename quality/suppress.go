package quality

import "github.com/bildrum/bildrum"

// The small-cell rule of DESIGN.md: a count below the threshold is never
// released, it reads "fewer than N". The threshold is configuration.
const (
	DefaultThreshold = 10 // the strictest common one (i2b2 ≤ 3, OpenSAFELY ≤ 7, TriNetX ≤ 10)
	MinThreshold     = 5  // configuration may not go lower
)

// CheckThreshold returns an EINVALID error for a small-cell threshold below
// MinThreshold.
func CheckThreshold(threshold int) error {
	if threshold < MinThreshold {
		return bildrum.Errorf(bildrum.EINVALID, "small-cell threshold %d: it must be at least %d (default %d)", threshold, MinThreshold, DefaultThreshold)
	}
	return nil
}

// Suppress applies the small-cell rule to v: when its numerator or its
// denominator is below threshold, it returns v with numerator, denominator,
// rate and interval blanked (null in JSON), Suppressed set and the status
// StatusNoData, so that nothing about the small count can be read from it.
// A median has no numerator; its denominator alone decides. A threshold
// below MinThreshold is an EINVALID error.
//
// Suppress judges one value alone; Reports also suppresses what could be
// had by subtraction from the other values it releases (see protect).
func (v Value) Suppress(threshold int) (Value, error) {
	if err := CheckThreshold(threshold); err != nil {
		return Value{}, err
	}
	t := int64(threshold)
	if v.Denominator != nil && *v.Denominator < t || v.Numerator != nil && *v.Numerator < t {
		return v.hide(), nil
	}
	return v, nil
}

// hide returns v blanked as Suppress blanks it.
func (v Value) hide() Value {
	v.Numerator, v.Denominator, v.Rate, v.Interval = nil, nil, nil, nil
	v.Suppressed = true
	v.Status, v.Target = StatusNoData, ""
	return v
}

// complements are indicators whose counts add up, so that releasing some of
// them gives away another by subtraction: in each group the first's
// numerator and denominator are the sums of the others' (recall and
// detection of all screens from initial and subsequent ones), or, for the
// invasive and DCIS shares, the two numerators add up to the shared
// denominator.
var complements = [][]string{
	{IDRecall, IDRecallInitial, IDRecallSubsequent},
	{IDDetection, IDDetectionInitial, IDDetectionSubsequent},
	{"", IDInvasiveShare, IDDCISShare},
}

// protect applies the small-cell rule to the reports of one period (its age
// bands and "all"), whose values are not yet suppressed: first each value
// on its own (as Suppress), then complementary suppression. Wherever
// exactly one part of a sum is suppressed while the sum and the other parts
// would be released, the released part with the smallest denominator is
// suppressed too, so that no suppressed count can be had by subtraction.
// The parts are the age bands of "all", and the groups of complements
// within a report. A part with a denominator of 0 describes nobody and
// needs no protection. It repeats until nothing changes, since each new
// suppression may expose another.
func protect(reports []Report, threshold int) {
	t := int64(threshold)
	hidden := make([][]bool, len(reports))
	for i, r := range reports {
		hidden[i] = make([]bool, len(r.Indicators))
		for k, v := range r.Indicators {
			hidden[i][k] = v.Denominator != nil && *v.Denominator < t || v.Numerator != nil && *v.Numerator < t
		}
	}
	type ref struct{ i, k int } // report i, indicator k
	// hideOne hides the released part with the smallest denominator when
	// the sum is released and exactly one part that describes somebody is
	// hidden, and reports whether it did.
	hideOne := func(parts []ref, sumReleased bool) bool {
		count := 0
		smallest := ref{-1, -1}
		for _, p := range parts {
			v := reports[p.i].Indicators[p.k]
			switch {
			case hidden[p.i][p.k]:
				if v.Denominator != nil && *v.Denominator > 0 {
					count++
				}
			case smallest.i < 0 || *v.Denominator < *reports[smallest.i].Indicators[smallest.k].Denominator:
				smallest = p
			}
		}
		if !sumReleased || count != 1 || smallest.i < 0 {
			return false
		}
		hidden[smallest.i][smallest.k] = true
		return true
	}
	all := -1
	for i, r := range reports {
		if r.AgeBand == bildrum.AgeBandAll {
			all = i
		}
	}
	for changed := true; changed; {
		changed = false
		for i, r := range reports {
			for _, g := range complements {
				sumReleased := true // or there is no sum
				var parts []ref
				for j, id := range g {
					k := r.index(id)
					switch {
					case k < 0:
					case j == 0:
						sumReleased = !hidden[i][k]
					default:
						parts = append(parts, ref{i, k})
					}
				}
				changed = hideOne(parts, sumReleased) || changed
			}
		}
		if all < 0 {
			continue
		}
		for k := range reports[all].Indicators {
			var parts []ref
			for i := range reports {
				if i != all {
					parts = append(parts, ref{i, k})
				}
			}
			changed = hideOne(parts, !hidden[all][k]) || changed
		}
	}
	for i := range reports {
		for k, h := range hidden[i] {
			if h {
				reports[i].Indicators[k] = reports[i].Indicators[k].hide()
			}
		}
	}
}

// index returns the position of the indicator in r.Indicators, -1 if none.
func (r *Report) index(id string) int {
	for k, v := range r.Indicators {
		if v.ID == id {
			return k
		}
	}
	return -1
}
