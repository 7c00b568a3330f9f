package synth

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
)

// rates are the screening indicators of a set of episodes.
type rates struct {
	invitations, attended, screened  int // screened: attended and read
	recalled, recalledFirst, first   int
	assessed, needle, open           int
	screenCancers, dcis, invasive    int
	small10, small15, nodeNeg, preop int
	interval, intervalFirstYear      int
	intervalInvasive                 int
	intervalSizeSum, screenSizeSum   int
	density                          map[bildrum.Density]int
}

// measure generates cfg's population and computes the indicators of the
// episodes, grouped by key.
func measure(t *testing.T, cfg Config, key func(bildrum.ScreeningEpisode) string) map[string]*rates {
	t.Helper()
	out := make(map[string]*rates)
	_, err := Generate(context.Background(), cfg, func(e bildrum.ScreeningEpisode) error {
		r := out[key(e)]
		if r == nil {
			r = &rates{density: make(map[bildrum.Density]int)}
			out[key(e)] = r
		}
		r.add(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// add counts an episode. A first screen is an attended round 1.
func (r *rates) add(e bildrum.ScreeningEpisode) {
	r.invitations++
	if !e.Attended {
		return
	}
	r.attended++
	if e.ResultDay.IsZero() {
		return
	}
	{
		r.screened++
		r.density[e.Density]++
		first := e.Round == 1
		if first {
			r.first++
		}
		if e.Recalled {
			r.recalled++
			if first {
				r.recalledFirst++
			}
		}
		if !e.Assessed.IsZero() {
			r.assessed++
			if e.NeedleBiopsy {
				r.needle++
			}
			if e.OpenBiopsy {
				r.open++
			}
		}
		r.addCancer(e)
	}
}

// addCancer counts the cancer of an episode, if any.
func (r *rates) addCancer(e bildrum.ScreeningEpisode) {
	switch e.Detection {
	case bildrum.DetectedAtScreen:
		r.screenCancers++
		if e.PreopDiagnosis {
			r.preop++
		}
		if e.Outcome == bildrum.OutcomeDCIS {
			r.dcis++
			return
		}
		r.invasive++
		r.screenSizeSum += e.TumourSizeMM
		if e.TumourSizeMM <= 10 {
			r.small10++
		}
		if e.TumourSizeMM < 15 {
			r.small15++
		}
		if e.NodalStatus == bildrum.NodesNegative {
			r.nodeNeg++
		}
	case bildrum.DetectedInterval:
		r.interval++
		if e.IntervalMonths < 12 {
			r.intervalFirstYear++
		}
		if e.Outcome == bildrum.OutcomeInvasive {
			r.intervalInvasive++
			r.intervalSizeSum += e.TumourSizeMM
		}
	}
}

func pct(n, d int) float64      { return 100 * float64(n) / float64(max(d, 1)) }
func perMille(n, d int) float64 { return 1000 * float64(n) / float64(max(d, 1)) }

// String lays the indicators out for the test log.
func (r rates) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invitations %d, attended %d, screened (read) %d\n", r.invitations, r.attended, r.screened)
	fmt.Fprintf(&b, "attendance               %5.1f %%\n", pct(r.attended, r.invitations))
	fmt.Fprintf(&b, "recall                   %5.2f %% (first screen %.2f %%, later %.2f %%)\n", pct(r.recalled, r.screened), pct(r.recalledFirst, r.first), pct(r.recalled-r.recalledFirst, r.screened-r.first))
	fmt.Fprintf(&b, "screen-detected cancer   %5.2f per 1000 screened\n", perMille(r.screenCancers, r.screened))
	fmt.Fprintf(&b, "PPV of recall            %5.1f %%\n", pct(r.screenCancers, r.assessed))
	fmt.Fprintf(&b, "needle / open biopsy     %5.1f %% / %.1f %% of assessed recalls\n", pct(r.needle, r.assessed), pct(r.open, r.assessed))
	fmt.Fprintf(&b, "DCIS share               %5.1f %%\n", pct(r.dcis, r.screenCancers))
	fmt.Fprintf(&b, "invasive <=10 / <15 mm   %5.1f %% / %.1f %%, mean %.1f mm\n", pct(r.small10, r.invasive), pct(r.small15, r.invasive), float64(r.screenSizeSum)/float64(max(r.invasive, 1)))
	fmt.Fprintf(&b, "node-negative            %5.1f %%\n", pct(r.nodeNeg, r.invasive))
	fmt.Fprintf(&b, "preoperative diagnosis   %5.1f %%\n", pct(r.preop, r.screenCancers))
	fmt.Fprintf(&b, "interval cancer          %5.2f per 1000 screened (%.0f %% in months 0-11, %.0f %% invasive, mean %.1f mm)\n",
		perMille(r.interval, r.screened), pct(r.intervalFirstYear, r.interval), pct(r.intervalInvasive, r.interval), float64(r.intervalSizeSum)/float64(max(r.intervalInvasive, 1)))
	fmt.Fprintf(&b, "density a/b/c/d          %.1f / %.1f / %.1f / %.1f %%", pct(r.density["a"], r.screened), pct(r.density["b"], r.screened), pct(r.density["c"], r.screened), pct(r.density["d"], r.screened))
	return b.String()
}

// TestRates checks that a large population has plausible Swedish screening
// indicators: each bound fails if the feature behind it breaks.
func TestRates(t *testing.T) {
	r := measure(t, Config{Seed: 1, Generate: 20000}, func(bildrum.ScreeningEpisode) string { return "" })[""]
	t.Logf("Generate:20000, regions 01 12 14, 2014-2025:\n%s", r)
	tests := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"attendance %", pct(r.attended, r.invitations), 70, 85},
		{"recall %", pct(r.recalled, r.screened), 2, 5},
		{"first-screen recall %", pct(r.recalledFirst, r.first), 4, 7},
		{"screen-detected per 1000", perMille(r.screenCancers, r.screened), 4, 8},
		{"PPV of recall %", pct(r.screenCancers, r.assessed), 12, 30},
		{"interval cancer per 1000", perMille(r.interval, r.screened), 0.5, 2.5},
		{"DCIS share %", pct(r.dcis, r.screenCancers), 10, 25},
		{"invasive <=10 mm %", pct(r.small10, r.invasive), 25, 45},
		{"invasive <15 mm %", pct(r.small15, r.invasive), 45, 70},
		{"node-negative %", pct(r.nodeNeg, r.invasive), 65, 85},
		{"preoperative diagnosis %", pct(r.preop, r.screenCancers), 80, 97},
		{"needle biopsy % of recalls", pct(r.needle, r.assessed), 40, 60},
		{"density a %", pct(r.density["a"], r.screened), 5, 16},
		{"density b %", pct(r.density["b"], r.screened), 32, 48},
		{"density c %", pct(r.density["c"], r.screened), 32, 48},
		{"density d %", pct(r.density["d"], r.screened), 5, 16},
	}
	for _, tt := range tests {
		if tt.got < tt.min || tt.got > tt.max {
			t.Errorf("%s = %.2f, want %g–%g", tt.name, tt.got, tt.min, tt.max)
		}
	}
	if mi, ms := float64(r.intervalSizeSum)/float64(max(r.intervalInvasive, 1)), float64(r.screenSizeSum)/float64(max(r.invasive, 1)); mi <= ms {
		t.Errorf("interval cancers mean %.1f mm, screen-detected %.1f mm: want interval ones larger", mi, ms)
	}
}

// TestRatesByInterval checks that attendance follows the regions' profiles
// and that the next invitation cuts interval cancers short.
func TestRatesByInterval(t *testing.T) {
	cfg := Config{Seed: 1, Regions: []string{"06", "12", "20"}, Generate: 40000}
	byRegion := measure(t, cfg, func(e bildrum.ScreeningEpisode) string { return e.Region })
	byInterval := measure(t, cfg, func(e bildrum.ScreeningEpisode) string { return fmt.Sprint(regionProfiles[e.Region].interval) })
	for region, r := range byRegion {
		want := 100 * regionProfiles[region].attendance
		if got := pct(r.attended, r.invitations); got < want-2 || got > want+2 {
			t.Errorf("region %s attendance = %.1f %%, want %.0f ± 2 %%", region, got, want)
		}
	}
	tests := []struct {
		months    int
		firstYear [2]float64 // share of interval cancers in months 0–11, %
		perMille  [2]float64 // interval cancers per 1000 screened
	}{
		{18, [2]float64{45, 80}, [2]float64{0.6, 1.4}}, // the second year is cut short
		{24, [2]float64{20, 47}, [2]float64{1.0, 2.0}}, // a third in the first year
	}
	for _, tt := range tests {
		r := byInterval[fmt.Sprint(tt.months)]
		t.Logf("regions inviting every %d months:\n%s", tt.months, r)
		if got := pct(r.intervalFirstYear, r.interval); got < tt.firstYear[0] || got > tt.firstYear[1] {
			t.Errorf("%d months: interval cancers in months 0-11 = %.1f %%, want %g–%g %%", tt.months, got, tt.firstYear[0], tt.firstYear[1])
		}
		if got := perMille(r.interval, r.screened); got < tt.perMille[0] || got > tt.perMille[1] {
			t.Errorf("%d months: interval cancers = %.2f per 1000, want %g–%g", tt.months, got, tt.perMille[0], tt.perMille[1])
		}
	}
}
