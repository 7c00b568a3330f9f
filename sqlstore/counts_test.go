package sqlstore_test

import (
	"context"
	"fmt"
	"iter"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
	"github.com/bildrum/bildrum/synth"
	"github.com/google/go-cmp/cmp"
)

func TestCountStore(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.CountStore(t, func(t *testing.T) storetest.CountingRegister { return open(t, e.dsn(t), sqlstore.PartNode) })
		})
	}
}

// TestCountsAgreeAcrossEngines counts a synthetic register of both engines:
// the two read it with different SQL, so they must agree cell by cell.
func TestCountsAgreeAcrossEngines(t *testing.T) {
	ctx := context.Background()
	var dsns []string
	for _, e := range engines {
		dsns = append(dsns, e.dsn(t)) // skips at once without PostgreSQL
	}
	var got [][]bildrum.ScreeningCounts
	for i, e := range engines {
		db := open(t, dsns[i], sqlstore.PartNode)
		if _, err := db.PutEpisodeStream(ctx, synthRegister(synth.Config{Seed: 3, Regions: []string{"12"}, Generate: 1500})); err != nil {
			t.Fatal(err)
		}
		cells, _, err := db.ScreeningCounts(ctx, bildrum.PeriodQuarter)
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) == 0 {
			t.Fatalf("%s: no counts of a synthetic register", e.name)
		}
		got = append(got, cells)
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("SQLite and PostgreSQL disagree (-SQLite +PostgreSQL):\n%s", diff)
	}
}

// synthRegister streams a synthetic population's episodes.
func synthRegister(cfg synth.Config) iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		stopped := false
		_, err := synth.Generate(context.Background(), cfg, func(e bildrum.ScreeningEpisode) error {
			if !yield(e, nil) {
				stopped = true
				return errStopped
			}
			return nil
		})
		if err != nil && !stopped {
			yield(bildrum.ScreeningEpisode{}, err)
		}
	}
}

// errStopped ends synth.Generate when the consumer of synthRegister stops.
var errStopped = bildrum.Errorf(bildrum.EINTERNAL, "stopped")

// BenchmarkScreeningCounts measures bildrum.CountStore on one region's
// register of about 1.32 million invitations and one million examinations
// (synthetic, Skåne, 2014–2025: the official test numbers and 220,000
// generated women), built once per run with PutEpisodeStream, on SQLite and
// PostgreSQL in the same run:
//
//   - Stored: the counts of a data version already computed, as every call
//     after the first at a version finds them;
//   - Full: counting the whole register, as the first call after a bulk
//     load does (an import touching more than maxRecountWomen women), in
//     parts on all cores (splitCounts);
//   - OnePass: the same count in one pass on one connection, for the
//     ratio in the same run;
//   - Correction/N: an import correcting N women's rows, which recounts
//     those women (recount.go), and the first ScreeningCounts call after
//     it, timed together: what a region waits for after a routine import.
//
// Run it with `BENCH=ScreeningCounts BENCHTIME=10x TEST_PACKAGES=./sqlstore/
// make bench`; building the two registers takes a few minutes.
func BenchmarkScreeningCounts(b *testing.B) {
	ctx := context.Background()
	cfg := synth.Config{Seed: 7, Regions: []string{"12"}, Generate: 220000}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			db, err := sqlstore.Open(ctx, e.dsn(b), sqlstore.PartNode)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.PutEpisodeStream(ctx, synthRegister(cfg)); err != nil {
				b.Fatal(err)
			}
			cells, _, err := db.ScreeningCounts(ctx, bildrum.PeriodYear)
			if err != nil {
				b.Fatal(err)
			}
			var total bildrum.ScreeningCounts
			for _, c := range cells {
				total.Add(c)
			}
			exams := total.Exams().Screened
			b.Logf("%s: %d invitations, %d examinations in %d cells", e.name, total.Invited, exams, len(cells))

			b.Run("Stored", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := db.ScreeningCounts(ctx, bildrum.PeriodYear); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Full", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.FullCounts(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(exams)/(b.Elapsed().Seconds()/float64(b.N)), "exams/s")
			})
			b.Run("OnePass", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.CountInOnePass(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, women := range []int{1, 1000} {
				b.Run(fmt.Sprintf("Correction/%d", women), func(b *testing.B) {
					rows, _, err := db.ListEpisodes(ctx, bildrum.EpisodeFilter{Limit: 1000})
					if err != nil {
						b.Fatal(err)
					}
					var batch []bildrum.ScreeningEpisode
					seen := make(map[bildrum.PersonID]bool)
					for _, r := range rows {
						if !seen[r.Person] && len(batch) < women {
							seen[r.Person] = true
							batch = append(batch, r)
						}
					}
					n := 0
					for b.Loop() {
						n++
						for i := range batch {
							batch[i].Unit = fmt.Sprintf("12-B%d", n) // a correction: a new data version
						}
						if _, err := db.PutEpisodes(ctx, batch); err != nil {
							b.Fatal(err)
						}
						if _, _, err := db.ScreeningCounts(ctx, bildrum.PeriodYear); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(batch)), "women")
				})
			}
		})
	}
}
