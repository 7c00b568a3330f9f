package quality_test

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/quality"
	"github.com/bildrum/bildrum/sqlstore/storetest"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func targets(t *testing.T) *quality.Targets {
	t.Helper()
	tg, err := quality.DefaultTargets()
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// fixtureYear returns the count fixture's cells of one year summed over ages.
func fixtureYear(year string) bildrum.ScreeningCounts {
	return quality.Sum(quality.Select(storetest.CountFixtureYears(), year, year), year, bildrum.AgeBandAll)
}

// TestIndicatorsOnFixture checks every indicator of the count fixture
// (sqlstore/storetest) against values worked out by hand from its table:
// 2021 and 2022, all ages.
func TestIndicatorsOnFixture(t *testing.T) {
	type want struct {
		num, den int64
		rate     float64 // NaN: no rate
		status   quality.Status
	}
	none := math.NaN()
	tests := []struct {
		year string
		want map[string]want
	}{
		{"2021", map[string]want{
			// 11 invitations, 10 attended; 10 examinations, 3 initial (A1, B2, I1), 7 subsequent.
			quality.IDParticipation:         {10, 11, 100 * 10.0 / 11, quality.StatusDesirable},
			quality.IDTechnicalRepeat:       {1, 10, 10, quality.StatusNotMet},
			quality.IDRecall:                {6, 10, 60, quality.StatusNoTarget},
			quality.IDRecallInitial:         {2, 3, 100 * 2.0 / 3, quality.StatusNotMet},
			quality.IDRecallSubsequent:      {4, 7, 100 * 4.0 / 7, quality.StatusNotMet},
			quality.IDDetection:             {3, 10, 300, quality.StatusNoTarget},
			quality.IDDetectionInitial:      {1, 3, 1000.0 / 3, quality.StatusNoTarget},
			quality.IDDetectionSubsequent:   {2, 7, 2000.0 / 7, quality.StatusNoTarget},
			quality.IDInterval0to11:         {0, 6, 0, quality.StatusNoTarget},
			quality.IDInterval12to23:        {0, 6, 0, quality.StatusNoTarget},
			quality.IDInvasiveShare:         {1, 3, 100.0 / 3, quality.StatusAcceptable},
			quality.IDDCISShare:             {2, 3, 200.0 / 3, quality.StatusAcceptable},
			quality.IDNodeNegative:          {0, 1, 0, quality.StatusNotMet},
			quality.IDInvasiveUpTo10MM:      {0, 1, 0, quality.StatusNotMet},
			quality.IDInvasiveUnder15MM:     {1, 1, 100, quality.StatusDesirable},
			quality.IDBenignMalignantOpen:   {1, 1, 1, quality.StatusNotMet},
			quality.IDBenignMalignantBiopsy: {2, 3, 2.0 / 3, quality.StatusNoTarget},
			quality.IDPreoperativeDiagnosis: {2, 3, 200.0 / 3, quality.StatusNotMet},
			quality.IDPPVRecall:             {3, 6, 50, quality.StatusNoTarget},
			// Days 4, 7, 7, 9, 10, 14, 14, 20, 25, 70: 8 within 21 days; median (10+14)/2.
			quality.IDResultWithinDays: {8, 10, 80, quality.StatusNotMet},
			quality.IDResultMedianDays: {0, 10, 12, quality.StatusNoTarget},
		}},
		{"2022", map[string]want{
			// 9 invitations, all attended; 7 examinations, all subsequent.
			quality.IDParticipation:         {9, 9, 100, quality.StatusDesirable},
			quality.IDTechnicalRepeat:       {1, 7, 100.0 / 7, quality.StatusNotMet},
			quality.IDRecall:                {3, 7, 300.0 / 7, quality.StatusNoTarget},
			quality.IDRecallInitial:         {0, 0, none, quality.StatusNoData},
			quality.IDRecallSubsequent:      {3, 7, 300.0 / 7, quality.StatusNotMet},
			quality.IDDetection:             {2, 7, 2000.0 / 7, quality.StatusNoTarget},
			quality.IDDetectionInitial:      {0, 0, none, quality.StatusNoTarget},
			quality.IDDetectionSubsequent:   {2, 7, 2000.0 / 7, quality.StatusNoTarget},
			quality.IDInterval0to11:         {2, 4, 500, quality.StatusNoTarget},
			quality.IDInterval12to23:        {1, 4, 250, quality.StatusNoTarget},
			quality.IDInvasiveShare:         {2, 2, 100, quality.StatusNotMet},
			quality.IDDCISShare:             {0, 2, 0, quality.StatusNotMet},
			quality.IDNodeNegative:          {1, 1, 100, quality.StatusDesirable},
			quality.IDInvasiveUpTo10MM:      {1, 1, 100, quality.StatusDesirable},
			quality.IDInvasiveUnder15MM:     {1, 1, 100, quality.StatusDesirable},
			quality.IDBenignMalignantOpen:   {0, 1, 0, quality.StatusDesirable},
			quality.IDBenignMalignantBiopsy: {0, 2, 0, quality.StatusNoTarget},
			quality.IDPreoperativeDiagnosis: {1, 2, 50, quality.StatusNotMet},
			quality.IDPPVRecall:             {2, 3, 200.0 / 3, quality.StatusNoTarget},
			// Days 6, 7, 14, 14, 15, 23: 5 within 21 days; median 14.
			quality.IDResultWithinDays: {5, 6, 500.0 / 6, quality.StatusNotMet},
			quality.IDResultMedianDays: {0, 6, 14, quality.StatusNoTarget},
		}},
	}
	tg := targets(t)
	for _, tt := range tests {
		values := quality.Compute(fixtureYear(tt.year), tg)
		if len(values) != len(quality.Definitions()) || len(tt.want) != len(values) {
			t.Fatalf("%s: %d values, %d definitions, %d expected", tt.year, len(values), len(quality.Definitions()), len(tt.want))
		}
		for _, v := range values {
			t.Run(tt.year+"/"+v.ID, func(t *testing.T) {
				w, ok := tt.want[v.ID]
				if !ok {
					t.Fatalf("no expected value for %s", v.ID)
				}
				if v.Unit != quality.Days && (v.Numerator == nil || *v.Numerator != w.num) {
					t.Errorf("numerator = %v, want %d", deref(v.Numerator), w.num)
				}
				if v.Denominator == nil || *v.Denominator != w.den {
					t.Errorf("denominator = %v, want %d", deref(v.Denominator), w.den)
				}
				switch {
				case math.IsNaN(w.rate):
					if v.Rate != nil || v.Interval != nil {
						t.Errorf("rate, interval = %v, %v; want none", deref(v.Rate), v.Interval)
					}
				case v.Rate == nil || math.Abs(*v.Rate-w.rate) > 0.00005:
					t.Errorf("rate = %v, want %v", deref(v.Rate), w.rate)
				case v.Interval != nil && (v.Interval[0] > *v.Rate || v.Interval[1] < *v.Rate):
					t.Errorf("interval %v does not hold the rate %v", *v.Interval, *v.Rate)
				}
				if v.Status != w.status {
					t.Errorf("status = %q, want %q", v.Status, w.status)
				}
			})
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestIntervals checks each interval method against published values.
func TestIntervals(t *testing.T) {
	// R. G. Newcombe, Stat. Med. 17 (1998) 857–872, Table I, method 3
	// (Wilson score interval without continuity correction).
	tests := []struct {
		x, n   int64
		lo, hi float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0.0000, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1.0000},
	}
	for _, tt := range tests {
		lo, hi, ok := quality.Wilson(tt.x, tt.n, 1.959963984540054)
		if !ok || math.Abs(lo-tt.lo) > 0.00005 || math.Abs(hi-tt.hi) > 0.00005 {
			t.Errorf("Wilson(%d, %d) = %.4f–%.4f (%v), want %.4f–%.4f", tt.x, tt.n, lo, hi, ok, tt.lo, tt.hi)
		}
	}
	for _, bad := range [][2]int64{{0, 0}, {3, 2}, {-1, 5}} {
		if _, _, ok := quality.Wilson(bad[0], bad[1], 1.96); ok {
			t.Errorf("Wilson(%d, %d) ok, want no interval", bad[0], bad[1])
		}
	}

	// A per-1,000 rate is the Wilson interval of the proportion, times
	// 1,000: 81 cancers in 263 screens as in Newcombe's first example.
	v := quality.Compute(bildrum.ScreeningCounts{Subsequent: bildrum.ExamCounts{Screened: 263, Cancers: 81}}, nil)
	det := find(t, v, quality.IDDetection)
	if det.Interval == nil || math.Abs(det.Interval[0]-255.3) > 0.05 || math.Abs(det.Interval[1]-366.2) > 0.05 {
		t.Errorf("detection 81/263 interval = %v, want 255.3–366.2 per 1,000", det.Interval)
	}

	// A ratio b:m from the Wilson interval of b/(b+m): 81 benign to 182
	// malignant biopsies, p = 81/263 as above, so the ratio interval is
	// 0.2553/0.7447 to 0.3662/0.6338.
	c := bildrum.ScreeningCounts{Subsequent: bildrum.ExamCounts{OpenBiopsyBenign: 81, OpenBiopsyCancer: 182}}
	r := find(t, quality.Compute(c, nil), quality.IDBenignMalignantOpen)
	if r.Rate == nil || math.Abs(*r.Rate-81.0/182) > 0.00005 || r.Interval == nil ||
		math.Abs(r.Interval[0]-0.2553/0.7447) > 0.0003 || math.Abs(r.Interval[1]-0.3662/0.6338) > 0.0003 {
		t.Errorf("ratio 81:182 = %v, interval %v; want 0.445, 0.343–0.578", deref(r.Rate), r.Interval)
	}
	// No malignant biopsies: no ratio and no interval.
	c = bildrum.ScreeningCounts{Subsequent: bildrum.ExamCounts{OpenBiopsyBenign: 3}}
	if r := find(t, quality.Compute(c, nil), quality.IDBenignMalignantOpen); r.Rate != nil || r.Interval != nil {
		t.Errorf("ratio 3:0 = %v, %v; want none", deref(r.Rate), r.Interval)
	}

	// The median's interval: order statistics of ranks 40 and 61 for
	// n = 100 (M. J. Campbell, M. J. Gardner, BMJ 296 (1988) 1454). With
	// one result after each of 0…99 days, capped at 60, those are days
	// 39 and 60; the median is (49+50)/2.
	var e bildrum.ExamCounts
	for d := 0; d < 100; d++ {
		e.ResultKnown++
		e.ResultDays[min(d, bildrum.ResultDayBuckets-1)]++
	}
	m := find(t, quality.Compute(bildrum.ScreeningCounts{Subsequent: e}, nil), quality.IDResultMedianDays)
	if m.Rate == nil || *m.Rate != 49.5 || m.Interval == nil || *m.Interval != [2]float64{39, 60} {
		t.Errorf("median of 0…99 days = %v, interval %v; want 49.5, [39 60]", deref(m.Rate), m.Interval)
	}
}

func find(t *testing.T, values []quality.Value, id string) quality.Value {
	t.Helper()
	for _, v := range values {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("no value %s", id)
	return quality.Value{}
}

func TestFunnelLimits(t *testing.T) {
	tests := []struct {
		name string
		unit quality.Unit
		mean float64
		n    int64
		want quality.Funnel
	}{
		// 50 % at n = 100: ±1.96·5 and ±3.09·5 percentage points.
		{"percent", quality.Percent, 50, 100, quality.Funnel{Denominator: 100, Mean: 50,
			Lower95: 40.20018, Upper95: 59.79982, Lower998: 34.54884, Upper998: 65.45116}},
		// 5 per 1,000 at n = 10,000: ±1.96·0.70534 and ±3.09·0.70534 per 1,000.
		{"per 1,000", quality.PerMille, 5, 10000, quality.Funnel{Denominator: 10000, Mean: 5,
			Lower95: 3.61757, Upper95: 6.38243, Lower998: 2.82035, Upper998: 7.17965}},
		// Clamped at 0 for a small volume.
		{"clamped", quality.Percent, 3, 20, quality.Funnel{Denominator: 20, Mean: 3,
			Lower95: 0, Upper95: 10.47620, Lower998: 0, Upper998: 14.78752}},
	}
	opt := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-4 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := quality.FunnelLimits(tt.unit, tt.mean, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, opt); diff != "" {
				t.Errorf("FunnelLimits(%s, %v, %d) mismatch (-want +got):\n%s", tt.unit, tt.mean, tt.n, diff)
			}
		})
	}
	for _, bad := range []struct {
		unit quality.Unit
		mean float64
		n    int64
	}{{quality.Ratio, 0.5, 100}, {quality.Days, 14, 100}, {quality.Percent, 50, 0}, {quality.Percent, 101, 10}, {quality.PerMille, -1, 10}} {
		if _, err := quality.FunnelLimits(bad.unit, bad.mean, bad.n); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("FunnelLimits(%s, %v, %d) error = %v, want EINVALID", bad.unit, bad.mean, bad.n, err)
		}
	}
}

