package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
	"github.com/google/go-cmp/cmp"
)

// TestImportsRecountExactly checks the counts an import keeps up to date
// (recount.go) against a count of the whole register, after each of a
// series of imports that touch women in every way a correction can: first
// load, changed findings, a missed examination, a new round, new women, an
// episode moved to another woman, and an import too large to recount.
func TestImportsRecountExactly(t *testing.T) {
	ctx := context.Background()
	var all []bildrum.ScreeningEpisode
	if _, err := synth.Generate(ctx, synth.Config{Seed: 5, Regions: []string{"12"}, Generate: 120}, func(e bildrum.ScreeningEpisode) error {
		all = append(all, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The last women stay out of the first load, to arrive later.
	lastWoman := all[len(all)-1].Person
	split := slices.IndexFunc(all, func(e bildrum.ScreeningEpisode) bool { return e.Person == lastWoman })
	first, late := all[:split], all[split:]
	find := func(ok func(e bildrum.ScreeningEpisode) bool) bildrum.ScreeningEpisode {
		t.Helper()
		i := slices.IndexFunc(first, ok)
		if i < 0 {
			t.Fatal("the synthetic register has no episode the test needs")
		}
		return first[i]
	}
	screened := func(e bildrum.ScreeningEpisode) bool { return e.Attended && !e.Examined.IsZero() && e.Outcome == "" }

	imports := []struct {
		name    string
		rows    func() []bildrum.ScreeningEpisode
		limit   int  // a lower recount limit, when not 0
		recount bool // the import stores the new version's counts
	}{
		{"first load into an empty register", func() []bildrum.ScreeningEpisode { return first }, 0, true},
		{"a screen turns out to be a cancer", func() []bildrum.ScreeningEpisode {
			e := find(screened)
			e.Recalled, e.Assessed, e.NeedleBiopsy, e.PreopDiagnosis = true, e.Examined.AddDays(9), true, true
			e.Outcome, e.Detection, e.Diagnosed, e.TumourSizeMM, e.NodalStatus = "invasive", "screen", e.Examined.AddDays(20), 12, "negative"
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
		{"an examination is withdrawn", func() []bildrum.ScreeningEpisode {
			e := find(func(e bildrum.ScreeningEpisode) bool { return screened(e) && e.Round > 1 })
			e.Attended, e.Examined, e.ResultDay, e.Views = false, bildrum.Date{}, bildrum.Date{}, nil
			e.Reader1, e.Reader2, e.Consensus, e.Density = "", "", "", ""
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
		{"a woman's earliest examination is corrected to round 1", func() []bildrum.ScreeningEpisode {
			e := find(func(e bildrum.ScreeningEpisode) bool { return screened(e) && e.Round == 2 })
			e.Round = 1
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
		{"a new round for a woman already registered", func() []bildrum.ScreeningEpisode {
			e := find(screened)
			e.ID += "-next"
			e.Round++
			e.Invited, e.Examined = e.Invited.AddDays(730), e.Examined.AddDays(730)
			if !e.ResultDay.IsZero() {
				e.ResultDay = e.ResultDay.AddDays(730)
			}
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
		{"new women", func() []bildrum.ScreeningEpisode { return late }, 0, true},
		{"an episode moves to another woman", func() []bildrum.ScreeningEpisode {
			e := find(screened)
			e.Person = lastWoman
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
		{"an import too large to recount", func() []bildrum.ScreeningEpisode {
			var rows []bildrum.ScreeningEpisode
			for _, e := range first[:40] {
				e.Unit += "-X"
				rows = append(rows, e)
			}
			return rows
		}, 3, false},
		{"a correction after a full count", func() []bildrum.ScreeningEpisode {
			e := find(screened)
			e.TechnicalRepeat = !e.TechnicalRepeat
			return []bildrum.ScreeningEpisode{e}
		}, 0, true},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			db := open(t, eng.dsn(t), sqlstore.PartNode)
			for _, imp := range imports {
				if imp.limit != 0 {
					sqlstore.SetRecountLimit(t, imp.limit)
				}
				res, err := db.PutEpisodes(ctx, imp.rows())
				if err != nil {
					t.Fatalf("%s: %v", imp.name, err)
				}
				if imp.limit != 0 {
					sqlstore.SetRecountLimit(t, 25000)
				}
				if res.Changed == 0 {
					t.Fatalf("%s: the import changed nothing", imp.name)
				}
				summary, err := db.RegisterSummary(ctx)
				if err != nil {
					t.Fatal(err)
				}
				stored, err := db.StoredCounts(ctx, summary.DataVersion)
				if err != nil {
					t.Fatal(err)
				}
				full, err := db.FullCounts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !imp.recount {
					if stored != nil {
						t.Errorf("%s: counts stored for an import beyond the recount limit", imp.name)
					}
				} else if stored == nil {
					t.Errorf("%s: the import stored no counts", imp.name)
				} else if diff := cmp.Diff(full, stored); diff != "" {
					t.Errorf("%s: recounted counts differ from a full count (-full +recounted):\n%s", imp.name, diff)
				}
				got, version, err := db.ScreeningCounts(ctx, bildrum.PeriodQuarter)
				if err != nil {
					t.Fatal(err)
				}
				if version != summary.DataVersion {
					t.Errorf("%s: counts of version %d, register at %d", imp.name, version, summary.DataVersion)
				}
				if diff := cmp.Diff(full, got); diff != "" {
					t.Errorf("%s: ScreeningCounts differ from a full count (-full +got):\n%s", imp.name, diff)
				}
			}
		})
	}
}

// TestCountInParts checks that a register counted in parts, on several
// connections at once, gives the counts of one pass, and that a part that
// does not see the counting snapshot's data version stops the split.
func TestCountInParts(t *testing.T) {
	ctx := context.Background()
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			db := open(t, eng.dsn(t), sqlstore.PartNode)
			if _, err := db.PutEpisodeStream(ctx, synthRegister(synth.Config{Seed: 9, Regions: []string{"12"}, Generate: 400})); err != nil {
				t.Fatal(err)
			}
			summary, err := db.RegisterSummary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := db.CountInOnePass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(whole) == 0 {
				t.Fatal("no counts of a synthetic register")
			}
			for _, parts := range []int{2, 3, 4} {
				cells, ok, err := db.CountInParts(ctx, parts, summary.DataVersion)
				if err != nil || !ok {
					t.Fatalf("%d parts: ok %v, %v", parts, ok, err)
				}
				if diff := cmp.Diff(whole, cells); diff != "" {
					t.Errorf("%d parts differ from one pass (-one pass +parts):\n%s", parts, diff)
				}
			}
			if _, ok, err := db.CountInParts(ctx, 2, summary.DataVersion-1); err != nil || ok {
				t.Errorf("parts at another data version: ok %v, %v; want the split given up", ok, err)
			}
		})
	}
}

// TestBulkImportRefreshesStatistics checks that a large import on
// PostgreSQL leaves the planner statistics of the episodes it wrote, so
// that the recount after it looks women up by index instead of scanning.
func TestBulkImportRefreshesStatistics(t *testing.T) {
	ctx := context.Background()
	db := open(t, engines[1].dsn(t), sqlstore.PartNode)
	res, err := db.PutEpisodeStream(ctx, synthRegister(synth.Config{Seed: 4, Regions: []string{"12"}, Generate: 2500}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed < 10000 {
		t.Fatalf("the synthetic register has %d episodes; the test needs at least 10,000", res.Changed)
	}
	var tuples float64
	if err := db.QueryRowForTest(ctx, `SELECT reltuples FROM pg_class WHERE relname = 'episodes'`).Scan(&tuples); err != nil {
		t.Fatal(err)
	}
	if tuples < float64(res.Changed)*0.9 {
		t.Errorf("after importing %d episodes the planner estimates %.0f rows; want statistics refreshed by the import", res.Changed, tuples)
	}
}

// TestPutEpisodeStreamEndsItsStream checks the goroutine that reads the
// stream ahead of the writes: an error in the stream, or a write that ends
// (here by cancellation), stores nothing, and the stream is never run
// after PutEpisodeStream returns.
func TestPutEpisodeStreamEndsItsStream(t *testing.T) {
	var rows []bildrum.ScreeningEpisode
	if _, err := synth.Generate(context.Background(), synth.Config{Seed: 6, Regions: []string{"12"}, Generate: 1500}, func(e bildrum.ScreeningEpisode) error {
		rows = append(rows, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 9000 {
		t.Fatalf("%d synthetic rows; the test needs chunks to be in flight", len(rows))
	}
	broken := errors.New("truncated file")
	cases := []struct {
		name string
		// at row i the stream fails (err), or cancels the import
		at     int
		err    error
		cancel bool
	}{
		{"the stream fails", 7000, broken, false},
		{"the import is cancelled", 5000, nil, true},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			db := open(t, eng.dsn(t), sqlstore.PartNode)
			for _, c := range cases {
				ctx, cancel := context.WithCancel(context.Background())
				var returned, finished atomic.Bool
				var lateCalls atomic.Int32
				stream := func(yield func(bildrum.ScreeningEpisode, error) bool) {
					defer finished.Store(true)
					for i, e := range rows {
						if returned.Load() {
							lateCalls.Add(1)
						}
						if i == c.at {
							if c.cancel {
								cancel()
							} else {
								yield(bildrum.ScreeningEpisode{}, c.err)
								return
							}
						}
						if !yield(e, nil) {
							return
						}
					}
				}
				_, err := db.PutEpisodeStream(ctx, stream)
				returned.Store(true)
				if !finished.Load() {
					t.Errorf("%s: the stream was still running when PutEpisodeStream returned", c.name)
				}
				cancel()
				switch {
				case c.err != nil && !errors.Is(err, c.err):
					t.Errorf("%s: error %v, want %v", c.name, err, c.err)
				case c.cancel && !errors.Is(err, context.Canceled):
					t.Errorf("%s: error %v, want cancellation", c.name, err)
				}
				if n := lateCalls.Load(); n != 0 {
					t.Errorf("%s: the stream ran %d times after PutEpisodeStream returned", c.name, n)
				}
				summary, err := db.RegisterSummary(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if summary.Invitations != 0 {
					t.Errorf("%s: %d episodes stored by a failed import", c.name, summary.Invitations)
				}
			}
		})
	}
}
