package quality_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/quality"
)

func TestDefaultTargets(t *testing.T) {
	tg := targets(t)
	if tg.ResultWithinDays != quality.DefaultResultWithinDays {
		t.Errorf("result_within_days = %d, want %d", tg.ResultWithinDays, quality.DefaultResultWithinDays)
	}
	for _, id := range []string{quality.IDParticipation, quality.IDRecallInitial, quality.IDRecallSubsequent, quality.IDPreoperativeDiagnosis} {
		if len(tg.For(id)) == 0 {
			t.Errorf("no default target for %s", id)
		}
	}
	for _, id := range []string{quality.IDDetection, quality.IDInterval0to11, quality.IDPPVRecall} {
		if len(tg.For(id)) != 0 {
			t.Errorf("a default target for %s, which the guidelines give relative to the background incidence or not at all", id)
		}
	}
}

func TestTargetStatus(t *testing.T) {
	tg := targets(t)
	tests := []struct {
		id   string
		rate float64
		want quality.Status
	}{
		{quality.IDParticipation, 80, quality.StatusDesirable},
		{quality.IDParticipation, 75, quality.StatusAcceptable}, // "> 75 %" is strict
		{quality.IDParticipation, 72, quality.StatusAcceptable},
		{quality.IDParticipation, 70, quality.StatusNotMet}, // "> 70 %"
		{quality.IDRecallSubsequent, 2.9, quality.StatusDesirable},
		{quality.IDRecallSubsequent, 3, quality.StatusAcceptable},
		{quality.IDRecallSubsequent, 5, quality.StatusNotMet},
		{quality.IDInvasiveShare, 85, quality.StatusDesirable}, // 80–90 %
		{quality.IDInvasiveShare, 75, quality.StatusAcceptable},
		{quality.IDInvasiveShare, 92, quality.StatusNotMet},
		{quality.IDBenignMalignantOpen, 0.25, quality.StatusDesirable}, // ≤ 1:4
		{quality.IDBenignMalignantOpen, 0.5, quality.StatusAcceptable}, // ≤ 1:2
		{quality.IDBenignMalignantOpen, 0.6, quality.StatusNotMet},
		{quality.IDDetection, 6, quality.StatusNoTarget},
	}
	for _, tt := range tests {
		if got, _ := tg.Evaluate(tt.id, &tt.rate); got != tt.want {
			t.Errorf("Evaluate(%s, %v) = %q, want %q", tt.id, tt.rate, got, tt.want)
		}
	}
	if got, src := tg.Evaluate(quality.IDParticipation, nil); got != quality.StatusNoData || src != "eu-2006" {
		t.Errorf("Evaluate(participation, no rate) = %q, %q; want no_data, eu-2006", got, src)
	}
	var none *quality.Targets
	rate := 50.0
	if got, _ := none.Evaluate(quality.IDParticipation, &rate); got != quality.StatusNoTarget {
		t.Errorf("nil targets: Evaluate = %q, want no_target", got)
	}
}

