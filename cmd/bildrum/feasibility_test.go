package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/tlog"
)

// TestFeasibilityThroughTheHub: a researcher asks how many women match; each
// region answers with a noisy, signed count or "fewer than 10"; the same
// question again gets the same answer without a second charge; the history
// and remaining budgets are hers to see; others may not ask.
func TestFeasibilityThroughTheHub(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	researcher := e.Personas["researcher"].Token
	criteria := []byte(`{"purpose":"research","age":{"min":50,"max":69},"exam_date":{"from":"2016-01-01","to":"2024-12-31"}}`)

	type region struct {
		Region     string    `json:"region"`
		Status     string    `json:"status"`
		Count      *int64    `json:"count"`
		Suppressed bool      `json:"suppressed"`
		Interval   *[2]int64 `json:"interval"`
		Remaining  *float64  `json:"remaining"`
		Provenance any       `json:"provenance"`
	}
	var first, again struct {
		QueryHash string   `json:"query_hash"`
		Regions   []region `json:"regions"`
		Complete  bool     `json:"complete"`
	}
	// Before the first consent sync every node refuses secondary use.
	if code, body := call(t, "POST", e.Hub.API+"/feasibility", researcher, "application/json", criteria); code != http.StatusOK || !bytes.Contains(body, []byte("never been synchronised")) {
		t.Errorf("before any consent sync: %d %.300s, want every region refusing, failing closed", code, body)
	}
	if err := d.hub.SyncConsentNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "POST", e.Hub.API+"/feasibility", researcher, "application/json", criteria)
	if code != http.StatusOK || json.Unmarshal(body, &first) != nil || len(first.Regions) != 3 || !first.Complete || len(first.QueryHash) != 64 {
		t.Fatalf("POST /api/v1/feasibility = %d %s, want an answer from all three regions", code, body)
	}
	for _, r := range first.Regions {
		if r.Status != "ok" || r.Provenance == nil || (r.Count == nil) != r.Suppressed {
			t.Errorf("region %s: %+v, want ok, signed, and a count unless suppressed", r.Region, r)
		}
		if r.Count != nil && *r.Count < 10 {
			t.Errorf("region %s released a small cell: %d", r.Region, *r.Count)
		}
	}
	code, body = call(t, "POST", e.Hub.API+"/feasibility", researcher, "application/json", criteria)
	json.Unmarshal(body, &again)
	for i, r := range again.Regions {
		f := first.Regions[i]
		if (r.Count == nil) != (f.Count == nil) || (r.Count != nil && *r.Count != *f.Count) {
			t.Errorf("region %s answered %v then %v: want the same answer", r.Region, f.Count, r.Count)
		}
		if r.Remaining != nil && f.Remaining != nil && *r.Remaining != *f.Remaining {
			t.Errorf("region %s charged again for a repeated question: %v then %v", r.Region, *f.Remaining, *r.Remaining)
		}
	}
	var overview struct {
		Budgets []struct {
			Region    string   `json:"region"`
			Remaining *float64 `json:"remaining"`
		} `json:"budgets"`
		History []any `json:"history"`
	}
	if code := get(t, e.Hub.API+"/feasibility", researcher, &overview); code != http.StatusOK || len(overview.Budgets) != 3 || len(overview.History) != 3 {
		t.Errorf("GET /api/v1/feasibility = %d %+v, want 3 budgets and 3 questions", code, overview)
	}
	for _, b := range overview.Budgets {
		if b.Remaining == nil || *b.Remaining >= 10 {
			t.Errorf("budget of %s: %v, want charged once below the initial 10", b.Region, b.Remaining)
		}
	}

	// Every answer is a query event in the public log: one per region and
	// question, fresh or repeated, naming the query but nobody, which the
	// auditor's tool reads.
	if err := d.hub.CarryAccessEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBildrum(t, "log", "verify", "-url", e.Hub.Log, "-vkey", e.Hub.LogVKey, "-state", filepath.Join(t.TempDir(), "state"), "-full")
	if code != 0 || !strings.Contains(stdout, "0 about a person (version 1), 6 about no one person") {
		t.Errorf("log verify -full after two questions to three regions: %d\n%s%s; want 6 query leaves and no others", code, stdout, stderr)
	}
	size, err := d.hub.tlog.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	perRegion := map[string]int{}
	for i := range size {
		raw, err := d.hub.tlog.Entry(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := tlog.ParseLeaf(raw)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Kind != bildrum.AccessFeasibilityQuery || leaf.AboutPerson() || !strings.Contains(leaf.Subject, first.QueryHash) || leaf.Actor.Role != bildrum.RoleResearcher {
			t.Errorf("leaf %d = %+v; want a query event naming query %s", i, leaf, first.QueryHash)
		}
		perRegion[leaf.Region]++
	}
	if len(perRegion) != 3 || perRegion["12"] != 2 {
		t.Errorf("query leaves per region %v, want two for each of the three regions", perRegion)
	}

	for _, tt := range []struct {
		name, token string
		body        string
		want        int
	}{
		{"unknown field", researcher, `{"purpose":"research","colour":"blue"}`, http.StatusBadRequest},
		{"care is not secondary", researcher, `{"purpose":"care"}`, http.StatusBadRequest},
		{"impossible ages", researcher, `{"purpose":"research","age":{"min":70,"max":50}}`, http.StatusBadRequest},
		{"SQL in a field", researcher, `{"purpose":"research","regions":["12'; DROP TABLE episodes;--"]}`, http.StatusBadRequest},
		{"staff may not ask", e.Personas["staff-12"].Token, string(criteria), http.StatusForbidden},
	} {
		if code, body := call(t, "POST", e.Hub.API+"/feasibility", tt.token, "application/json", []byte(tt.body)); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}
}
