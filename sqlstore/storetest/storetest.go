// Package storetest holds one conformance suite per store interface of the
// bildrum domain. Every implementation (SQLite and PostgreSQL today) runs the
// same suite, so the engines cannot drift apart in behaviour.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
)

// Official Skatteverket test numbers of women, usable in any fixture.
var testWomen = []bildrum.PersonID{"195001182046", "195203072227", "195411222267", "196110182547"}

func date(s string) bildrum.Date {
	d, err := bildrum.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// episode returns a complete, valid attended episode for fixtures.
func episode(id string, person bildrum.PersonID, exam string) bildrum.ScreeningEpisode {
	ex := date(exam)
	return bildrum.ScreeningEpisode{
		ID: id, Person: person, Region: "12", Unit: "12-MAL", Round: 3,
		Invited: ex.AddDays(-21), Attended: true, Examined: ex, Views: bildrum.StandardViews(),
		Reader1: "1", Reader2: "1", Consensus: "1", Density: "b", ResultDay: ex.AddDays(10),
	}
}

// RegisterStore runs the conformance suite of bildrum.RegisterStore. open
// must return an empty store for every call.
func RegisterStore(t *testing.T, open func(t *testing.T) bildrum.RegisterStore) {
	ctx := context.Background()

	t.Run("EmptySummary", func(t *testing.T) {
		s := open(t)
		sum, err := s.RegisterSummary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Women != 0 || sum.Exams != 0 || sum.DataVersion != 0 || !sum.FirstExam.IsZero() {
			t.Errorf("RegisterSummary of empty store = %+v, want zero counts and version 0", sum)
		}
	})

	t.Run("PutAndReadBack", func(t *testing.T) {
		s := open(t)
		recalled := episode("12-b", testWomen[1], "2021-05-03")
		recalled.Recalled, recalled.Consensus, recalled.Reader2 = true, "4", "4"
		recalled.Assessed, recalled.AdditionalImaging, recalled.Ultrasound, recalled.NeedleBiopsy = date("2021-05-24"), true, true, true
		recalled.AssessmentBIRADS, recalled.Outcome, recalled.Detection = "5", bildrum.OutcomeInvasive, bildrum.DetectedAtScreen
		recalled.Diagnosed, recalled.TumourSizeMM, recalled.NodalStatus, recalled.Stage, recalled.PreopDiagnosis = date("2021-05-30"), 12, bildrum.NodesNegative, "I", true
		missed := bildrum.ScreeningEpisode{ID: "12-c", Person: testWomen[0], Region: "12", Unit: "12-LUN", Round: 1, Invited: date("2022-01-10")}
		want := []bildrum.ScreeningEpisode{episode("12-a", testWomen[0], "2020-02-01"), recalled, missed}
		res, err := s.PutEpisodes(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if res != (bildrum.PutResult{Changed: 3}) {
			t.Errorf("PutEpisodes = %+v, want 3 changed", res)
		}
		got, total, err := s.ListEpisodes(ctx, bildrum.EpisodeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if total != 3 {
			t.Errorf("ListEpisodes total = %d, want 3", total)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListEpisodes mismatch (-want +got):\n%s", diff)
		}
		sum, err := s.RegisterSummary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantSum := bildrum.RegisterSummary{Region: "12", Women: 2, Invitations: 3, Exams: 2,
			FirstExam: date("2020-02-01"), LastExam: date("2021-05-03"), DataVersion: sum.DataVersion, UpdatedAt: sum.UpdatedAt}
		if diff := cmp.Diff(wantSum, sum); diff != "" {
			t.Errorf("RegisterSummary mismatch (-want +got):\n%s", diff)
		}
		if sum.DataVersion < 1 || sum.UpdatedAt.IsZero() {
			t.Errorf("RegisterSummary version %d updated %v, want >= 1 and set", sum.DataVersion, sum.UpdatedAt)
		}
	})

	t.Run("ReimportChangesNothing", func(t *testing.T) {
		s := open(t)
		rows := []bildrum.ScreeningEpisode{episode("12-a", testWomen[0], "2020-02-01"), episode("12-b", testWomen[1], "2020-03-01")}
		if _, err := s.PutEpisodes(ctx, rows); err != nil {
			t.Fatal(err)
		}
		before, _ := s.RegisterSummary(ctx)
		res, err := s.PutEpisodes(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if res != (bildrum.PutResult{Unchanged: 2}) {
			t.Errorf("second PutEpisodes = %+v, want 2 unchanged", res)
		}
		after, _ := s.RegisterSummary(ctx)
		if after.DataVersion != before.DataVersion {
			t.Errorf("data version moved from %d to %d on an identical re-import", before.DataVersion, after.DataVersion)
		}

		corrected := rows[1]
		corrected.Density = "c"
		res, err = s.PutEpisodes(ctx, []bildrum.ScreeningEpisode{rows[0], corrected})
		if err != nil {
			t.Fatal(err)
		}
		if res != (bildrum.PutResult{Changed: 1, Unchanged: 1}) {
			t.Errorf("correcting PutEpisodes = %+v, want 1 changed, 1 unchanged", res)
		}
		got, _, _ := s.ListEpisodes(ctx, bildrum.EpisodeFilter{})
		if len(got) != 2 || got[1].Density != "c" {
			t.Errorf("after correction rows = %+v, want density c on 12-b", got)
		}
		final, _ := s.RegisterSummary(ctx)
		if final.DataVersion <= after.DataVersion {
			t.Errorf("data version %d after a correction, want > %d", final.DataVersion, after.DataVersion)
		}
	})

	t.Run("InvalidBatchStoresNothing", func(t *testing.T) {
		s := open(t)
		bad := episode("12-x", "195001182047", "2020-02-01") // wrong check digit
		_, err := s.PutEpisodes(ctx, []bildrum.ScreeningEpisode{episode("12-a", testWomen[0], "2020-02-01"), bad})
		if bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Fatalf("PutEpisodes with a bad personnummer: err = %v, want EINVALID", err)
		}
		_, total, _ := s.ListEpisodes(ctx, bildrum.EpisodeFilter{})
		if total != 0 {
			t.Errorf("after a rejected batch the store holds %d rows, want 0", total)
		}
	})

	t.Run("LargeBatchAtomicAcrossChunks", func(t *testing.T) {
		s := open(t)
		var rows []bildrum.ScreeningEpisode
		for i := 0; i < 1000; i++ {
			rows = append(rows, episode(fmt.Sprintf("12-%04d", i), testWomen[i%len(testWomen)], "2019-01-01"))
		}
		rows[999].Region = "99"
		if _, err := s.PutEpisodes(ctx, rows); err == nil {
			t.Fatal("PutEpisodes with a bad region in the last chunk succeeded, want error")
		}
		rows[999].Region = "12"
		res, err := s.PutEpisodes(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != 1000 {
			t.Errorf("PutEpisodes of 1000 = %+v, want 1000 changed", res)
		}
		sum, _ := s.RegisterSummary(ctx)
		if sum.Women != len(testWomen) || sum.Exams != 1000 {
			t.Errorf("summary = %+v, want %d women, 1000 exams", sum, len(testWomen))
		}
	})

	t.Run("StreamIsAtomic", func(t *testing.T) {
		s := open(t)
		broken := errors.New("line 4501: bad check digit")
		tests := []struct {
			name    string
			failAt  int // yield an error before this many episodes; -1 never
			wantErr error
			want    int
		}{
			{"error after several chunks", 4500, broken, 0},
			{"error at once", 0, broken, 0},
			{"whole stream", -1, nil, 4600},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				seq := func(yield func(bildrum.ScreeningEpisode, error) bool) {
					for i := 0; i < 4600; i++ {
						if i == tt.failAt {
							yield(bildrum.ScreeningEpisode{}, broken)
							return
						}
						if !yield(episode(fmt.Sprintf("12-s%05d", i), testWomen[i%len(testWomen)], "2018-03-01"), nil) {
							return
						}
					}
				}
				res, err := s.PutEpisodeStream(ctx, seq)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("PutEpisodeStream error = %v, want %v", err, tt.wantErr)
				}
				_, total, _ := s.ListEpisodes(ctx, bildrum.EpisodeFilter{})
				if total != tt.want || (err == nil && res.Changed != tt.want) {
					t.Errorf("after PutEpisodeStream (%v): %d rows stored, result %+v; want %d", err, total, res, tt.want)
				}
			})
		}
		cctx, cancel := context.WithCancel(ctx)
		cancelled := func(yield func(bildrum.ScreeningEpisode, error) bool) {
			for i := 0; i < 3000; i++ {
				if i == 2500 {
					cancel()
				}
				if !yield(episode(fmt.Sprintf("12-c%05d", i), testWomen[0], "2019-03-01"), nil) {
					return
				}
			}
		}
		if _, err := s.PutEpisodeStream(cctx, cancelled); err == nil {
			t.Errorf("PutEpisodeStream with a context cancelled midway succeeded")
		}
		if _, total, _ := s.ListEpisodes(ctx, bildrum.EpisodeFilter{}); total != 4600 {
			t.Errorf("after a cancelled stream %d rows, want the 4600 from before", total)
		}
	})

	t.Run("ListFilterAndPage", func(t *testing.T) {
		s := open(t)
		a := episode("12-a", testWomen[0], "2019-06-01")
		b := episode("12-b", testWomen[1], "2020-06-01")
		b.Unit = "12-LUN"
		c := episode("12-c", testWomen[2], "2021-06-01")
		c.Outcome, c.Detection, c.Diagnosed, c.IntervalMonths = bildrum.OutcomeInvasive, bildrum.DetectedInterval, date("2022-01-15"), 7
		if _, err := s.PutEpisodes(ctx, []bildrum.ScreeningEpisode{c, b, a}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			filter bildrum.EpisodeFilter
			ids    []string
			total  int
		}{
			{"all ordered by date", bildrum.EpisodeFilter{}, []string{"12-a", "12-b", "12-c"}, 3},
			{"from", bildrum.EpisodeFilter{From: date("2020-06-01")}, []string{"12-b", "12-c"}, 2},
			{"to", bildrum.EpisodeFilter{To: date("2020-05-31")}, []string{"12-a"}, 1},
			{"unit", bildrum.EpisodeFilter{Unit: "12-LUN"}, []string{"12-b"}, 1},
			{"outcome", bildrum.EpisodeFilter{Outcome: bildrum.OutcomeInvasive}, []string{"12-c"}, 1},
			{"page", bildrum.EpisodeFilter{Limit: 1, Offset: 1}, []string{"12-b"}, 3},
			{"past the end", bildrum.EpisodeFilter{Offset: 5}, nil, 3},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := s.ListEpisodes(ctx, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if !cmp.Equal(ids, tt.ids) || total != tt.total {
					t.Errorf("ListEpisodes(%+v) = %v (total %d), want %v (total %d)", tt.filter, ids, total, tt.ids, tt.total)
				}
			})
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var rows []bildrum.ScreeningEpisode
				for i := 0; i < 50; i++ {
					rows = append(rows, episode(fmt.Sprintf("12-w%d-%d", w, i), testWomen[(w+i)%len(testWomen)], "2020-01-01"))
				}
				_, err := s.PutEpisodes(ctx, rows)
				errs <- err
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent PutEpisodes: %v", err)
			}
		}
		sum, _ := s.RegisterSummary(ctx)
		if sum.Invitations != 400 || sum.DataVersion != 8 {
			t.Errorf("after 8 concurrent writers: %d rows at version %d, want 400 at version 8", sum.Invitations, sum.DataVersion)
		}
	})
}

