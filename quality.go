package bildrum

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PeriodKind says how screening counts are grouped in time: by calendar year
// or by calendar quarter.
type PeriodKind string

// The period kinds of CountStore.ScreeningCounts and of the indicators API
// (`?period=year`).
const (
	PeriodYear    PeriodKind = "year"    // labelled "2021"
	PeriodQuarter PeriodKind = "quarter" // labelled "2021-Q3"
)

// ParsePeriodKind accepts "year" or "quarter".
func ParsePeriodKind(s string) (PeriodKind, error) {
	switch k := PeriodKind(s); k {
	case PeriodYear, PeriodQuarter:
		return k, nil
	}
	return "", Errorf(EINVALID, "period %q: want year or quarter", s)
}

// Label returns the label of the period of kind k that holds d: "2021" for a
// year, "2021-Q3" for a quarter. It returns "" for the zero Date or an
// unknown kind.
func (k PeriodKind) Label(d Date) string {
	if d.IsZero() {
		return ""
	}
	switch k {
	case PeriodYear:
		return fmt.Sprintf("%04d", d.Year)
	case PeriodQuarter:
		return fmt.Sprintf("%04d-Q%d", d.Year, (int(d.Month)-1)/3+1)
	}
	return ""
}

// PeriodStart returns the first day of the period labelled label ("2021" or
// "2021-Q3"), so that callers can order and bound periods.
func PeriodStart(label string) (Date, error) {
	year, quarter, ok := strings.Cut(label, "-Q")
	y, err := strconv.Atoi(year)
	if err != nil || len(year) != 4 {
		return Date{}, Errorf(EINVALID, "period %q: want YYYY or YYYY-Qn", label)
	}
	if !ok {
		return Date{Year: y, Month: 1, Day: 1}, nil
	}
	q, err := strconv.Atoi(quarter)
	if err != nil || q < 1 || q > 4 {
		return Date{}, Errorf(EINVALID, "period %q: the quarter must be Q1 to Q4", label)
	}
	return Date{Year: y, Month: time.Month(3*(q-1) + 1), Day: 1}, nil
}

// The age bands of the screening indicators, by age in whole years at the
// date that places an episode in its period (see CountStore). AgeBandOther
// holds the few episodes outside the programme's 40–74 (a woman invited at
// 74 and examined after her 75th birthday), so that the bands partition the
// register and "all" is their sum. AgeBandAll is never a cell of a
// CountStore; it names the sum over the bands.
const (
	AgeBand40to49 = "40-49"
	AgeBand50to59 = "50-59"
	AgeBand60to69 = "60-69"
	AgeBand70to74 = "70-74"
	AgeBandOther  = "other"
	AgeBandAll    = "all"
)

// AgeBands returns the bands a CountStore reports, in display order.
func AgeBands() []string {
	return []string{AgeBand40to49, AgeBand50to59, AgeBand60to69, AgeBand70to74, AgeBandOther}
}

// AgeBandOf returns the band of an age in whole years.
func AgeBandOf(age int) string {
	switch {
	case age >= 40 && age <= 49:
		return AgeBand40to49
	case age >= 50 && age <= 59:
		return AgeBand50to59
	case age >= 60 && age <= 69:
		return AgeBand60to69
	case age >= 70 && age <= 74:
		return AgeBand70to74
	}
	return AgeBandOther
}

// ResultDayBuckets is the length of ExamCounts.ResultDays: calendar days 0
// to ResultDayBuckets-2 from examination to result, and a last bucket for
// ResultDayBuckets-1 days or more.
const ResultDayBuckets = 61

// ExamCounts are the tallies of screening examinations of one kind (initial
// or subsequent) in one period and age band. docs/quality.md defines each
// count precisely; in short, with "screen-detected cancer" an episode with
// outcome invasive or DCIS and detection "screen":
type ExamCounts struct {
	Screened         int64 `json:"screened"`          // attended episodes with an examination date
	TechnicalRepeats int64 `json:"technical_repeats"` // of Screened, a view retaken
	Recalled         int64 `json:"recalled"`          // of Screened, recalled for assessment

	Cancers  int64 `json:"cancers"`  // screen-detected cancers, invasive or DCIS
	Invasive int64 `json:"invasive"` // of Cancers, invasive
	DCIS     int64 `json:"dcis"`     // of Cancers, ductal carcinoma in situ

	NodeKnown         int64 `json:"node_known"`         // of Invasive, nodal status recorded
	NodeNegative      int64 `json:"node_negative"`      // of NodeKnown, negative
	SizeKnown         int64 `json:"size_known"`         // of Invasive, size recorded (> 0 mm)
	InvasiveUpTo10MM  int64 `json:"invasive_le_10mm"`   // of SizeKnown, ≤ 10 mm
	InvasiveUnder15MM int64 `json:"invasive_lt_15mm"`   // of SizeKnown, < 15 mm
	PreopDiagnosed    int64 `json:"preop_diagnosed"`    // of Cancers, diagnosed by needle biopsy before surgery
	OpenBiopsyBenign  int64 `json:"open_biopsy_benign"` // open surgical biopsy, outcome benign
	OpenBiopsyCancer  int64 `json:"open_biopsy_cancer"` // open surgical biopsy, screen-detected cancer
	BiopsyBenign      int64 `json:"biopsy_benign"`      // needle or open biopsy, outcome benign
	BiopsyCancer      int64 `json:"biopsy_cancer"`      // needle or open biopsy, screen-detected cancer
	NegativeScreens   int64 `json:"negative_screens"`   // of Screened, a negative screening episode
	Interval0to11     int64 `json:"interval_0_11"`      // of NegativeScreens, interval cancer 0–11 months after
	Interval12to23    int64 `json:"interval_12_23"`     // of NegativeScreens, interval cancer 12–23 months after
	ResultKnown       int64 `json:"result_known"`       // of Screened, result date on or after the examination

	// ResultDays is the histogram of calendar days from examination to
	// result over ResultKnown: ResultDays[d] examinations had their result
	// after d days; the last bucket holds ResultDayBuckets-1 days or more.
	ResultDays [ResultDayBuckets]int64 `json:"result_days"`
}