func TestPooledMean(t *testing.T) {
	c1 := bildrum.ScreeningCounts{Invited: 1000, Attended: 800}
	c2 := bildrum.ScreeningCounts{Invited: 3000, Attended: 2100}
	small := bildrum.ScreeningCounts{Invited: 8, Attended: 4}
	var values []quality.Value
	for _, c := range []bildrum.ScreeningCounts{c1, c2, small} {
		v, err := find(t, quality.Compute(c, nil), quality.IDParticipation).Suppress(10)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	mean, missing, ok := quality.PooledMean(values)
	if !ok || math.Abs(mean-72.5) > 1e-9 || missing != 1 {
		t.Errorf("PooledMean = %v, %d missing, %v; want 72.5 %% (2900/4000), 1 missing", mean, missing, ok)
	}
}

func TestSuppress(t *testing.T) {
	cell := bildrum.ScreeningCounts{Invited: 120, Attended: 9, Subsequent: bildrum.ExamCounts{Screened: 9, Recalled: 0, ResultKnown: 9}}
	cell.Subsequent.ResultDays[7] = 9
	big := bildrum.ScreeningCounts{Invited: 120, Attended: 100}
	nodes := bildrum.ScreeningCounts{Subsequent: bildrum.ExamCounts{NodeKnown: 100, NodeNegative: 95, OpenBiopsyBenign: 95, OpenBiopsyCancer: 100}}
	everyone := bildrum.ScreeningCounts{Invited: 120, Attended: 120}
	tests := []struct {
		name      string
		cell      bildrum.ScreeningCounts
		id        string
		threshold int
		want      bool // suppressed
	}{
		{"numerator below", cell, quality.IDParticipation, 10, true},
		{"numerator at the threshold", cell, quality.IDParticipation, 9, false},
		{"denominator below", cell, quality.IDTechnicalRepeat, 10, true},
		{"zero numerator", big, quality.IDParticipation, 101, true},
		{"both large", big, quality.IDParticipation, 10, false},
		{"median, few results", cell, quality.IDResultMedianDays, 10, true},
		{"median, enough results", cell, quality.IDResultMedianDays, 5, false},
		{"no denominator", big, quality.IDRecallInitial, 10, true},
		{"complement below: 5 node-positive", nodes, quality.IDNodeNegative, 10, true},
		{"complement at the threshold", nodes, quality.IDNodeNegative, 5, false},
		{"complement 0: everyone attended", everyone, quality.IDParticipation, 10, true},
		{"a ratio has no complement", nodes, quality.IDBenignMalignantOpen, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := find(t, quality.Compute(tt.cell, targets(t)), tt.id)
			got, err := v.Suppress(tt.threshold)
			if err != nil {
				t.Fatal(err)
			}
			if got.Suppressed != tt.want {
				t.Fatalf("Suppress(%d) of %s = %+v, want suppressed %v", tt.threshold, tt.id, got, tt.want)
			}
			if !got.Suppressed {
				if diff := cmp.Diff(v, got); diff != "" {
					t.Errorf("Suppress changed a value it kept (-before +after):\n%s", diff)
				}
				return
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			for _, field := range []string{`"numerator":null`, `"denominator":null`, `"rate":null`, `"interval":null`, `"suppressed":true`, `"status":"no_data"`} {
				if !strings.Contains(string(b), field) {
					t.Errorf("suppressed JSON %s lacks %s", b, field)
				}
			}
		})
	}
	for _, threshold := range []int{4, 0, -10} {
		if _, err := find(t, quality.Compute(big, nil), quality.IDParticipation).Suppress(threshold); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("Suppress(%d) error = %v, want EINVALID: the threshold is never below 5", threshold, err)
		}
	}
	if _, err := quality.Reports("12", 1, []bildrum.ScreeningCounts{big}, nil, 4); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("Reports with threshold 4: error = %v, want EINVALID", err)
	}
}

