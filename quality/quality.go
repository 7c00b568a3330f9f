// Package quality derives the mammography screening quality indicators of
// the European guidelines (participation, recall, detection, interval
// cancers, tumour characteristics, biopsies, time to result …) from a
// region's screening counts (bildrum.ScreeningCounts), with their 95 %
// intervals, their status against configured targets (targets.json), the
// small-cell rule, and funnel-plot control limits for comparing regions.
//
// A node computes its own indicators; the hub collects them and plots every
// region against the national mean. docs/quality.md defines each indicator,
// its numerator and denominator, and the sources of the targets.
package quality

import (
	"math"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
)

// Unit says how an indicator's rate is expressed.
type Unit string

// The units of the indicators.
const (
	Percent  Unit = "percent"  // 100 × numerator / denominator
	PerMille Unit = "per_1000" // 1,000 × numerator / denominator
	Ratio    Unit = "ratio"    // numerator / denominator: 0.25 is 1:4
	Days     Unit = "days"     // a median number of days; no numerator
)

// scale returns the factor from a proportion to the unit, 0 for units that
// are not proportions.
func (u Unit) scale() float64 {
	switch u {
	case Percent:
		return 100
	case PerMille:
		return 1000
	}
	return 0
}

// Definition describes one indicator.
type Definition struct {
	ID          string `json:"id"`
	NameSV      string `json:"name_sv"`
	NameEN      string `json:"name_en"`
	Unit        Unit   `json:"unit"`
	Numerator   string `json:"numerator"`   // in English, for the API and docs/quality.md
	Denominator string `json:"denominator"` // ditto

	// num and den are the tallies of the numerator and the denominator
	// (noTally: a median has no numerator).
	num, den tally
}

// The indicator IDs, stable in the API.
const (
	IDParticipation         = "participation"
	IDTechnicalRepeat       = "technical_repeat"
	IDRecall                = "recall"
	IDRecallInitial         = "recall_initial"
	IDRecallSubsequent      = "recall_subsequent"
	IDDetection             = "detection"
	IDDetectionInitial      = "detection_initial"
	IDDetectionSubsequent   = "detection_subsequent"
	IDInterval0to11         = "interval_cancer_0_11"
	IDInterval12to23        = "interval_cancer_12_23"
	IDInvasiveShare         = "invasive_share"
	IDDCISShare             = "dcis_share"
	IDNodeNegative          = "node_negative"
	IDInvasiveUpTo10MM      = "invasive_le_10mm"
	IDInvasiveUnder15MM     = "invasive_lt_15mm"
	IDBenignMalignantOpen   = "benign_malignant_open_biopsy"
	IDBenignMalignantBiopsy = "benign_malignant_biopsy"
	IDPreoperativeDiagnosis = "preoperative_diagnosis"
	IDPPVRecall             = "ppv_recall"
	IDResultWithinDays      = "result_within_days"
	IDResultMedianDays      = "result_median_days"
)