func TestParseTargetsErrors(t *testing.T) {
	const source = `"sources": [{"id": "eu", "citation": "European guidelines, 4th ed."}]`
	target := func(fields string) string {
		return `{"result_within_days": 21, ` + source + `, "targets": [{` + fields + `}]}`
	}
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{"result_within_days": `, "see docs/quality.md"},
		{"unknown field", `{"result_within_days": 21, "sources": [], "targets": [], "colour": "red"}`, `unknown field "colour"`},
		{"two values", `{"result_within_days": 21, "sources": [], "targets": []} {}`, "more than one JSON value"},
		{"days missing", `{"sources": [], "targets": []}`, "result_within_days is 0"},
		{"days too many", `{"result_within_days": 60, "sources": [], "targets": []}`, "from 1 to 59"},
		{"source without id", `{"result_within_days": 21, "sources": [{"citation": "x"}], "targets": []}`, "source 1 has no id"},
		{"source twice", `{"result_within_days": 21, "sources": [{"id": "a", "citation": "x"}, {"id": "a", "citation": "y"}], "targets": []}`, `"a" is listed twice`},
		{"source without citation", `{"result_within_days": 21, "sources": [{"id": "a"}], "targets": []}`, "has no citation"},
		{"unknown indicator", target(`"indicator": "happiness", "source": "eu", "reference": "t", "acceptable": {"min": 1}`), `unknown indicator "happiness": use one of participation`},
		{"unknown source", target(`"indicator": "participation", "source": "who", "reference": "t", "acceptable": {"min": 70}`), `source "who" is not among the sources`},
		{"no reference", target(`"indicator": "participation", "source": "eu", "acceptable": {"min": 70}`), "no reference"},
		{"no level", target(`"indicator": "participation", "source": "eu", "reference": "t"`), "neither an acceptable nor a desirable level"},
		{"empty level", target(`"indicator": "participation", "source": "eu", "reference": "t", "acceptable": {}`), "acceptable level: neither min nor max"},
		{"percent above 100", target(`"indicator": "participation", "source": "eu", "reference": "t", "desirable": {"min": 170}`), "desirable level: bound 170 is outside 0–100 percent"},
		{"negative ratio", target(`"indicator": "benign_malignant_open_biopsy", "source": "eu", "reference": "t", "acceptable": {"max": -1}`), "bound -1 is negative"},
		{"min above max", target(`"indicator": "dcis_share", "source": "eu", "reference": "t", "desirable": {"min": 20, "max": 10}`), "min 20 is above max 10"},
		{"desirable looser", target(`"indicator": "recall_initial", "source": "eu", "reference": "t", "acceptable": {"max": 5}, "desirable": {"max": 7}`),
			"desirable ≤ 7 is looser than acceptable ≤ 5"},
		{"desirable strictness looser", target(`"indicator": "participation", "source": "eu", "reference": "t", "acceptable": {"min": 70, "strict": true}, "desirable": {"min": 70}`),
			"desirable ≥ 70 is looser than acceptable > 70"},
		{"twice", `{"result_within_days": 21, ` + source + `, "targets": [
			{"indicator": "participation", "source": "eu", "reference": "t", "acceptable": {"min": 70}},
			{"indicator": "participation", "source": "eu", "reference": "t", "acceptable": {"min": 75}}]}`, "target 2 (participation, eu): the source already has a target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := quality.ParseTargets([]byte(tt.json))
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tt.want) {
				t.Errorf("ParseTargets error = %v, want EINVALID saying %q", err, tt.want)
			}
		})
	}
}

func TestLoadTargets(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "targets.json")
	national := `{"result_within_days": 14,
		"sources": [{"id": "se", "citation": "a national programme"}, {"id": "eu", "citation": "European guidelines"}],
		"targets": [
			{"indicator": "participation", "source": "se", "reference": "indicator 1", "acceptable": {"min": 80}, "desirable": {"min": 85}},
			{"indicator": "participation", "source": "eu", "reference": "summary table", "acceptable": {"min": 70, "strict": true}, "desirable": {"min": 75, "strict": true}}]}`
	if err := os.WriteFile(good, []byte(national), 0o644); err != nil {
		t.Fatal(err)
	}
	tg, err := quality.LoadTargets(good)
	if err != nil {
		t.Fatal(err)
	}
	// The first target listed for an indicator gives the status.
	rate := 78.0
	if got, src := tg.Evaluate(quality.IDParticipation, &rate); got != quality.StatusNotMet || src != "se" {
		t.Errorf("Evaluate(participation, 78) = %q from %q, want not_met from se", got, src)
	}
	if got := tg.For(quality.IDParticipation)[1].Status(rate); got != quality.StatusDesirable {
		t.Errorf("the EU target's status of 78 = %q, want desirable", got)
	}
	// Result within 14 days, from the file.
	c := bildrum.ScreeningCounts{Subsequent: bildrum.ExamCounts{Screened: 20, ResultKnown: 20}}
	c.Subsequent.ResultDays[14], c.Subsequent.ResultDays[15] = 15, 5
	if v := find(t, quality.Compute(c, tg), quality.IDResultWithinDays); v.Numerator == nil || *v.Numerator != 15 {
		t.Errorf("result within 14 days = %v, want 15 of 20", deref(v.Numerator))
	}

	missing := filepath.Join(dir, "nope.json")
	if _, err := quality.LoadTargets(missing); bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), missing) {
		t.Errorf("LoadTargets(missing) = %v, want EINVALID naming the file", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"result_within_days": 0, "sources": [], "targets": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := quality.LoadTargets(bad); bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadTargets(bad) = %v, want EINVALID wrapped with the file name", err)
	}
}

func TestLevelString(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	tests := []struct {
		level *quality.Level
		want  string
	}{
		{nil, "NA"},
		{&quality.Level{Min: f(70), Strict: true}, "> 70"},
		{&quality.Level{Min: f(25)}, "≥ 25"},
		{&quality.Level{Max: f(5), Strict: true}, "< 5"},
		{&quality.Level{Max: f(0.5)}, "≤ 0.5"},
		{&quality.Level{Min: f(80), Max: f(90)}, "80–90"},
	}
	for _, tt := range tests {
		if got := tt.level.String(); got != tt.want {
			t.Errorf("Level.String() = %q, want %q", got, tt.want)
		}
	}
}
