package quality_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/quality"
	"github.com/google/go-cmp/cmp"
)

// fakeCounts is a bildrum.CountStore over fixed quarter cells; like the
// real store it sums quarters into years when asked for years.
type fakeCounts struct {
	quarters []bildrum.ScreeningCounts
	version  int64
	err      error
	asked    []bildrum.PeriodKind
}

func (f *fakeCounts) ScreeningCounts(_ context.Context, kind bildrum.PeriodKind) ([]bildrum.ScreeningCounts, int64, error) {
	f.asked = append(f.asked, kind)
	if f.err != nil {
		return nil, 0, fmt.Errorf("screening counts: %w", f.err)
	}
	switch kind {
	case bildrum.PeriodQuarter:
		return slices.Clone(f.quarters), f.version, nil
	case bildrum.PeriodYear:
		var out []bildrum.ScreeningCounts
		for _, q := range f.quarters {
			year, _, _ := strings.Cut(q.Period, "-")
			i := slices.IndexFunc(out, func(c bildrum.ScreeningCounts) bool { return c.Period == year && c.AgeBand == q.AgeBand })
			if i < 0 {
				out = append(out, bildrum.ScreeningCounts{Period: year, AgeBand: q.AgeBand})
				i = len(out) - 1
			}
			out[i].Add(q)
		}
		return out, f.version, nil
	}
	return nil, 0, bildrum.Errorf(bildrum.EINVALID, "period %q", kind)
}

// suppressedIDs returns the suppressed indicators of each report, by
// "period/band".
func suppressedIDs(reports []quality.Report) map[string][]string {
	out := make(map[string][]string)
	for _, r := range reports {
		ids := []string{}
		for _, v := range r.Indicators {
			if v.Suppressed {
				ids = append(ids, v.ID)
			}
		}
		out[r.Period+"/"+r.AgeBand] = ids
	}
	return out
}

// participationCells are quarters of 2021 with invitations only. 7 of the
// 12 women of 50-59 invited in Q2 attended: a small count (and 5 did not).
// Q4 has the smallest counts of the other quarters in both bands.
//
//	         50-59      60-69      all
//	2021-Q1  300/400    400/500    700/900
//	2021-Q2    7/12     350/450    357/462
//	2021-Q3  290/380    410/520    700/900
//	2021-Q4  220/300    310/400    530/700
//	2021     817/1092  1470/1870  2287/2962
func participationCells() []bildrum.ScreeningCounts {
	p := func(period, band string, attended, invited int64) bildrum.ScreeningCounts {
		return bildrum.ScreeningCounts{Period: period, AgeBand: band, Invited: invited, Attended: attended}
	}
	return []bildrum.ScreeningCounts{
		p("2021-Q1", "50-59", 300, 400), p("2021-Q1", "60-69", 400, 500),
		p("2021-Q2", "50-59", 7, 12), p("2021-Q2", "60-69", 350, 450),
		p("2021-Q3", "50-59", 290, 380), p("2021-Q3", "60-69", 410, 520),
		p("2021-Q4", "50-59", 220, 300), p("2021-Q4", "60-69", 310, 400),
	}
}

