package quality_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/quality"
)

// This file is an adversary, written from docs/quality.md and not from the
// package's own tables: it takes every number that released reports show,
// every relation the documentation states between the counts, and solves
// them all at once as one linear system (not one sum at a time, as the
// package's protection reasons), to find each count of people it can work
// out exactly. The small-cell tests then check that it works out no count
// between 1 and the threshold.

// oracleCounts names, for each indicator, the counts its numerator and
// denominator are (docs/quality.md, "The indicators"); "" for a median's
// numerator.
var oracleCounts = map[string][2]string{
	quality.IDParticipation:         {"attended", "invited"},
	quality.IDTechnicalRepeat:       {"repeats", "screened"},
	quality.IDRecall:                {"recalled", "screened"},
	quality.IDRecallInitial:         {"recalled.initial", "screened.initial"},
	quality.IDRecallSubsequent:      {"recalled.subsequent", "screened.subsequent"},
	quality.IDDetection:             {"cancers", "screened"},
	quality.IDDetectionInitial:      {"cancers.initial", "screened.initial"},
	quality.IDDetectionSubsequent:   {"cancers.subsequent", "screened.subsequent"},
	quality.IDInterval0to11:         {"interval_0_11", "negative"},
	quality.IDInterval12to23:        {"interval_12_23", "negative"},
	quality.IDInvasiveShare:         {"invasive", "cancers"},
	quality.IDDCISShare:             {"dcis", "cancers"},
	quality.IDNodeNegative:          {"node_negative", "node_known"},
	quality.IDInvasiveUpTo10MM:      {"le_10mm", "size_known"},
	quality.IDInvasiveUnder15MM:     {"lt_15mm", "size_known"},
	quality.IDBenignMalignantOpen:   {"open_benign", "open_cancer"},
	quality.IDBenignMalignantBiopsy: {"biopsy_benign", "biopsy_cancer"},
	quality.IDPreoperativeDiagnosis: {"preop", "cancers"},
	quality.IDPPVRecall:             {"cancers", "recalled"},
	quality.IDResultWithinDays:      {"result_within", "result_known"},
	quality.IDResultMedianDays:      {"", "result_known"},
}

// oracleParts are the "of" relations of docs/quality.md: the second count
// is part of the first, so the first less the second is a count of people
// too (named "first-second").
var oracleParts = [][2]string{
	{"invited", "attended"},
	{"screened", "repeats"}, {"screened", "recalled"}, {"screened", "cancers"}, {"screened", "result_known"},
	{"recalled", "cancers"}, {"cancers", "preop"}, {"cancers", "biopsy_cancer"},
	{"invasive", "node_known"}, {"node_known", "node_negative"},
	{"invasive", "size_known"}, {"size_known", "le_10mm"}, {"size_known", "lt_15mm"}, {"lt_15mm", "le_10mm"},
	{"biopsy_benign", "open_benign"}, {"biopsy_cancer", "open_cancer"},
	{"screened-cancers", "negative"}, {"negative", "interval_0_11"}, {"negative", "interval_12_23"},
	{"result_known", "result_within"},
	{"screened.initial", "recalled.initial"}, {"screened.initial", "cancers.initial"}, {"recalled.initial", "cancers.initial"},
	{"screened.subsequent", "recalled.subsequent"}, {"screened.subsequent", "cancers.subsequent"}, {"recalled.subsequent", "cancers.subsequent"},
}

// oracleSums are the other sums within a cell: a sum, then its parts.
var oracleSums = [][]string{
	{"cancers", "invasive", "dcis"},
	{"screened", "screened.initial", "screened.subsequent"},
	{"recalled", "recalled.initial", "recalled.subsequent"},
	{"cancers", "cancers.initial", "cancers.subsequent"},
}

