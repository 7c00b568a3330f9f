package quality

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bildrum/bildrum"
)

// PeriodAll labels the reports of a region's whole register, every period
// summed, and asks Indicators for them.
const PeriodAll = "all"

// Reports turns a region's cells (as a bildrum.CountStore returns them)
// into one report per period and age band, plus one per period for all
// ages, with every value evaluated against targets and suppressed below
// threshold: each value on its own (Value.Suppress), and then whatever the
// released values would give away by subtraction (see protect): an age band
// from "all" and the other bands, initial from all and subsequent screens,
// the DCIS share from the invasive share, the complement of a proportion
// from other indicators. Reports are ordered by period, then by band, "all"
// last. A threshold below MinThreshold is an EINVALID error.
//
// Reports protects the periods it is given each on its own: they are taken
// to be of one kind, none the sum of others. A year reported by one call
// and its quarters by another could give away a suppressed quarter by
// subtraction; release indicators with Lattice or Indicators, which decide
// over every period at once.
func Reports(region string, version int64, cells []bildrum.ScreeningCounts, targets *Targets, threshold int) ([]Report, error) {
	if err := CheckThreshold(threshold); err != nil {
		return nil, err
	}
	b := newBuilder(region, version, targets, threshold)
	byPeriod := groupByPeriod(cells)
	for _, p := range sortedKeys(byPeriod) {
		b.period(p, byPeriod[p])
	}
	return b.protect(), nil
}

// Lattice computes a region's released reports for every period at once:
// each quarter of quarters (as bildrum.CountStore.ScreeningCounts returns
// them for bildrum.PeriodQuarter), each year as the sum of its quarters, and
// the whole register (period PeriodAll) as the sum of the years; each with
// its age bands and all ages. Suppression (see Reports and protect) is
// decided over all of them together, with a year taken as the sum of its
// quarters and the whole register as the sum of the years, so that a cell
// gets the same decision whichever period is asked for, and no subtraction
// across periods (a year less three of its quarters) gives away a
// suppressed value. Reports are ordered by period label ("2021",
// "2021-Q1" … "2021-Q4", "2022" …, "all" last), then by band, "all" last.
//
// A cell whose period is not a quarter label ("2021-Q3") is an EINVALID
// error, as is a threshold below MinThreshold.
func Lattice(region string, version int64, quarters []bildrum.ScreeningCounts, targets *Targets, threshold int) ([]Report, error) {
	if err := CheckThreshold(threshold); err != nil {
		return nil, err
	}
	for _, c := range quarters {
		if _, err := bildrum.PeriodStart(c.Period); err != nil || !strings.Contains(c.Period, "-Q") {
			return nil, bildrum.Errorf(bildrum.EINVALID, "lattice: cell period %q: want a quarter, 2021-Q3", c.Period)
		}
	}
	if len(quarters) == 0 {
		return []Report{}, nil // an empty register: no periods
	}
	b := newBuilder(region, version, targets, threshold)
	byQuarter := groupByPeriod(quarters)
	byYear := make(map[string][]bildrum.ScreeningCounts)
	for _, q := range sortedKeys(byQuarter) {
		year, _, _ := strings.Cut(q, "-")
		byYear[year] = append(byYear[year], byQuarter[q]...)
	}
	sumBands := func(period string, cs []bildrum.ScreeningCounts) []bildrum.ScreeningCounts {
		var out []bildrum.ScreeningCounts
		for _, band := range bildrum.AgeBands() {
			var of []bildrum.ScreeningCounts
			for _, c := range cs {
				if c.AgeBand == band {
					of = append(of, c)
				}
			}
			if len(of) > 0 {
				out = append(out, Sum(of, period, band))
			}
		}
		return out
	}
	whole := b.period(PeriodAll, sumBands(PeriodAll, quarters))
	for _, y := range sortedKeys(byYear) {
		year := b.period(y, sumBands(y, byYear[y]))
		var qs []map[string]int
		for _, q := range sortedKeys(byQuarter) {
			if strings.HasPrefix(q, y+"-") {
				qs = append(qs, b.period(q, byQuarter[q]))
			}
		}
		b.sumPeriods(year, qs)
	}
	var years []map[string]int
	for _, y := range sortedKeys(byYear) {
		years = append(years, b.periods[y])
	}
	b.sumPeriods(whole, years)
	return b.protect(), nil
}

// Indicators returns a region's released reports of one period kind:
// "year", "quarter" or PeriodAll (the whole register). It reads the
// quarters from store once, from one snapshot of the register, and releases
// what Lattice releases for that kind, so that the answers for the three
// kinds never contradict, nor add up to, anything suppressed in another.
// An unknown period is an EINVALID error; a failure of the store is
// returned wrapped. A server answering many requests uses an
// IndicatorCache, which decides suppression once per data version.
func Indicators(ctx context.Context, store bildrum.CountStore, region, period string, targets *Targets, threshold int) ([]Report, error) {
	return NewIndicatorCache(store, region, targets, threshold).Indicators(ctx, period)
}

// IndicatorCache answers Indicators for one region and keeps the lattice
// released at the register's latest data version: deciding suppression
// over a large register takes a tenth of a second or more, while the
// released lattice changes only with the data. Reading the counts, which
// tells the version, stays part of every call, so an answer is never of an
// older version than the store's. It is safe for concurrent use.
type IndicatorCache struct {
	store     bildrum.CountStore
	region    string
	targets   *Targets
	threshold int

	mu       sync.Mutex
	version  int64
	released []Report // of version; nil when nothing is kept
	lattices int      // lattices built, for tests
}

