package federation_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/sqlstore"
)

// fakeRegister reports a fixed summary.
type fakeRegister struct{ sum bildrum.RegisterSummary }

func (f fakeRegister) RegisterSummary(context.Context) (bildrum.RegisterSummary, error) {
	return f.sum, nil
}

func openDB(t *testing.T, part sqlstore.Part) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), string(part)+".db"), part)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startNode serves a real NodeServer for region that accepts hubToken.
func startNode(t *testing.T, region string, women, exams int, hubToken string) *httptest.Server {
	t.Helper()
	db := openDB(t, sqlstore.PartNode)
	if err := db.PutCredential(context.Background(), bildrum.HashToken(hubToken), bildrum.Principal{Name: "hub", Role: bildrum.RoleHub}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&federation.NodeServer{
		Region:   region,
		Register: fakeRegister{bildrum.RegisterSummary{Region: region, Women: women, Exams: exams, DataVersion: 3}},
		Auth:     &auth.Authenticator{Store: db},
	}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestOverviewReportsEveryRegionHonestly(t *testing.T) {
	ctx := context.Background()
	const token = "hub-secret"
	ok := startNode(t, "12", 300, 1500, token)
	wrongToken := startNode(t, "14", 250, 1200, "another-secret")
	down := startNode(t, "03", 1, 1, token)
	down.Close()
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // holds the answer until the hub gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); stalled.Close() })

	dir := openDB(t, sqlstore.PartHub)
	for region, srv := range map[string]*httptest.Server{"12": ok, "14": wrongToken, "03": down, "01": stalled} {
		if err := dir.PutNode(ctx, bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1", Web: srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	hub := &federation.Hub{Directory: dir, Client: &federation.Client{Token: token, NodeTimeout: 300 * time.Millisecond}}
	ov, err := hub.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"01": bildrum.AnswerTimeout, "03": bildrum.AnswerDown, "12": bildrum.AnswerOK, "14": bildrum.AnswerRefused}
	if len(ov.Nodes) != len(want) {
		t.Fatalf("overview has %d regions, want %d", len(ov.Nodes), len(want))
	}
	for _, n := range ov.Nodes {
		if n.Status != want[n.Region] {
			t.Errorf("region %s: status %q (%s), want %q", n.Region, n.Status, n.Reason, want[n.Region])
		}
		if n.Status != bildrum.AnswerOK && n.Reason == "" {
			t.Errorf("region %s: status %q without a reason", n.Region, n.Status)
		}
	}
	if ov.Complete || ov.Answered != 1 || ov.Asked != 4 {
		t.Errorf("overview complete=%v answered=%d asked=%d, want incomplete 1 of 4", ov.Complete, ov.Answered, ov.Asked)
	}
	if ov.Women != 300 || ov.Exams != 1500 {
		t.Errorf("overview totals %d women %d exams, want only the answering region's 300 and 1500", ov.Women, ov.Exams)
	}

	// The answering node's status is kept as its last known one.
	nodes, _ := dir.Nodes(ctx)
	for _, n := range nodes {
		if n.Region == "12" && (n.LastStatus.Women != 300 || n.LastStatus.CheckedAt.IsZero()) {
			t.Errorf("last status of 12 = %+v, want 300 women and a check time", n.LastStatus)
		}
	}
}

func TestNodeStatusNeedsHubRole(t *testing.T) {
	srv := startNode(t, "12", 1, 1, "hub-secret")
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "Bearer nope", http.StatusUnauthorized},
		{"malformed", "Basic abc", http.StatusUnauthorized},
		{"hub", "Bearer hub-secret", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+federation.PathStatus, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET status with %q = %d, want %d", tt.header, resp.StatusCode, tt.want)
			}
		})
	}
}
