package quality

import "github.com/bildrum/bildrum"

// A tally is one count of persons (episodes) of one cell: a numerator or
// denominator of some indicator, or a count that released numerators and
// denominators give away by subtraction (the complement of a proportion, the
// initial screens of a band). The small-cell rule holds for every tally, not
// only for those an indicator shows: see protect.
type tally int

// noTally is the numerator of a median, which has none.
const noTally tally = -1

// The tallies of a cell. Screen tallies without a kind count initial and
// subsequent screens together, as the indicators without a kind in their id
// do; only the tallies that an indicator releases per kind are kept per
// kind (what no indicator releases per kind cannot be had per kind).
const (
	tInvited tally = iota
	tAttended
	tNotAttended // invited − attended

	tScreened
	tRepeats
	tNoRepeat // screened − technical repeats
	tRecalled
	tNotRecalled // screened − recalled
	tCancers
	tNoCancer         // screened − screen-detected cancers
	tRecalledNoCancer // recalled − cancers: recalls that found no cancer
	tInvasive
	tDCIS
	tPreop
	tNoPreop // cancers − diagnosed before surgery
	tNodeKnown
	tNodeNegative
	tNodePositive // node known − node negative
	tNodeUnknown  // invasive − node known
	tSizeKnown
	tSizeUnknown // invasive − size known
	tUpTo10
	tOver10 // size known − ≤ 10 mm
	tUnder15
	t15OrMore // size known − < 15 mm
	t10To15   // < 15 mm − ≤ 10 mm: over 10 and under 15 mm
	tOpenBenign
	tOpenCancer
	tBiopsyBenign
	tBiopsyCancer
	tBenignNeedleOnly // biopsied benign − open biopsy benign
	tCancerNeedleOnly // biopsied cancers − open biopsy cancers
	tCancerNoBiopsy   // cancers − biopsied cancers
	tNegative         // negative screens
	tNotYetNegative   // screened without cancer − negative: assessment or result pending
	tInterval0to11    // of the negative screens
	tNoInterval0to11  // negative − interval 0–11
	tInterval12to23   // of the negative screens
	tNoInterval12to23 // negative − interval 12–23
	tResultKnown      // with a result date
	tNoResult         // screened − result known
	tResultWithin     // result within the configured days
	tResultLate       // result known − result within

	tScreenedInitial
	tRecalledInitial
	tNotRecalledInitial
	tCancersInitial
	tNoCancerInitial
	tRecalledNoCancerInitial

	tScreenedSubsequent
	tRecalledSubsequent
	tNotRecalledSubsequent
	tCancersSubsequent
	tNoCancerSubsequent
	tRecalledNoCancerSubsequent

	numTallies
)

// differences are the tallies that are a difference of two others, d = a −
// b with b part of a, so that a = b + d: wherever the released values show
// a count and a part of it, the rest is a count of people too. They are
// the complement of every proportion an indicator releases (95
// node-negative of 100 gives away 5 node-positive), and the difference of
// two counts that different indicators release (invasive cancers over 10
// and under 15 mm, as < 15 mm less ≤ 10 mm; invasive cancers without a
// recorded nodal status; examinations without a result date yet). Ratios
// have no complement of their own: benign and malignant biopsies are
// different people, each a count checked on its own; but needle-only
// biopsies are the difference of the two ratios' counts. A median's only
// count is its denominator.
var differences = []struct{ d, a, b tally }{
	{tNotAttended, tInvited, tAttended},
	{tNoRepeat, tScreened, tRepeats},
	{tNotRecalled, tScreened, tRecalled},
	{tNoCancer, tScreened, tCancers},
	{tRecalledNoCancer, tRecalled, tCancers},
	{tNoPreop, tCancers, tPreop},
	{tNodePositive, tNodeKnown, tNodeNegative},
	{tNodeUnknown, tInvasive, tNodeKnown},
	{tSizeUnknown, tInvasive, tSizeKnown},
	{tOver10, tSizeKnown, tUpTo10},
	{t15OrMore, tSizeKnown, tUnder15},
	{t10To15, tUnder15, tUpTo10},
	{tBenignNeedleOnly, tBiopsyBenign, tOpenBenign},
	{tCancerNeedleOnly, tBiopsyCancer, tOpenCancer},
	{tCancerNoBiopsy, tCancers, tBiopsyCancer},
	{tNotYetNegative, tNoCancer, tNegative},
	{tNoInterval0to11, tNegative, tInterval0to11},
	{tNoInterval12to23, tNegative, tInterval12to23},
	{tNoResult, tScreened, tResultKnown},
	{tResultLate, tResultKnown, tResultWithin},

	{tNotRecalledInitial, tScreenedInitial, tRecalledInitial},
	{tNoCancerInitial, tScreenedInitial, tCancersInitial},
	{tRecalledNoCancerInitial, tRecalledInitial, tCancersInitial},
	{tNotRecalledSubsequent, tScreenedSubsequent, tRecalledSubsequent},
	{tNoCancerSubsequent, tScreenedSubsequent, tCancersSubsequent},
	{tRecalledNoCancerSubsequent, tRecalledSubsequent, tCancersSubsequent},
}

