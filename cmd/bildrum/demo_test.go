package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
)

// testImages is how many examinations per region get synthetic mammograms
// in test demos: enough to exercise the archive, few enough to start fast.
const testImages = 3

// startDemo starts a demo on free loopback ports with its data in dir and
// stops it when the test ends.
func startDemo(t *testing.T, dir string) *Demo {
	t.Helper()
	d := NewDemo(DemoConfig{DataDir: dir, Addr: "127.0.0.1:0", Images: testImages, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: io.Discard})
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Start(ctx); err != nil {
		cancel()
		d.Close()
		t.Fatalf("start demo: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		d.Close()
	})
	return d
}

// get fetches url with the persona's token ("" for none) and decodes JSON into v.
func get(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("GET %s: %d with Content-Type %q, want problem details", url, resp.StatusCode, ct)
		}
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", url, body, err)
		}
	}
	return resp.StatusCode
}

func TestDemoEndpointsFollowTheContract(t *testing.T) {
	dir := t.TempDir()
	startDemo(t, dir)

	raw, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Decode generically: the contract is the JSON, not our struct.
	var e struct {
		Hub      map[string]string   `json:"hub"`
		Nodes    []map[string]string `json:"nodes"`
		Personas map[string]struct {
			Token    string `json:"token"`
			PersonID string `json:"person_id"`
		} `json:"personas"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("endpoints.json: %v", err)
	}
	if !strings.HasPrefix(e.Hub["web"], "http://127.0.0.1:") {
		t.Errorf("hub.web = %q, want a loopback URL", e.Hub["web"])
	}
	var regions []string
	for _, n := range e.Nodes {
		regions = append(regions, n["region"])
		if !strings.HasPrefix(n["web"], "http://127.0.0.1:") {
			t.Errorf("node %s: web = %q, want a loopback URL", n["region"], n["web"])
		}
		if !strings.HasPrefix(n["federation"], "https://127.0.0.1:") {
			t.Errorf("node %s: federation = %q, want a loopback URL with TLS", n["region"], n["federation"])
		}
	}
	if !slices.Equal(regions, []string{"01", "12", "14"}) {
		t.Errorf("node regions = %v, want [01 12 14]", regions)
	}
	personas := []string{"staff-01", "staff-12", "staff-14", "quality", "radiologist", "researcher", "permit-officer", "citizen", "auditor"}
	for _, name := range personas {
		p, ok := e.Personas[name]
		if !ok || len(p.Token) < 40 {
			t.Errorf("persona %q missing or without a token: %+v", name, p)
			continue
		}
		var me bildrum.Principal
		if code := get(t, e.Hub["web"]+"/api/v1/me", p.Token, &me); code != http.StatusOK || me.Name != name {
			t.Errorf("GET /api/v1/me as %s = %d %+v, want 200 naming the persona", name, code, me)
		}
	}
	// The citizen is a woman of the synthetic population with a screening history.
	citizen, err := bildrum.ParsePersonID(e.Personas["citizen"].PersonID)
	if err != nil || !citizen.Female() {
		t.Fatalf("citizen person_id %q: %v, want a woman's valid number", e.Personas["citizen"].PersonID, err)
	}
	var page struct {
		Rows []bildrum.ScreeningEpisode `json:"rows"`
	}
	found := false
	for offset := 0; !found; offset += 1000 {
		page.Rows = nil
		get(t, e.Nodes[1]["web"]+"/api/v1/exams?limit=1000&offset="+itoa(offset), e.Personas["staff-12"].Token, &page)
		if len(page.Rows) == 0 {
			break
		}
		for _, r := range page.Rows {
			found = found || r.Person == citizen && r.Attended
		}
	}
	if !found {
		t.Errorf("citizen %s has no examination in region 12's register", citizen)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestDemoAPIsCheckWhoAsks(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	e := d.Endpoints()
	tok := func(name string) string { return e.Personas[name].Token }
	node12 := e.Nodes[1].Web
	tests := []struct {
		name, url, token string
		want             int
	}{
		{"overview without token", e.Hub.Web + "/api/v1/federation", "", http.StatusUnauthorized},
		{"overview with a wrong token", e.Hub.Web + "/api/v1/federation", "bdr_forged", http.StatusUnauthorized},
		{"overview as researcher", e.Hub.Web + "/api/v1/federation", tok("researcher"), http.StatusOK},
		{"rows as own staff", node12 + "/api/v1/exams?limit=5", tok("staff-12"), http.StatusOK},
		{"rows as another region's staff", node12 + "/api/v1/exams", tok("staff-14"), http.StatusForbidden},
		{"rows as researcher", node12 + "/api/v1/exams", tok("researcher"), http.StatusForbidden},
		{"rows as citizen", node12 + "/api/v1/exams", tok("citizen"), http.StatusForbidden},
		{"rows with a bad date", node12 + "/api/v1/exams?from=2020-13-01", tok("staff-12"), http.StatusBadRequest},
		{"node status as quality", node12 + "/api/v1/status", tok("quality"), http.StatusOK},
		{"unknown API", e.Hub.Web + "/api/v1/nothing", tok("quality"), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, tt.url, tt.token, nil); got != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.url, got, tt.want)
			}
		})
	}
}

// TestDemoFederationNeedsCertificates checks that the nodes' federation
// endpoints take no bearer token and no certificate but the federation's.
func TestDemoFederationNeedsCertificates(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	e := d.Endpoints()
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", e.Nodes[1].Federation+"/status", nil)
	req.Header.Set("Authorization", "Bearer "+e.Personas["staff-12"].Token)
	if resp, err := insecure.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("federation status with a bearer token and no certificate: %d, want a refused handshake", resp.StatusCode)
	}
	plain := strings.Replace(e.Nodes[1].Federation, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("federation status over plain HTTP answered 200")
		}
	}
	// The demo's files are those `bildrum hub` and `bildrum node` read.
	for _, f := range []string{"config/hub.json", "config/node-01.json", "config/node-12.json", "config/node-14.json", "config/credentials.json", "ca/ca.crt", "certs/hub.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
}

func TestDemoOverviewMatchesTheNodes(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	var ov bildrum.FederationOverview
	get(t, e.Hub.API+"/federation", e.Personas["quality"].Token, &ov)
	if !ov.Complete || ov.Answered != 3 {
		t.Fatalf("overview answered %d, complete %v; want all 3", ov.Answered, ov.Complete)
	}
	women := 0
	for i, n := range ov.Nodes {
		var sum bildrum.RegisterSummary
		get(t, e.Nodes[i].API+"/status", e.Personas["quality"].Token, &sum)
		if n.Node.Women != sum.Women || n.Node.Exams != sum.Exams || sum.Women < 100 || sum.Exams < 300 {
			t.Errorf("region %s: hub says %d women %d exams, node says %d and %d (want equal, and a real population)", n.Region, n.Node.Women, n.Node.Exams, sum.Women, sum.Exams)
		}
		women += sum.Women
	}
	if ov.Women != women {
		t.Errorf("overview total %d women, want the sum %d", ov.Women, women)
	}

	// A node that stops answering makes the answer partial, and says so.
	d.nodes[1].Close() // node 12
	get(t, e.Hub.API+"/federation", e.Personas["quality"].Token, &ov)
	if ov.Complete || ov.Answered != 2 || ov.Nodes[1].Status != bildrum.AnswerDown {
		t.Errorf("with node 12 down: complete %v answered %d status of 12 %q; want partial, 2, down", ov.Complete, ov.Answered, ov.Nodes[1].Status)
	}
	if ov.Nodes[1].Node.Women == 0 {
		t.Errorf("node 12 down: last known figures lost")
	}
}

func TestDemoRestartKeepsDataAndTokens(t *testing.T) {
	dir := t.TempDir()
	first := NewDemo(DemoConfig{DataDir: dir, Addr: "127.0.0.1:0", Images: testImages, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: io.Discard})
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := first.Endpoints()
	first.Close()

	again := startDemo(t, dir)
	after := again.Endpoints()
	for name, p := range before.Personas {
		if after.Personas[name].Token != p.Token {
			t.Errorf("persona %s got a new token on restart", name)
		}
	}
	if after.Personas["citizen"].PersonID != before.Personas["citizen"].PersonID {
		t.Errorf("citizen changed on restart")
	}
	var sum bildrum.RegisterSummary
	get(t, after.Nodes[0].API+"/status", after.Personas["quality"].Token, &sum)
	if sum.DataVersion != 1 {
		t.Errorf("after restart data version = %d, want 1 (data kept, not rebuilt)", sum.DataVersion)
	}
}

func TestDemoBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o600)

	corruptDir := t.TempDir()
	os.WriteFile(filepath.Join(corruptDir, "node-12.db"), bytes.Repeat([]byte("garbage!"), 1000), 0o600)

	hubOnly := t.TempDir()
	db, err := sqlstore.Open(context.Background(), filepath.Join(hubOnly, "node-01.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
		dir      string // must hold no endpoints.json afterwards
	}{
		{"unknown command", []string{"demox"}, exitUsage, `unknown command "demox"`, ""},
		{"unknown flag", []string{"demo", "-bogus"}, exitUsage, "flag provided but not defined: -bogus", ""},
		{"stray argument", []string{"demo", "extra"}, exitUsage, `unexpected argument "extra"`, ""},
		{"bad address", []string{"demo", "-data", t.TempDir(), "-addr", "localhost"}, exitUsage, "want HOST:PORT", ""},
		{"data dir is a file", []string{"demo", "-data", filepath.Join(notADir, "sub")}, exitError, "cannot create data directory", ""},
		{"port in use", []string{"demo", "-data", t.TempDir(), "-addr", busy.Addr().String()}, exitError, "is in use by another program", ""},
		{"corrupt database", []string{"demo", "-images", "1", "-data", corruptDir, "-addr", "127.0.0.1:0"}, exitError, "is corrupt or not a bildrum database", corruptDir},
		{"database of another part", []string{"demo", "-images", "1", "-data", hubOnly, "-addr", "127.0.0.1:0"}, exitError, "belongs to a hub, not a node", hubOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantMsg) {
				t.Errorf("bildrum %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantMsg)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if n := strings.Count(stderr.String(), "bildrum:"); tt.wantCode == exitError && (n != 1 || !strings.HasPrefix(lines[len(lines)-1], "bildrum:")) {
				t.Errorf("bildrum %v printed %d error messages, want one clear one at the end: %q", tt.args, n, lines)
			}
			if tt.dir != "" {
				if _, err := os.Stat(filepath.Join(tt.dir, "endpoints.json")); err == nil {
					t.Errorf("failed start left an endpoints.json behind")
				}
			}
		})
	}
}