// oracleCell returns every count of a cell by the oracle's names, straight
// from the ScreeningCounts fields.
func oracleCell(c bildrum.ScreeningCounts, within int) map[string]int64 {
	e := c.Exams()
	m := map[string]int64{
		"invited": c.Invited, "attended": c.Attended,
		"screened": e.Screened, "repeats": e.TechnicalRepeats, "recalled": e.Recalled, "cancers": e.Cancers,
		"invasive": e.Invasive, "dcis": e.DCIS, "preop": e.PreopDiagnosed,
		"node_known": e.NodeKnown, "node_negative": e.NodeNegative,
		"size_known": e.SizeKnown, "le_10mm": e.InvasiveUpTo10MM, "lt_15mm": e.InvasiveUnder15MM,
		"open_benign": e.OpenBiopsyBenign, "open_cancer": e.OpenBiopsyCancer,
		"biopsy_benign": e.BiopsyBenign, "biopsy_cancer": e.BiopsyCancer,
		"negative": e.NegativeScreens, "interval_0_11": e.Interval0to11, "interval_12_23": e.Interval12to23,
		"result_known":     e.ResultKnown,
		"screened.initial": c.Initial.Screened, "recalled.initial": c.Initial.Recalled, "cancers.initial": c.Initial.Cancers,
		"screened.subsequent": c.Subsequent.Screened, "recalled.subsequent": c.Subsequent.Recalled, "cancers.subsequent": c.Subsequent.Cancers,
	}
	for d := 0; d <= within; d++ {
		m["result_within"] += e.ResultDays[d]
	}
	for _, p := range oracleParts {
		m[p[0]+"-"+p[1]] = m[p[0]] - m[p[1]]
	}
	return m
}

// oracleLattice is the true counts of every cell the reports may show,
// and which cells add up to which.
type oracleLattice struct {
	cells map[string]map[string]int64 // "period/band" → counts
	sums  [][]string                  // a cell, then the cells it is the sum of
}

// newOracleLattice sums quarters into their years, the years into the
// whole register ("all") and each period's bands into "all" ages, as
// docs/quality.md says periods and bands add up.
func newOracleLattice(quarters []bildrum.ScreeningCounts, within int) oracleLattice {
	l := oracleLattice{cells: make(map[string]map[string]int64)}
	raw := make(map[string]bildrum.ScreeningCounts)
	add := func(period, band string, c bildrum.ScreeningCounts) {
		k := period + "/" + band
		s := raw[k]
		s.Add(c)
		raw[k] = s
	}
	periods := map[string][]string{} // year → its quarters
	bandsOf := map[string]map[string]bool{}
	for _, q := range quarters {
		year, _, _ := strings.Cut(q.Period, "-")
		for _, p := range []string{q.Period, year, quality.PeriodAll} {
			add(p, q.AgeBand, q)
			add(p, bildrum.AgeBandAll, q)
			if bandsOf[p] == nil {
				bandsOf[p] = map[string]bool{}
			}
			bandsOf[p][q.AgeBand] = true
		}
		if !slices.Contains(periods[year], q.Period) {
			periods[year] = append(periods[year], q.Period)
		}
	}
	for k, c := range raw {
		l.cells[k] = oracleCell(c, quality.DefaultResultWithinDays)
	}
	for p, bands := range bandsOf {
		sum := []string{p + "/all"}
		for b := range bands {
			sum = append(sum, p+"/"+b)
		}
		l.sums = append(l.sums, sum)
	}
	var years []string
	for y, qs := range periods {
		years = append(years, y)
		for b := range bandsOf[y] {
			for _, band := range []string{b, bildrum.AgeBandAll} {
				sum := []string{y + "/" + band}
				for _, q := range qs {
					if _, ok := l.cells[q+"/"+band]; ok {
						sum = append(sum, q+"/"+band)
					}
				}
				l.sums = append(l.sums, sum)
			}
		}
	}
	for b := range bandsOf[quality.PeriodAll] {
		for _, band := range []string{b, bildrum.AgeBandAll} {
			sum := []string{quality.PeriodAll + "/" + band}
			for _, y := range years {
				if _, ok := l.cells[y+"/"+band]; ok {
					sum = append(sum, y+"/"+band)
				}
			}
			l.sums = append(l.sums, sum)
		}
	}
	return l
}