// cellSums are the other sums within one cell, each a sum first and then its
// parts: screen-detected cancers are invasive or DCIS, and each tally kept
// per kind is its initial and subsequent screens.
var cellSums = [][]tally{
	{tCancers, tInvasive, tDCIS},
	{tScreened, tScreenedInitial, tScreenedSubsequent},
	{tRecalled, tRecalledInitial, tRecalledSubsequent},
	{tNotRecalled, tNotRecalledInitial, tNotRecalledSubsequent},
	{tCancers, tCancersInitial, tCancersSubsequent},
	{tNoCancer, tNoCancerInitial, tNoCancerSubsequent},
	{tRecalledNoCancer, tRecalledNoCancerInitial, tRecalledNoCancerSubsequent},
}

// tallies returns every tally of a cell; within is the configured number of
// days for a timely result.
func tallies(c bildrum.ScreeningCounts, within int) [numTallies]int64 {
	var v [numTallies]int64
	v[tInvited], v[tAttended] = c.Invited, c.Attended
	e := c.Exams()
	v[tScreened], v[tRepeats], v[tRecalled], v[tCancers] = e.Screened, e.TechnicalRepeats, e.Recalled, e.Cancers
	v[tInvasive], v[tDCIS], v[tPreop] = e.Invasive, e.DCIS, e.PreopDiagnosed
	v[tNodeKnown], v[tNodeNegative], v[tSizeKnown] = e.NodeKnown, e.NodeNegative, e.SizeKnown
	v[tUpTo10], v[tUnder15] = e.InvasiveUpTo10MM, e.InvasiveUnder15MM
	v[tOpenBenign], v[tOpenCancer], v[tBiopsyBenign], v[tBiopsyCancer] = e.OpenBiopsyBenign, e.OpenBiopsyCancer, e.BiopsyBenign, e.BiopsyCancer
	v[tNegative], v[tInterval0to11], v[tInterval12to23] = e.NegativeScreens, e.Interval0to11, e.Interval12to23
	v[tResultKnown] = e.ResultKnown
	for d := 0; d <= within && d < len(e.ResultDays); d++ {
		v[tResultWithin] += e.ResultDays[d]
	}
	v[tScreenedInitial], v[tRecalledInitial], v[tCancersInitial] = c.Initial.Screened, c.Initial.Recalled, c.Initial.Cancers
	v[tScreenedSubsequent], v[tRecalledSubsequent], v[tCancersSubsequent] = c.Subsequent.Screened, c.Subsequent.Recalled, c.Subsequent.Cancers
	for _, d := range differences {
		v[d.d] = v[d.a] - v[d.b]
	}
	return v
}

// cellEquations returns every sum within a cell (differences and cellSums),
// each a sum first and then its parts.
func cellEquations() [][]tally {
	eqs := make([][]tally, 0, len(differences)+len(cellSums))
	for _, d := range differences {
		eqs = append(eqs, []tally{d.a, d.b, d.d})
	}
	return append(eqs, cellSums...)
}
