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
//     but the first after an import finds them;
//   - AfterImport: the first call after an import (here a correction of one
//     row), which reads the whole register and stores the counts.
//
// Run it with `BENCH=ScreeningCounts BENCHTIME=10s TEST_PACKAGES=./sqlstore/
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
			b.Run("AfterImport", func(b *testing.B) {
				rows, _, err := db.ListEpisodes(ctx, bildrum.EpisodeFilter{Limit: 1})
				if err != nil || len(rows) != 1 {
					b.Fatalf("ListEpisodes: %v, %v", rows, err)
				}
				row := rows[0]
				n := 0
				for b.Loop() {
					b.StopTimer()
					n++
					row.Unit = fmt.Sprintf("12-B%d", n) // a correction: a new data version
					if _, err := db.PutEpisodes(ctx, []bildrum.ScreeningEpisode{row}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, _, err := db.ScreeningCounts(ctx, bildrum.PeriodYear); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(exams)/(b.Elapsed().Seconds()/float64(n)), "exams/s")
			})
		})
	}
}