// CredentialStore runs the conformance suite of bildrum.CredentialStore.
func CredentialStore(t *testing.T, open func(t *testing.T) bildrum.CredentialStore) {
	ctx := context.Background()
	s := open(t)
	staff := bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Organisation: "Region Skåne", Region: "12"}
	citizen := bildrum.Principal{Name: "citizen", Role: bildrum.RoleCitizen, Organisation: "", Person: testWomen[0]}
	for token, p := range map[string]bildrum.Principal{"tok-staff": staff, "tok-citizen": citizen} {
		if err := s.PutCredential(ctx, bildrum.HashToken(token), p); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		token    string
		want     bildrum.Principal
		wantCode string
	}{
		{"tok-staff", staff, ""},
		{"tok-citizen", citizen, ""},
		{"tok-unknown", bildrum.Principal{}, bildrum.ENOTFOUND},
		{"", bildrum.Principal{}, bildrum.ENOTFOUND},
	}
	for _, tt := range tests {
		got, err := s.PrincipalByToken(ctx, bildrum.HashToken(tt.token))
		if code := bildrum.ErrorCode(err); code != tt.wantCode {
			t.Errorf("PrincipalByToken(%q) error = %v, want code %q", tt.token, err, tt.wantCode)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("PrincipalByToken(%q) mismatch (-want +got):\n%s", tt.token, diff)
		}
	}
	// Replacing keeps one credential per hash.
	moved := staff
	moved.Role = bildrum.RoleQuality
	if err := s.PutCredential(ctx, bildrum.HashToken("tok-staff"), moved); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.PrincipalByToken(ctx, bildrum.HashToken("tok-staff")); got.Role != bildrum.RoleQuality {
		t.Errorf("after replacing, role = %q, want quality", got.Role)
	}
}

