package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/sqlstore"
)

func TestThousands(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1\u202f000"}, {1234567, "1\u202f234\u202f567"}, {-4200, "−4\u202f200"}}
	for _, tt := range tests {
		if got := thousands(tt.in); got != tt.want {
			t.Errorf("thousands(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ max, want int }{{1, 1}, {9, 2}, {30, 10}, {1530, 500}, {2500, 500}, {100000, 20000}}
	for _, tt := range tests {
		if got := niceStep(tt.max); got != tt.want {
			t.Errorf("niceStep(%d) = %d, want %d", tt.max, got, tt.want)
		}
	}
}

func TestEpisodeFilter(t *testing.T) {
	tests := []struct {
		query   string
		want    bildrum.EpisodeFilter
		wantErr string
	}{
		{"", bildrum.EpisodeFilter{Limit: 100}, ""},
		{"from=2020-01-01&to=2020-12-31&unit=12-MAL&outcome=dcis&limit=5&offset=10",
			bildrum.EpisodeFilter{From: bildrum.Date{Year: 2020, Month: 1, Day: 1}, To: bildrum.Date{Year: 2020, Month: 12, Day: 31}, Unit: "12-MAL", Outcome: bildrum.OutcomeDCIS, Limit: 5, Offset: 10}, ""},
		{"from=2020-02-30", bildrum.EpisodeFilter{}, "want YYYY-MM-DD"},
		{"outcome=cancer", bildrum.EpisodeFilter{}, "use benign, dcis or invasive"},
		{"limit=0", bildrum.EpisodeFilter{}, "want 1 to 1000"},
		{"limit=5000", bildrum.EpisodeFilter{}, "want 1 to 1000"},
		{"offset=-1", bildrum.EpisodeFilter{}, "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := episodeFilter(httptest.NewRequest("GET", "/api/v1/exams?"+tt.query, nil))
			if tt.wantErr != "" {
				if !strings.Contains(bildrum.ErrorMessage(err), tt.wantErr) {
					t.Errorf("episodeFilter(%q) error = %v, want %q", tt.query, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("episodeFilter(%q) = %+v, %v; want %+v", tt.query, got, err, tt.want)
			}
		})
	}
}

// fixedOverview is a federation whose answer the test chooses.
type fixedOverview struct{ ov bildrum.FederationOverview }

func (f fixedOverview) Overview(context.Context) (bildrum.FederationOverview, error) {
	return f.ov, nil
}

func TestHubPageMarksPartialAnswers(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ov := bildrum.FederationOverview{
		AskedAt: time.Now(), Asked: 2, Answered: 1, Women: 215, Exams: 930,
		Nodes: []bildrum.NodeReport{
			{RegionAnswer: bildrum.RegionAnswer{Region: "12", Status: bildrum.AnswerOK}, Name: "Skåne", Web: "http://n12",
				Node: bildrum.NodeStatus{Region: "12", Women: 215, Exams: 930, CheckedAt: time.Now()}},
			{RegionAnswer: bildrum.RegionAnswer{Region: "14", Status: bildrum.AnswerTimeout, Reason: "did not answer in time"}, Name: "Västra Götaland", Web: "http://n14",
				Node: bildrum.NodeStatus{Region: "14", Women: 266, Exams: 985, CheckedAt: time.Now().Add(-time.Hour)}},
		},
	}
	mux := http.NewServeMux()
	(&Hub{Federation: fixedOverview{ov}, Auth: &auth.Authenticator{Store: db}}).Routes(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Body)
	page := string(body)
	for _, want := range []string{
		`id="partial"`, "1 of 2 regions answered",
		`class="status-timeout"`, "timeout: did not answer in time", "(last known)",
		"no answer now (timeout)", // the chart draws no bars for the silent region
		`data-region="25"`,        // all 21 regions are tiled
	} {
		if !strings.Contains(page, want) {
			t.Errorf("hub page lacks %q", want)
		}
	}
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("GET / = %d %s, want 200 HTML", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("no content security policy: %q", csp)
	}

	// Unknown paths answer problem details, not a page.
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/nothing", nil))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /nothing = %d %s, want 404 problem details", rec.Code, rec.Header().Get("Content-Type"))
	}
}