// NewIndicatorCache returns an IndicatorCache of region's store, with the
// arguments of Indicators.
func NewIndicatorCache(store bildrum.CountStore, region string, targets *Targets, threshold int) *IndicatorCache {
	return &IndicatorCache{store: store, region: region, targets: targets, threshold: threshold}
}

// Indicators does what the function Indicators does. The reports returned
// are shared between callers and must not be modified.
func (c *IndicatorCache) Indicators(ctx context.Context, period string) ([]Report, error) {
	if _, err := bildrum.ParsePeriodKind(period); err != nil && period != PeriodAll {
		return nil, bildrum.Errorf(bildrum.EINVALID, "period %q: use year, quarter or all (the whole register)", period)
	}
	quarters, version, err := c.store.ScreeningCounts(ctx, bildrum.PeriodQuarter)
	if err != nil {
		return nil, fmt.Errorf("indicators of region %s: %w", c.region, err)
	}
	all, err := c.lattice(version, quarters)
	if err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(all))
	for _, r := range all {
		if periodKind(r.Period) == period {
			out = append(out, r)
		}
	}
	return out, nil
}

// lattice returns the lattice released for version, built from quarters
// unless it is kept. Concurrent callers at a new version wait for one
// build.
func (c *IndicatorCache) lattice(version int64, quarters []bildrum.ScreeningCounts) ([]Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released != nil && c.version == version {
		return c.released, nil
	}
	all, err := Lattice(c.region, version, quarters, c.targets, c.threshold)
	if err != nil {
		return nil, err
	}
	c.lattices++
	if c.released == nil || version > c.version {
		c.version, c.released = version, all
	}
	return all, nil
}

// periodKind returns "quarter", "year" or PeriodAll for a period label.
func periodKind(label string) string {
	switch {
	case label == PeriodAll:
		return PeriodAll
	case strings.Contains(label, "-Q"):
		return string(bildrum.PeriodQuarter)
	}
	return string(bildrum.PeriodYear)
}

// builder collects the reports of a lattice and the sums that relate them,
// for protect.
type builder struct {
	region    string
	version   int64
	targets   *Targets
	threshold int
	within    int

	reports []Report
	counts  [][numTallies]int64
	sums    []cellSum
	periods map[string]map[string]int // period → band → index of its report
}

func newBuilder(region string, version int64, targets *Targets, threshold int) *builder {
	within := DefaultResultWithinDays
	if targets != nil {
		within = targets.ResultWithinDays
	}
	return &builder{region: region, version: version, targets: targets, threshold: threshold, within: within,
		periods: make(map[string]map[string]int)}
}

// period adds the reports of one period: its bands' cells and their sum
// over all ages, related by a sum. It returns the index of each band's
// report, AgeBandAll included.
func (b *builder) period(p string, cells []bildrum.ScreeningCounts) map[string]int {
	bands := append(bildrum.AgeBands(), bildrum.AgeBandAll)
	cs := append(slices.Clone(cells), Sum(cells, p, bildrum.AgeBandAll))
	slices.SortStableFunc(cs, func(a, c bildrum.ScreeningCounts) int {
		return slices.Index(bands, a.AgeBand) - slices.Index(bands, c.AgeBand)
	})
	index := make(map[string]int, len(cs))
	all := cellSum{}
	for _, c := range cs {
		i := len(b.reports)
		index[c.AgeBand] = i
		b.reports = append(b.reports, Report{Region: b.region, DataVersion: b.version, Period: p, AgeBand: c.AgeBand,
			Threshold: b.threshold, Indicators: Compute(c, b.targets)})
		b.counts = append(b.counts, tallies(c, b.within))
		if c.AgeBand == bildrum.AgeBandAll {
			all.sum = i
		} else {
			all.parts = append(all.parts, i)
		}
	}
	b.sums = append(b.sums, all)
	b.periods[p] = index
	return index
}

// sumPeriods records that period sum is, band by band (all ages
// included), the sum of periods parts.
func (b *builder) sumPeriods(sum map[string]int, parts []map[string]int) {
	for _, band := range append(bildrum.AgeBands(), bildrum.AgeBandAll) {
		i, ok := sum[band]
		if !ok {
			continue
		}
		cs := cellSum{sum: i}
		for _, p := range parts {
			if j, ok := p[band]; ok {
				cs.parts = append(cs.parts, j)
			}
		}
		b.sums = append(b.sums, cs)
	}
}

// protect suppresses the reports (see protect) and returns them ordered by
// period, then band.
func (b *builder) protect() []Report {
	protect(b.reports, b.counts, b.sums, b.threshold)
	bands := append(bildrum.AgeBands(), bildrum.AgeBandAll)
	out := slices.Clone(b.reports)
	slices.SortStableFunc(out, func(a, c Report) int {
		if d := strings.Compare(a.Period, c.Period); d != 0 {
			return d
		}
		return slices.Index(bands, a.AgeBand) - slices.Index(bands, c.AgeBand)
	})
	return out
}

func groupByPeriod(cells []bildrum.ScreeningCounts) map[string][]bildrum.ScreeningCounts {
	out := make(map[string][]bildrum.ScreeningCounts)
	for _, c := range cells {
		out[c.Period] = append(out[c.Period], c)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