// NodeDirectory runs the conformance suite of bildrum.NodeDirectory.
func NodeDirectory(t *testing.T, open func(t *testing.T) bildrum.NodeDirectory) {
	ctx := context.Background()
	s := open(t)
	if nodes, err := s.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of empty directory = %v, %v; want none", nodes, err)
	}
	for _, n := range []bildrum.Node{
		{Region: "14", Federation: "http://127.0.0.1:3/federation/v1", Web: "http://127.0.0.1:3"},
		{Region: "01", Federation: "http://127.0.0.1:1/federation/v1", Web: "http://127.0.0.1:1"},
	} {
		if err := s.PutNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutNode(ctx, bildrum.Node{Region: "99"}); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("PutNode(region 99) error = %v, want EINVALID", err)
	}
	checked := time.Date(2026, 11, 23, 8, 30, 0, 123456000, time.UTC)
	status := bildrum.NodeStatus{Region: "14", Version: "0.1.0", Women: 300, Exams: 1500, DataVersion: 4, CheckedAt: checked, LatencyMS: 12, CertExpires: checked.AddDate(1, 0, 0)}
	if err := s.RecordStatus(ctx, status); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordStatus(ctx, bildrum.NodeStatus{Region: "12"}); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
		t.Errorf("RecordStatus(unknown region) error = %v, want ENOTFOUND", err)
	}
	// Re-putting a node keeps its status.
	if err := s.PutNode(ctx, bildrum.Node{Region: "14", Federation: "http://127.0.0.1:4/federation/v1", Web: "http://127.0.0.1:4"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []bildrum.Node{
		{Region: "01", Federation: "http://127.0.0.1:1/federation/v1", Web: "http://127.0.0.1:1", LastStatus: bildrum.NodeStatus{Region: "01"}},
		{Region: "14", Federation: "http://127.0.0.1:4/federation/v1", Web: "http://127.0.0.1:4", LastStatus: status},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Nodes mismatch (-want +got):\n%s", diff)
	}
}