// TestReportsProtectBySubtraction checks that Reports suppresses what the
// released values would give away by subtraction.
func TestReportsProtectBySubtraction(t *testing.T) {
	exams := func(screened, recalled int64) bildrum.ExamCounts {
		return bildrum.ExamCounts{Screened: screened, Recalled: recalled}
	}
	cells := []bildrum.ScreeningCounts{
		// 40-49 has 7 invitations (suppressed): the smallest other band,
		// 70-74, must go too, or 40-49 = all − the others.
		{Period: "2021", AgeBand: "40-49", Invited: 7, Attended: 7, Initial: exams(4, 1), Subsequent: exams(500, 20)},
		{Period: "2021", AgeBand: "50-59", Invited: 900, Attended: 800, Initial: exams(30, 3), Subsequent: exams(770, 25)},
		{Period: "2021", AgeBand: "60-69", Invited: 700, Attended: 600, Subsequent: exams(600, 18)},
		{Period: "2021", AgeBand: "70-74", Invited: 300, Attended: 250, Subsequent: exams(250, 11)},
	}
	reports, err := quality.Reports("12", 4, cells, targets(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	var bands []string
	suppressed := make(map[string]bool) // band/indicator
	for _, r := range reports {
		bands = append(bands, r.AgeBand)
		if r.Region != "12" || r.DataVersion != 4 || r.Period != "2021" || r.Threshold != 10 {
			t.Errorf("report %+v: want region 12, version 4, period 2021, threshold 10", r)
		}
		for _, v := range r.Indicators {
			suppressed[r.AgeBand+"/"+v.ID] = v.Suppressed
		}
	}
	if want := []string{"40-49", "50-59", "60-69", "70-74", "all"}; !cmp.Equal(bands, want) {
		t.Errorf("report bands = %v, want %v", bands, want)
	}
	tests := []struct {
		cell string
		want bool
	}{
		{"40-49/participation", true},  // 7 < 10
		{"70-74/participation", true},  // else 40-49 = all − 50-59 − 60-69 − 70-74
		{"50-59/participation", false}, // the sum of 40-49 and 70-74 is all that can be had
		{"all/participation", false},
		{"40-49/recall_initial", true},     // 4 initial screens
		{"40-49/recall_subsequent", true},  // else recall_initial = recall − recall_subsequent
		{"40-49/recall", false},            // 21 of 504
		{"50-59/recall_initial", true},     // 3 recalled
		{"50-59/recall_subsequent", true},  // its complement
		{"all/recall_initial", true},       // 4 of 34
		{"all/recall_subsequent", true},    // its complement in all
		{"60-69/recall_initial", true},     // 0 of 0 initial screens…
		{"60-69/recall_subsequent", false}, // …describes nobody, needs no complement
	}
	for _, tt := range tests {
		if got := suppressed[tt.cell]; got != tt.want {
			t.Errorf("%s suppressed = %v, want %v", tt.cell, got, tt.want)
		}
	}
}

// TestReportJSON holds the API's JSON shape in a golden file: one region,
// one period, one band and all ages. The counts sit near the threshold, so
// the file shows suppression too (all ages are the same numbers as the
// band, and hide the same): 3 cancers at initial screens, and the
// subsequent ones with them (all less initial); 4 and 9 interval cancers;
// 9 DCIS of 55 cancers (both shares); 32 node-negative of 41 (9
// node-positive); ≤ 10 mm 15 and < 15 mm 24 (9 between: the smaller
// goes); 2 benign open biopsies; 52 biopsied of 55 cancers (3 without a
// biopsy: the biopsy ratio goes); 47 of 55 diagnosed before surgery (8
// not).
func TestReportJSON(t *testing.T) {
	cell := bildrum.ScreeningCounts{Period: "2021", AgeBand: "50-59", Invited: 12000, Attended: 9300,
		Initial: bildrum.ExamCounts{Screened: 400, Recalled: 22, Cancers: 3, Invasive: 3, ResultKnown: 400},
		Subsequent: bildrum.ExamCounts{Screened: 8900, TechnicalRepeats: 210, Recalled: 270, Cancers: 52, Invasive: 43, DCIS: 9,
			NodeKnown: 41, NodeNegative: 32, SizeKnown: 42, InvasiveUpTo10MM: 15, InvasiveUnder15MM: 24, PreopDiagnosed: 47,
			OpenBiopsyBenign: 2, OpenBiopsyCancer: 6, BiopsyBenign: 110, BiopsyCancer: 52, NegativeScreens: 8840,
			Interval0to11: 4, Interval12to23: 9, ResultKnown: 8900}}
	cell.Initial.ResultDays[10] = 400
	cell.Subsequent.ResultDays[9], cell.Subsequent.ResultDays[14], cell.Subsequent.ResultDays[25] = 4000, 4700, 200
	reports, err := quality.Reports("12", 3, []bildrum.ScreeningCounts{cell}, targets(t), quality.DefaultThreshold)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(reports, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "reports.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./quality -update to write it)", err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(string(got))); diff != "" {
		t.Errorf("reports JSON mismatch (-%s +got):\n%s", golden, diff)
	}
}

func TestDefinitions(t *testing.T) {
	seen := make(map[string]bool)
	for _, d := range quality.Definitions() {
		if seen[d.ID] || d.NameSV == "" || d.NameEN == "" || d.Numerator == "" || d.Denominator == "" {
			t.Errorf("definition %+v: want a unique id, both names, numerator and denominator", d)
		}
		seen[d.ID] = true
		switch d.Unit {
		case quality.Percent, quality.PerMille, quality.Ratio, quality.Days:
		default:
			t.Errorf("definition %s: unknown unit %q", d.ID, d.Unit)
		}
	}
}