// definitions are the indicators, in the order reports list them.
var definitions = []Definition{
	{ID: IDParticipation, NameSV: "Deltagande", NameEN: "Participation", Unit: Percent,
		Numerator: "invitations attended", Denominator: "invitations sent in the period (by invitation date)",
		num: tAttended, den: tInvited},
	{ID: IDTechnicalRepeat, NameSV: "Tekniska omtag", NameEN: "Technical repeat", Unit: Percent,
		Numerator: "examinations with a view retaken", Denominator: "examinations",
		num: tRepeats, den: tScreened},
	{ID: IDRecall, NameSV: "Återkallelse", NameEN: "Recall rate", Unit: Percent,
		Numerator: "examinations recalled for assessment", Denominator: "examinations",
		num: tRecalled, den: tScreened},
	{ID: IDRecallInitial, NameSV: "Återkallelse, första screening", NameEN: "Recall rate, initial screens", Unit: Percent,
		Numerator: "initial screens recalled", Denominator: "initial screens",
		num: tRecalledInitial, den: tScreenedInitial},
	{ID: IDRecallSubsequent, NameSV: "Återkallelse, efterföljande screening", NameEN: "Recall rate, subsequent screens", Unit: Percent,
		Numerator: "subsequent screens recalled", Denominator: "subsequent screens",
		num: tRecalledSubsequent, den: tScreenedSubsequent},
	{ID: IDDetection, NameSV: "Cancerdetektion", NameEN: "Cancer detection rate", Unit: PerMille,
		Numerator: "screen-detected cancers (invasive and DCIS)", Denominator: "examinations",
		num: tCancers, den: tScreened},
	{ID: IDDetectionInitial, NameSV: "Cancerdetektion, första screening", NameEN: "Cancer detection rate, initial screens", Unit: PerMille,
		Numerator: "screen-detected cancers at initial screens", Denominator: "initial screens",
		num: tCancersInitial, den: tScreenedInitial},
	{ID: IDDetectionSubsequent, NameSV: "Cancerdetektion, efterföljande screening", NameEN: "Cancer detection rate, subsequent screens", Unit: PerMille,
		Numerator: "screen-detected cancers at subsequent screens", Denominator: "subsequent screens",
		num: tCancersSubsequent, den: tScreenedSubsequent},
	{ID: IDInterval0to11, NameSV: "Intervallcancer 0–11 månader", NameEN: "Interval cancer rate, 0–11 months", Unit: PerMille,
		Numerator: "interval cancers diagnosed 0–11 months after a negative screen", Denominator: "negative screens",
		num: tInterval0to11, den: tNegative},
	{ID: IDInterval12to23, NameSV: "Intervallcancer 12–23 månader", NameEN: "Interval cancer rate, 12–23 months", Unit: PerMille,
		Numerator: "interval cancers diagnosed 12–23 months after a negative screen", Denominator: "negative screens",
		num: tInterval12to23, den: tNegative},
	{ID: IDInvasiveShare, NameSV: "Andel invasiva", NameEN: "Proportion invasive", Unit: Percent,
		Numerator: "screen-detected invasive cancers", Denominator: "screen-detected cancers",
		num: tInvasive, den: tCancers},
	{ID: IDDCISShare, NameSV: "Andel DCIS", NameEN: "Proportion DCIS", Unit: Percent,
		Numerator: "screen-detected ductal carcinoma in situ", Denominator: "screen-detected cancers",
		num: tDCIS, den: tCancers},
	{ID: IDNodeNegative, NameSV: "Andel körtelnegativa", NameEN: "Node-negative", Unit: Percent,
		Numerator: "node-negative screen-detected invasive cancers", Denominator: "screen-detected invasive cancers with known nodal status",
		num: tNodeNegative, den: tNodeKnown},
	{ID: IDInvasiveUpTo10MM, NameSV: "Invasiva ≤ 10 mm", NameEN: "Invasive ≤ 10 mm", Unit: Percent,
		Numerator: "screen-detected invasive cancers of 10 mm or less", Denominator: "screen-detected invasive cancers of known size",
		num: tUpTo10, den: tSizeKnown},
	{ID: IDInvasiveUnder15MM, NameSV: "Invasiva < 15 mm", NameEN: "Invasive < 15 mm", Unit: Percent,
		Numerator: "screen-detected invasive cancers smaller than 15 mm", Denominator: "screen-detected invasive cancers of known size",
		num: tUnder15, den: tSizeKnown},
	{ID: IDBenignMalignantOpen, NameSV: "Benigna:maligna öppna biopsier", NameEN: "Benign to malignant open biopsy ratio", Unit: Ratio,
		Numerator: "open surgical biopsies with a benign outcome", Denominator: "open surgical biopsies of screen-detected cancers",
		num: tOpenBenign, den: tOpenCancer},
	{ID: IDBenignMalignantBiopsy, NameSV: "Benigna:maligna biopsier (nål eller öppen)", NameEN: "Benign to malignant biopsy ratio (needle or open)", Unit: Ratio,
		Numerator: "recalls biopsied (needle or open) with a benign outcome", Denominator: "recalls biopsied (needle or open) with a screen-detected cancer",
		num: tBiopsyBenign, den: tBiopsyCancer},
	{ID: IDPreoperativeDiagnosis, NameSV: "Preoperativ diagnos", NameEN: "Pre-operative diagnosis", Unit: Percent,
		Numerator: "screen-detected cancers diagnosed by needle biopsy before surgery", Denominator: "screen-detected cancers",
		num: tPreop, den: tCancers},
	{ID: IDPPVRecall, NameSV: "Positivt prediktivt värde av återkallelse", NameEN: "Positive predictive value of recall", Unit: Percent,
		Numerator: "screen-detected cancers", Denominator: "examinations recalled",
		num: tCancers, den: tRecalled},
	{ID: IDResultWithinDays, NameSV: "Besked inom målet", NameEN: "Result within the target time", Unit: Percent,
		Numerator:   "examinations with the result sent within the configured number of days (targets.json result_within_days)",
		Denominator: "examinations with a result date",
		num:         tResultWithin, den: tResultKnown},
	{ID: IDResultMedianDays, NameSV: "Dagar till besked, median", NameEN: "Days from screen to result, median", Unit: Days,
		Numerator: "none: the rate is the median number of calendar days", Denominator: "examinations with a result date",
		num: noTally, den: tResultKnown},
}

// Definitions returns the indicators, in report order.
func Definitions() []Definition { return slices.Clone(definitions) }

// DefinitionOf returns the indicator with the ID.
func DefinitionOf(id string) (Definition, bool) {
	for _, d := range definitions {
		if d.ID == id {
			return d, true
		}
	}
	return Definition{}, false
}

// Status says how a value compares with its indicator's target.
type Status string