// TestIndicatorsAcrossPeriods asks for the year, the quarters and the
// whole register separately, as the hub does, and checks that no quarter
// suppressed in one answer can be had from the others by subtraction (a
// year less three of its quarters).
func TestIndicatorsAcrossPeriods(t *testing.T) {
	store := &fakeCounts{quarters: participationCells(), version: 7}
	answers := make(map[string][]quality.Report)
	var all []quality.Report
	for _, period := range []string{"year", "quarter", quality.PeriodAll} {
		reports, err := quality.Indicators(context.Background(), store, "12", period, nil, 10)
		if err != nil {
			t.Fatalf("Indicators(%s): %v", period, err)
		}
		answers[period] = reports
		all = append(all, reports...)
	}
	if want := []bildrum.PeriodKind{bildrum.PeriodQuarter, bildrum.PeriodQuarter, bildrum.PeriodQuarter}; !slices.Equal(store.asked, want) {
		t.Errorf("the store was asked for %v, want the quarters each time (years are their sums)", store.asked)
	}
	// Participation of each cell, worked out by hand:
	// Q2/50-59 (7 of 12) is small; Q2/60-69 goes with it, or it is
	// Q2/all − Q2/60-69. Then 2021/50-59 − Q1 − Q3 − Q4 would give it
	// away again: the smallest other quarter, Q4/50-59, goes too, and
	// Q4/60-69 with it (both bands of Q4 and of 2021/60-69 would give it).
	// The four hidden cells form a rectangle: each row and column of the
	// table holds two or none of them, so no sum of the released ones
	// pins any of them down.
	hidden := map[string]bool{"2021-Q2/50-59": true, "2021-Q2/60-69": true, "2021-Q4/50-59": true, "2021-Q4/60-69": true}
	var cells []string
	for _, r := range all {
		cell := r.Period + "/" + r.AgeBand
		cells = append(cells, cell)
		if r.DataVersion != 7 || r.Threshold != 10 {
			t.Errorf("%s: version %d, threshold %d; want 7, 10", cell, r.DataVersion, r.Threshold)
		}
		v := r.Indicators[0]
		if v.ID != quality.IDParticipation || v.Suppressed != hidden[cell] {
			t.Errorf("%s: %s suppressed = %v, want %v", cell, v.ID, v.Suppressed, hidden[cell])
		}
	}
	wantCells := []string{"2021/50-59", "2021/60-69", "2021/all",
		"2021-Q1/50-59", "2021-Q1/60-69", "2021-Q1/all", "2021-Q2/50-59", "2021-Q2/60-69", "2021-Q2/all",
		"2021-Q3/50-59", "2021-Q3/60-69", "2021-Q3/all", "2021-Q4/50-59", "2021-Q4/60-69", "2021-Q4/all",
		"all/50-59", "all/60-69", "all/all"}
	if diff := cmp.Diff(wantCells, cells); diff != "" {
		t.Errorf("cells of the three answers (-want +got):\n%s", diff)
	}
	lattice, err := quality.Lattice("12", 7, participationCells(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lattice, all); diff != "" {
		t.Errorf("year, quarter and all answers differ from Lattice (-lattice +answers):\n%s", diff)
	}
	oracle := newOracleLattice(participationCells(), quality.DefaultResultWithinDays)
	if got := oracle.disclosed(all, 10); len(got) > 0 {
		t.Errorf("the three answers together disclose:\n%s", strings.Join(got, "\n"))
	}

	// The fixture has teeth: protecting each period kind on its own (as
	// Reports does) releases the year whole, and the year less three
	// quarters gives away the suppressed one.
	var apart []quality.Report
	for _, kind := range []bildrum.PeriodKind{bildrum.PeriodYear, bildrum.PeriodQuarter} {
		cells, _, _ := store.ScreeningCounts(context.Background(), kind)
		reports, err := quality.Reports("12", 7, cells, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		apart = append(apart, reports...)
	}
	if got := oracle.disclosed(apart, 10); !slices.Contains(got, "2021-Q2/50-59/attended = 7 worked out from the released numbers") {
		t.Errorf("years and quarters protected apart disclose %q; want the 7 of Q2/50-59 among them", got)
	}
}

// cancerCell is one quarter of one band whose counts are all 10 or more,
// or 0, and whose differences are too: every value is released but the
// initial-screen ones (no initial screens).
func cancerCell() bildrum.ScreeningCounts {
	e := bildrum.ExamCounts{Screened: 5000, TechnicalRepeats: 100, Recalled: 300,
		Cancers: 120, Invasive: 110, DCIS: 10, PreopDiagnosed: 100,
		NodeKnown: 100, NodeNegative: 80, SizeKnown: 100, InvasiveUpTo10MM: 30, InvasiveUnder15MM: 60,
		OpenBiopsyBenign: 10, OpenBiopsyCancer: 20, BiopsyBenign: 100, BiopsyCancer: 110,
		NegativeScreens: 4700, Interval0to11: 10, Interval12to23: 20, ResultKnown: 5000}
	e.ResultDays[5], e.ResultDays[30] = 4000, 1000
	return bildrum.ScreeningCounts{Period: "2021-Q1", AgeBand: "50-59", Invited: 6000, Attended: 5000, Subsequent: e}
}

// TestLatticeComplement checks the complement of a proportion (a count
// less a part of it is a count of people too) and the values suppressed
// with it, one quarter of one band at a time: its year, the whole register
// and "all" ages are then the same numbers and hide the same values.
func TestLatticeComplement(t *testing.T) {
	noInitial := []string{quality.IDRecallInitial, quality.IDDetectionInitial} // 0 of 0 initial screens
	tests := []struct {
		name string
		edit func(c *bildrum.ScreeningCounts)
		want []string // suppressed, besides noInitial
	}{
		{"every count and difference at least 10", func(*bildrum.ScreeningCounts) {}, nil},
		{"95 node-negative of 100: 5 node-positive", func(c *bildrum.ScreeningCounts) { c.Subsequent.NodeNegative = 95 },
			[]string{quality.IDNodeNegative}},
		{"100 % participation: nobody stayed away", func(c *bildrum.ScreeningCounts) { c.Attended = c.Invited },
			[]string{quality.IDParticipation}},
		{"no interval cancers 0–11 months", func(c *bildrum.ScreeningCounts) { c.Subsequent.Interval0to11 = 0 },
			[]string{quality.IDInterval0to11}},
		// 125 recalled, 120 cancers: PPV 120 of 125 leaves 5 recalls
		// without cancer. PPV goes, but recall (125 of 5,000) less
		// detection (120 of 5,000) would still give 5: the smaller,
		// cancers, is hidden wherever it shows (detection, the shares of
		// invasive and DCIS, pre-operative diagnosis), and with it the
		// cancers at subsequent screens (all cancers, since there are no
		// initial screens).
		{"5 recalls without cancer", func(c *bildrum.ScreeningCounts) {
			c.Subsequent.Recalled = 125
			c.Subsequent.BiopsyBenign = 0 // of the recalls without cancer
		}, []string{quality.IDDetection, quality.IDDetectionSubsequent, quality.IDInvasiveShare, quality.IDDCISShare,
			quality.IDBenignMalignantBiopsy, quality.IDPreoperativeDiagnosis, quality.IDPPVRecall}},
		// ≤ 10 mm 55 and < 15 mm 60 of 100: 5 tumours between. The
		// smaller of the two, ≤ 10 mm, goes.
		{"5 invasive cancers over 10 and under 15 mm", func(c *bildrum.ScreeningCounts) { c.Subsequent.InvasiveUpTo10MM = 55 },
			[]string{quality.IDInvasiveUpTo10MM}},
		// 110 invasive, nodal status known for 104: invasive share
		// (110 of 120) and node-negative (80 of 104) would give away 6
		// without a recorded nodal status; node-negative is the smaller.
		{"6 invasive cancers without nodal status", func(c *bildrum.ScreeningCounts) { c.Subsequent.NodeKnown = 104 },
			[]string{quality.IDNodeNegative}},
		// A ratio has no complement: 10 benign to 20 malignant open
		// biopsies are two counts of different people, both 10 or more.
		// But needle or open biopsies of cancers (110) less open ones
		// (here 104) are 6 needle-only biopsies: the open ratio goes.
		{"6 cancers biopsied by needle only", func(c *bildrum.ScreeningCounts) { c.Subsequent.OpenBiopsyCancer = 104 },
			[]string{quality.IDBenignMalignantOpen}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cancerCell()
			tt.edit(&c)
			reports, err := quality.Lattice("12", 1, []bildrum.ScreeningCounts{c}, targets(t), 10)
			if err != nil {
				t.Fatal(err)
			}
			want := append(slices.Clone(noInitial), tt.want...)
			order := func(ids []string) []string {
				var out []string
				for _, d := range quality.Definitions() {
					if slices.Contains(ids, d.ID) {
						out = append(out, d.ID)
					}
				}
				return out
			}
			got := suppressedIDs(reports)
			if len(got) != 6 {
				t.Errorf("reports of %d cells, want 6 (quarter, year, whole register; band and all ages)", len(got))
			}
			for cell, ids := range got {
				if diff := cmp.Diff(order(want), ids); diff != "" {
					t.Errorf("%s suppressed (-want +got):\n%s", cell, diff)
				}
			}
			oracle := newOracleLattice([]bildrum.ScreeningCounts{c}, targets(t).ResultWithinDays)
			if got := oracle.disclosed(reports, 10); len(got) > 0 {
				t.Errorf("disclosed:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// TestLatticeComplementAcrossBands: a proportion hidden for its complement
// takes the complement of another band with it, or "all" less that band
// gives it away.
func TestLatticeComplementAcrossBands(t *testing.T) {
	a, b := cancerCell(), cancerCell()
	a.Subsequent.NodeNegative = 95 // 5 node-positive
	b.AgeBand = "60-69"
	b.Subsequent.NodeNegative = 50 // 50 node-positive, fewer than in all (55)
	reports, err := quality.Lattice("12", 1, []bildrum.ScreeningCounts{a, b}, targets(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		want := r.AgeBand != bildrum.AgeBandAll // all: 145 of 200, 55 node-positive
		if v := find(t, r.Indicators, quality.IDNodeNegative); v.Suppressed != want {
			t.Errorf("%s/%s node-negative suppressed = %v, want %v", r.Period, r.AgeBand, v.Suppressed, want)
		}
	}
	oracle := newOracleLattice([]bildrum.ScreeningCounts{a, b}, targets(t).ResultWithinDays)
	if got := oracle.disclosed(reports, 10); len(got) > 0 {
		t.Errorf("disclosed:\n%s", strings.Join(got, "\n"))
	}
}

// randomQuarters returns the quarters of a random register of years from
// 2020 on: each quarter present with probability 4/5, each with the first
// two to five age bands, counts up to about twice scale and every part no
// larger than what it is part of (docs/quality.md).
func randomQuarters(rng *rand.Rand, years int, scale int64) []bildrum.ScreeningCounts {
	upTo := func(n int64) int64 { return rng.Int64N(n + 1) }
	var cells []bildrum.ScreeningCounts
	for y := 2020; y < 2020+years; y++ {
		for q := 1; q <= 4; q++ {
			if rng.IntN(5) == 0 {
				continue
			}
			for _, band := range bildrum.AgeBands()[:2+rng.IntN(4)] {
				c := bildrum.ScreeningCounts{Period: fmt.Sprintf("%d-Q%d", y, q), AgeBand: band}
				c.Invited = upTo(3 * scale)
				c.Attended = upTo(c.Invited)
				for _, e := range []*bildrum.ExamCounts{&c.Initial, &c.Subsequent} {
					e.Screened = upTo(2 * scale)
					e.TechnicalRepeats = upTo(e.Screened / 4)
					e.Recalled = upTo(e.Screened / 2)
					e.Cancers = upTo(e.Recalled)
					e.Invasive = upTo(e.Cancers)
					e.DCIS = e.Cancers - e.Invasive
					e.PreopDiagnosed = upTo(e.Cancers)
					e.NodeKnown = upTo(e.Invasive)
					e.NodeNegative = upTo(e.NodeKnown)
					e.SizeKnown = upTo(e.Invasive)
					e.InvasiveUnder15MM = upTo(e.SizeKnown)
					e.InvasiveUpTo10MM = upTo(e.InvasiveUnder15MM)
					e.BiopsyCancer = upTo(e.Cancers)
					e.OpenBiopsyCancer = upTo(e.BiopsyCancer)
					e.BiopsyBenign = upTo(e.Recalled - e.Cancers)
					e.OpenBiopsyBenign = upTo(e.BiopsyBenign)
					e.NegativeScreens = upTo(e.Screened - e.Cancers)
					e.Interval0to11 = upTo(e.NegativeScreens / 8)
					e.Interval12to23 = upTo(e.NegativeScreens / 8)
					e.ResultKnown = upTo(e.Screened)
					for range e.ResultKnown {
						e.ResultDays[rng.IntN(40)]++
					}
				}
				cells = append(cells, c)
			}
		}
	}
	return cells
}

// TestLatticeRandom runs the adversary of oracle_test.go against the
// released reports of random registers (a fixed seed: the same registers
// every run), small enough that many counts are small. Without the
// solution of all sums at once (protect's last step) some of these
// registers give small counts away.
func TestLatticeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2021))
	for run := range 24 {
		scale := []int64{8, 30, 200}[run%3]
		threshold := []int{10, 5}[run/3%2]
		cells := randomQuarters(rng, 1+rng.IntN(2), scale)
		reports, err := quality.Lattice("12", 1, cells, targets(t), threshold)
		if err != nil {
			t.Fatal(err)
		}
		oracle := newOracleLattice(cells, targets(t).ResultWithinDays)
		if got := oracle.disclosed(reports, int64(threshold)); len(got) > 0 {
			t.Errorf("register %d (%d cells, scale %d, threshold %d) discloses:\n%s", run, len(cells), scale, threshold, strings.Join(got, "\n"))
		}
	}
}

// BenchmarkLattice protects a random register the size of a middling
// region: twelve years, about 13,000 screens a year.
func BenchmarkLattice(b *testing.B) {
	cells := randomQuarters(rand.New(rand.NewPCG(1, 2)), 12, 600)
	tg, err := quality.DefaultTargets()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := quality.Lattice("12", 1, cells, tg, quality.DefaultThreshold); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIndicatorsErrors(t *testing.T) {
	ctx := context.Background()
	store := &fakeCounts{quarters: participationCells()}
	for _, period := range []string{"", "month", "2021"} {
		if _, err := quality.Indicators(ctx, store, "12", period, nil, 10); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("Indicators(period %q) error = %v, want EINVALID", period, err)
		}
	}
	if _, err := quality.Indicators(ctx, store, "12", "year", nil, 4); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("Indicators with threshold 4: error = %v, want EINVALID", err)
	}
	broken := errors.New("disk on fire")
	if _, err := quality.Indicators(ctx, &fakeCounts{err: broken}, "12", "year", nil, 10); !errors.Is(err, broken) {
		t.Errorf("Indicators over a failing store: error = %v, want it wrapped", err)
	}
	years, _, _ := store.ScreeningCounts(ctx, bildrum.PeriodYear)
	if _, err := quality.Lattice("12", 1, years, nil, 10); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("Lattice of year cells: error = %v, want EINVALID (quarters only)", err)
	}
	for _, period := range []string{"year", "quarter", quality.PeriodAll} {
		empty, err := quality.Indicators(ctx, &fakeCounts{}, "12", period, nil, 10)
		if err != nil || len(empty) != 0 {
			t.Errorf("Indicators(%s) of an empty register = %v, %v; want no reports", period, empty, err)
		}
	}
}

// TestIndicatorCache checks that a cache answers exactly as Indicators,
// builds one lattice per data version however many kinds and callers ask,
// and builds again when the register's version moves.
func TestIndicatorCache(t *testing.T) {
	ctx := context.Background()
	store := &fakeCounts{quarters: participationCells(), version: 7}
	cache := quality.NewIndicatorCache(store, "12", nil, 10)
	ask := func(want int) {
		t.Helper()
		for _, period := range []string{"year", "quarter", quality.PeriodAll, "year"} {
			got, err := cache.Indicators(ctx, period)
			if err != nil {
				t.Fatalf("Indicators(%s): %v", period, err)
			}
			direct, err := quality.Indicators(ctx, store, "12", period, nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(direct, got); diff != "" {
				t.Errorf("version %d, %s: the cache answers otherwise (-direct +cache):\n%s", store.version, period, diff)
			}
		}
		if n := cache.Lattices(); n != want {
			t.Errorf("version %d: %d lattices built, want %d", store.version, n, want)
		}
	}
	ask(1)
	store.version = 8
	store.quarters[0].Invited += 5
	ask(2)
	if _, err := cache.Indicators(ctx, "month"); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("Indicators(month) error = %v, want EINVALID", err)
	}
	broken := errors.New("disk on fire")
	if _, err := quality.NewIndicatorCache(&fakeCounts{err: broken}, "12", nil, 10).Indicators(ctx, "year"); !errors.Is(err, broken) {
		t.Errorf("a failing store gives %v, want it wrapped", err)
	}
}