// Add adds o's tallies to c.
func (c *ExamCounts) Add(o ExamCounts) { c.addTimes(o, 1) }

// Sub takes o's tallies from c: what Add added, Sub takes away.
func (c *ExamCounts) Sub(o ExamCounts) { c.addTimes(o, -1) }

// addTimes adds k times o's tallies to c.
func (c *ExamCounts) addTimes(o ExamCounts, k int64) {
	c.Screened += k * o.Screened
	c.TechnicalRepeats += k * o.TechnicalRepeats
	c.Recalled += k * o.Recalled
	c.Cancers += k * o.Cancers
	c.Invasive += k * o.Invasive
	c.DCIS += k * o.DCIS
	c.NodeKnown += k * o.NodeKnown
	c.NodeNegative += k * o.NodeNegative
	c.SizeKnown += k * o.SizeKnown
	c.InvasiveUpTo10MM += k * o.InvasiveUpTo10MM
	c.InvasiveUnder15MM += k * o.InvasiveUnder15MM
	c.PreopDiagnosed += k * o.PreopDiagnosed
	c.OpenBiopsyBenign += k * o.OpenBiopsyBenign
	c.OpenBiopsyCancer += k * o.OpenBiopsyCancer
	c.BiopsyBenign += k * o.BiopsyBenign
	c.BiopsyCancer += k * o.BiopsyCancer
	c.NegativeScreens += k * o.NegativeScreens
	c.Interval0to11 += k * o.Interval0to11
	c.Interval12to23 += k * o.Interval12to23
	c.ResultKnown += k * o.ResultKnown
	for i := range c.ResultDays {
		c.ResultDays[i] += k * o.ResultDays[i]
	}
}

// IsZero reports whether every tally is zero.
func (c ExamCounts) IsZero() bool { return c == ExamCounts{} }

// ScreeningCounts are the tallies of one cell of a region's register: one
// period (a year or a quarter) and one age band. Invitations are placed by
// invitation date and age at invitation; examinations, and everything that
// followed them (recall, diagnosis, an interval cancer after a negative
// screen), by examination date and age at examination. So one episode may
// count its invitation in one cell and its examination in the next.
//
// An initial screen is a woman's first screening examination ever: her
// first attended examination in the register when her first episode in the
// register is round 1. Every other examination is subsequent, including the
// first one in the register of a woman whose register history starts at a
// later round (she was invited, and so probably screened, before the
// register began). docs/quality.md gives every definition.
type ScreeningCounts struct {
	Period  string `json:"period"`   // "2021" or "2021-Q3"
	AgeBand string `json:"age_band"` // one of AgeBands, or AgeBandAll for a sum

	Invited  int64 `json:"invited"`  // invitations sent in the period
	Attended int64 `json:"attended"` // of Invited, examined for that invitation

	Initial    ExamCounts `json:"initial"`    // initial screens
	Subsequent ExamCounts `json:"subsequent"` // subsequent screens
}

// Add adds o's tallies to c; c keeps its period and band.
func (c *ScreeningCounts) Add(o ScreeningCounts) { c.addTimes(o, 1) }

// Sub takes o's tallies from c; c keeps its period and band.
func (c *ScreeningCounts) Sub(o ScreeningCounts) { c.addTimes(o, -1) }

// addTimes adds k times o's tallies to c.
func (c *ScreeningCounts) addTimes(o ScreeningCounts, k int64) {
	c.Invited += k * o.Invited
	c.Attended += k * o.Attended
	c.Initial.addTimes(o.Initial, k)
	c.Subsequent.addTimes(o.Subsequent, k)
}

// IsEmpty reports whether nothing at all was counted in c: no invitation
// and no examination.
func (c ScreeningCounts) IsEmpty() bool {
	return c.Invited == 0 && c.Attended == 0 && c.Initial.IsZero() && c.Subsequent.IsZero()
}

// Exams returns the initial and subsequent screens together.
func (c ScreeningCounts) Exams() ExamCounts {
	e := c.Initial
	e.Add(c.Subsequent)
	return e
}

// CountStore computes the screening tallies of one region's register, from
// which package quality derives the indicators.
//
// ScreeningCounts returns one ScreeningCounts per period of kind and age band
// (AgeBands) in which anything was counted, ordered by period and then by
// band in AgeBands order, and the register's data version
// (RegisterSummary.DataVersion) that the counts describe. Counts and version
// MUST come from one consistent snapshot (one transaction): a write that
// commits concurrently is either wholly in the counts and the version, or
// wholly absent from both, so a version names exactly one set of counts. An
// empty register gives no cells and its version. The counts are of episodes,
// not of distinct women.
//
// A kind other than PeriodYear or PeriodQuarter is an EINVALID error; a
// failure of the store is returned wrapped, and then the cells are nil.
// Implementations are safe for concurrent use.
type CountStore interface {
	ScreeningCounts(ctx context.Context, kind PeriodKind) ([]ScreeningCounts, int64, error)
}