// The statuses of a value.
const (
	StatusDesirable  Status = "desirable"  // meets the desirable level (and the acceptable one)
	StatusAcceptable Status = "acceptable" // meets the acceptable level, not the desirable one
	StatusNotMet     Status = "not_met"    // meets neither
	StatusNoTarget   Status = "no_target"  // no target is configured for the indicator
	StatusNoData     Status = "no_data"    // no rate: the denominator is 0, or the value is suppressed
)

// Value is one indicator of one cell (region, period, age band), as the
// API serves it. Numerator, denominator, rate and interval are null when
// the value is suppressed (Suppressed) or when there is nothing to divide
// by; a ratio whose interval has no upper bound (no malignant biopsies) has
// a null interval.
type Value struct {
	ID          string      `json:"id"`
	Numerator   *int64      `json:"numerator"`   // null for a median, or when suppressed
	Denominator *int64      `json:"denominator"` // null when suppressed
	Rate        *float64    `json:"rate"`        // in Unit
	Interval    *[2]float64 `json:"interval"`    // 95 %, in Unit
	Unit        Unit        `json:"unit"`
	Suppressed  bool        `json:"suppressed"` // a count was below the small-cell threshold
	Status      Status      `json:"status"`
	Target      string      `json:"target,omitempty"` // source ID of the target that gave Status
}

// Compute returns every indicator of one cell, in Definitions order, with
// its status against targets (nil: no targets). Rates and intervals are
// rounded to four decimals, and the status is of the rounded rate. Nothing
// is suppressed: apply the small-cell rule with Suppress, or use Lattice,
// before releasing values.
func Compute(c bildrum.ScreeningCounts, targets *Targets) []Value {
	within := DefaultResultWithinDays
	if targets != nil {
		within = targets.ResultWithinDays
	}
	t := tallies(c, within)
	out := make([]Value, 0, len(definitions))
	for _, d := range definitions {
		var num int64
		den := t[d.den]
		v := Value{ID: d.ID, Unit: d.Unit, Denominator: ptr(den)}
		if d.num != noTally {
			num = t[d.num]
			v.Numerator = ptr(num)
		}
		switch d.Unit {
		case Percent, PerMille:
			if lo, hi, ok := Wilson(num, den, z95); ok {
				s := d.Unit.scale()
				v.Rate = ptr(float64(num) / float64(den) * s)
				v.Interval = &[2]float64{lo * s, hi * s}
			}
		case Ratio:
			if den > 0 {
				v.Rate = ptr(float64(num) / float64(den))
			}
			if lo, hi, ok := ratioInterval(num, den); ok && !math.IsInf(hi, 1) {
				v.Interval = &[2]float64{lo, hi}
			}
		case Days:
			if m, lo, hi, ok := medianDays(c.Exams().ResultDays); ok {
				v.Rate = ptr(m)
				v.Interval = &[2]float64{lo, hi}
			}
		}
		if v.Rate != nil {
			v.Rate = ptr(round4(*v.Rate))
		}
		if v.Interval != nil {
			v.Interval = &[2]float64{round4(v.Interval[0]), round4(v.Interval[1])}
		}
		v.Status, v.Target = targets.Evaluate(d.ID, v.Rate)
		out = append(out, v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// round4 rounds to four decimals: finer than any register can resolve, and
// short in JSON.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Report is the indicators of one cell of one region's register, as the
// API (`GET /api/v1/indicators?period=year`) serves a list of them.
type Report struct {
	Region      string  `json:"region"`
	DataVersion int64   `json:"data_version"`
	Period      string  `json:"period"`   // "2021" or "2021-Q3"
	AgeBand     string  `json:"age_band"` // "40-49" … "70-74", "other", or "all"
	Threshold   int     `json:"small_cell_threshold"`
	Indicators  []Value `json:"indicators"`
}

// Sum adds cells up into one labelled period and band: all ages of a
// period, or a whole range of periods.
func Sum(cells []bildrum.ScreeningCounts, period, band string) bildrum.ScreeningCounts {
	s := bildrum.ScreeningCounts{Period: period, AgeBand: band}
	for _, c := range cells {
		s.Add(c)
	}
	return s
}

// Select returns the cells of the periods from to to (inclusive, compared
// as labels of the cells' own kind: "2019" to "2021", or "2019-Q1" to
// "2021-Q4"; "" leaves that end open) and of the bands listed (none: every
// band), so that a caller can Sum them into, say, all of 2019–2021.
func Select(cells []bildrum.ScreeningCounts, from, to string, bands ...string) []bildrum.ScreeningCounts {
	var out []bildrum.ScreeningCounts
	for _, c := range cells {
		if from != "" && strings.Compare(c.Period, from) < 0 || to != "" && strings.Compare(c.Period, to) > 0 {
			continue
		}
		if len(bands) > 0 && !slices.Contains(bands, c.AgeBand) {
			continue
		}
		out = append(out, c)
	}
	return out
}