// disclosed returns each count of people ("period/band/count = value")
// with a value from 1 to threshold−1 that the reports show, or that their
// numbers and the relations of docs/quality.md determine exactly. Counts
// that are 0 are taken as known to the adversary (they describe nobody).
func (l oracleLattice) disclosed(reports []quality.Report, threshold int64) []string {
	known := make(map[string]bool)
	var out []string
	for _, r := range reports {
		cell := l.cells[r.Period+"/"+r.AgeBand]
		for _, v := range r.Indicators {
			if v.Suppressed {
				continue
			}
			names := oracleCounts[v.ID]
			for i, name := range names {
				if name == "" {
					continue
				}
				k := r.Period + "/" + r.AgeBand + "/" + name
				known[k] = true
				shown := v.Numerator
				if i == 1 {
					shown = v.Denominator
				}
				if shown == nil || *shown != cell[name] {
					out = append(out, fmt.Sprintf("%s shown as %v, is %d", k, shown, cell[name]))
				}
			}
		}
	}
	// Variables: every count of every cell that is neither shown nor 0.
	index := make(map[string]int)
	var names []string
	var values []int64
	for _, ck := range sortedMapKeys(l.cells) {
		for _, name := range sortedMapKeys(l.cells[ck]) {
			k := ck + "/" + name
			if v := l.cells[ck][name]; !known[k] && v != 0 {
				index[k] = len(names)
				names = append(names, k)
				values = append(values, v)
			} else if v > 0 && v < threshold && known[k] {
				out = append(out, k+" shown: "+fmt.Sprint(v))
			}
		}
	}
	var rows []map[int]int64
	equation := func(terms map[string]int64) {
		row := make(map[int]int64)
		for k, coef := range terms {
			if j, ok := index[k]; ok {
				if row[j] = mod(row[j] + coef); row[j] == 0 {
					delete(row, j)
				}
			}
		}
		if len(row) > 0 {
			rows = append(rows, row)
		}
	}
	for ck := range l.cells {
		for _, p := range oracleParts {
			equation(map[string]int64{ck + "/" + p[0]: 1, ck + "/" + p[1]: -1, ck + "/" + p[0] + "-" + p[1]: -1})
		}
		for _, s := range oracleSums {
			terms := map[string]int64{ck + "/" + s[0]: 1}
			for _, part := range s[1:] {
				terms[ck+"/"+part] = -1
			}
			equation(terms)
		}
	}
	for _, s := range l.sums {
		for name := range l.cells[s[0]] {
			terms := map[string]int64{s[0] + "/" + name: 1}
			for _, part := range s[1:] {
				terms[part+"/"+name] -= 1
			}
			equation(terms)
		}
	}
	for _, j := range determined(rows) {
		if values[j] > 0 && values[j] < threshold {
			out = append(out, fmt.Sprintf("%s = %d worked out from the released numbers", names[j], values[j]))
		}
	}
	sort.Strings(out)
	return out
}

// prime is the modulus of the elimination: solving modulo a large prime
// finds every variable that the integer system determines (the system's
// coefficients are small, so a spurious answer needs a minor divisible by
// the prime).
const prime = 2147483647

func mod(x int64) int64 { return ((x % prime) + prime) % prime }

func inverse(x int64) int64 {
	r, b, e := int64(1), mod(x), int64(prime-2)
	for ; e > 0; e >>= 1 {
		if e&1 == 1 {
			r = r * b % prime
		}
		b = b * b % prime
	}
	return r
}

// determined returns the variables whose value the homogeneous system rows
// (over the unknowns, with the known terms moved aside) fixes: those whose
// unit vector lies in the row space, found by Gauss–Jordan elimination.
func determined(rows []map[int]int64) []int {
	pivots := make(map[int]map[int]int64) // pivot column → its row, normalised
	for _, row := range rows {
		for {
			reduced := false
			for c, a := range row {
				if p, ok := pivots[c]; ok && a != 0 {
					for cc, b := range p {
						row[cc] = mod(row[cc] - a*b%prime)
						if row[cc] == 0 {
							delete(row, cc)
						}
					}
					reduced = true
					break
				}
			}
			if !reduced {
				break
			}
		}
		if len(row) == 0 {
			continue
		}
		c := -1
		for cc := range row {
			if c < 0 || cc < c {
				c = cc
			}
		}
		inv := inverse(row[c])
		for cc := range row {
			row[cc] = row[cc] * inv % prime
		}
		for _, p := range pivots {
			if a, ok := p[c]; ok {
				for cc, b := range row {
					p[cc] = mod(p[cc] - a*b%prime)
					if p[cc] == 0 {
						delete(p, cc)
					}
				}
			}
		}
		pivots[c] = row
	}
	var out []int
	for c, p := range pivots {
		if len(p) == 1 {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
