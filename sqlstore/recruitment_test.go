package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
	"github.com/bildrum/bildrum/synth"
	"github.com/google/go-cmp/cmp"
)

// hubOutbox is a hub database as the recruitment suite sees it: its
// access outbox read through AccessEventsAfter.
type hubOutbox struct{ *sqlstore.DB }

// RecordedAccesses reads the whole outbox, a page at a time.
func (h hubOutbox) RecordedAccesses(ctx context.Context) ([]bildrum.AccessEvent, error) {
	var out []bildrum.AccessEvent
	var seq int64
	for {
		page, err := h.AccessEventsAfter(ctx, seq, 1000)
		if err != nil || len(page) == 0 {
			return out, err
		}
		for _, e := range page {
			out = append(out, e.Event)
			seq = e.Seq
		}
	}
}

func TestRecruitmentStores(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Run("RecruitmentStore", func(t *testing.T) {
				storetest.RecruitmentStore(t, func(t *testing.T) storetest.RecruitmentHub { return hubOutbox{open(t, e.dsn(t), sqlstore.PartHub)} })
			})
			t.Run("TrialCandidateStore", func(t *testing.T) {
				storetest.TrialCandidateStore(t, func(t *testing.T) storetest.TrialNode { return open(t, e.dsn(t), sqlstore.PartNode) })
			})
		})
	}
}

func TestRecordAccesses(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, part := range []sqlstore.Part{sqlstore.PartNode, sqlstore.PartHub} {
				t.Run(string(part), func(t *testing.T) {
					db := open(t, e.dsn(t), part)
					if err := db.RecordAccesses(ctx, nil); err != nil {
						t.Fatalf("RecordAccesses(none): %v", err)
					}
					at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
					// Two full batches of the prepared statement and a rest.
					var want []bildrum.AccessEvent
					for i := range 250 {
						want = append(want, bildrum.AccessEvent{Time: at.Add(time.Duration(i) * time.Millisecond), Actor: bildrum.Principal{Name: "hub", Role: bildrum.RoleHub},
							Purpose: bildrum.PurposeRecruitment, Region: "12", Person: "195001182046", Kind: "recruitment-invitation", What: fmt.Sprintf("invitation %d", i)})
					}
					if err := db.RecordAccesses(ctx, want[:1]); err != nil {
						t.Fatal(err)
					}
					if err := db.RecordAccesses(ctx, want[1:]); err != nil {
						t.Fatal(err)
					}
					got, err := hubOutbox{db}.RecordedAccesses(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("RecordAccesses then AccessEventsAfter (-want +got):\n%s", diff)
					}
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					if err := db.RecordAccesses(cctx, want[:3]); err == nil {
						t.Errorf("RecordAccesses with a cancelled context succeeded")
					}
					if got, _ := (hubOutbox{db}).RecordedAccesses(ctx); len(got) != len(want) {
						t.Errorf("after a failed RecordAccesses %d events, want the %d from before", len(got), len(want))
					}
				})
			}
		})
	}
}

// BenchmarkTrialCandidates measures a node's matching of a recruitment
// request over the synthetic register of BenchmarkCountMatching, by default
// of 180,000 generated women (BILDRUM_BENCH_WOMEN changes it), every one
// opted in to trial contact: matching every woman returns some 175,000.
// SQLite reads a copy of the database BenchmarkCountMatching caches;
// PostgreSQL (with `make bench`) gets the register written afresh.
func BenchmarkTrialCandidates(b *testing.B) {
	ctx := context.Background()
	women := 180000
	if v := os.Getenv("BILDRUM_BENCH_WOMEN"); v != "" {
		fmt.Sscan(v, &women)
	}
	cfg := synth.Config{Seed: 12, Regions: []string{"12"}, Generate: women}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			var db *sqlstore.DB
			var err error
			if e.name == "SQLite" {
				path := filepath.Join(b.TempDir(), "node.db")
				if err := copyFile(feasibilityBenchDB(b, women), path); err != nil {
					b.Fatal(err)
				}
				db, err = sqlstore.Open(ctx, path, sqlstore.PartNode)
			} else {
				db, err = sqlstore.Open(ctx, e.dsn(b), sqlstore.PartNode)
				if err == nil {
					err = fillRegister(ctx, db, cfg)
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var recs []bildrum.ConsentRecord
			seen := map[bildrum.PersonID]bool{}
			if _, err := synth.Generate(ctx, cfg, func(ep bildrum.ScreeningEpisode) error {
				if !seen[ep.Person] {
					seen[ep.Person] = true
					recs = append(recs, bildrum.ConsentRecord{Person: ep.Person, Version: int64(len(recs) + 1), ChangedAt: time.Now(), ChangedBy: "citizen",
						Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{}, CareBlocks: []string{}, TrialContact: bildrum.TrialContact{OptIn: true, Email: "x@example.se"}}})
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			if err := db.ApplyConsentChanges(ctx, recs, int64(len(recs)), time.Now()); err != nil {
				b.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				c    bildrum.Criteria
			}{
				{"all-women", bildrum.Criteria{}},
				{"typical", benchCriteria[1].c},
			} {
				b.Run(tc.name, func(b *testing.B) {
					tc.c.Purpose, tc.c.Unit = bildrum.PurposeRecruitment, bildrum.UnitWomen
					var n int
					var lat []time.Duration
					for b.Loop() {
						start := time.Now()
						got, _, err := db.TrialCandidates(ctx, tc.c)
						if err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
						n = len(got)
					}
					slices.Sort(lat)
					b.ReportMetric(float64(n), "women")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				})
			}
		})
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
