package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// feasibilityBenchDB returns a node database of region 12 with the
// synthetic register of `women` generated women (about 4.5 examinations
// each), built once into a cache directory under os.TempDir() and reused by
// later runs, since building it takes longer than the benchmark.
func feasibilityBenchDB(b *testing.B, women int) string {
	dir := filepath.Join(os.TempDir(), "bildrum-bench-feasibility")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("node-12-%d.db", women))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (once)", path)
	start := time.Now()
	tmp := path + ".building"
	os.Remove(tmp)
	db, err := sqlstore.Open(context.Background(), tmp, sqlstore.PartNode)
	if err != nil {
		b.Fatal(err)
	}
	if err := fillRegister(context.Background(), db, synth.Config{Seed: 12, Regions: []string{"12"}, Generate: women}); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built in %s", time.Since(start).Round(time.Second))
	return path
}

// fillRegister writes a synthetic register in transactions of 5,000 rows
// and confirms an (empty) consent replica as current.
func fillRegister(ctx context.Context, db *sqlstore.DB, cfg synth.Config) error {
	var batch []bildrum.ScreeningEpisode
	flush := func() error {
		_, err := db.PutEpisodes(ctx, batch)
		batch = batch[:0]
		return err
	}
	if _, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
		batch = append(batch, e)
		if len(batch) == 5000 {
			return flush()
		}
		return nil
	}); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	return db.ApplyConsentChanges(ctx, nil, 0, time.Now())
}

// benchCriteria are typical feasibility questions, from broad to narrow.
var benchCriteria = []struct {
	name string
	c    bildrum.Criteria
}{
	{"all-women", bildrum.Criteria{Purpose: "research"}},
	{"typical", bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 50, Max: 69},
		ExamDate: &bildrum.DateRange{From: bildrum.Date{Year: 2020, Month: 1, Day: 1}, To: bildrum.Date{Year: 2024, Month: 12, Day: 31}},
		Density:  []bildrum.Density{"c", "d"}}},
	{"cancers", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingScreenInvasive, bildrum.FindingInterval},
		ExamDate: &bildrum.DateRange{From: bildrum.Date{Year: 2018, Month: 1, Day: 1}}}},
	{"examinations", bildrum.Criteria{Purpose: "statistics", Unit: bildrum.UnitExaminations, BIRADS: []bildrum.BIRADS{"1", "2"},
		Views: []string{"RCC", "LMLO"}}},
}

// BenchmarkCountMatching measures one node's exact count (the SQL at the
// heart of a feasibility answer) over a synthetic register of 90,000
// generated women (87,000 with examinations, 415,000 examinations: one
// region of 8.7 million spread over 21 nodes). SQLite reads a database
// built once into a cache under os.TempDir(); PostgreSQL (with `make
// bench`) gets the same register written afresh, which takes a minute.
// BILDRUM_BENCH_WOMEN changes the size. Besides wall-clock p50 and p95 it
// reports, for SQLite, the process CPU time per count, which a busy
// shared machine disturbs less.
func BenchmarkCountMatching(b *testing.B) {
	women := 90000
	if v := os.Getenv("BILDRUM_BENCH_WOMEN"); v != "" {
		fmt.Sscan(v, &women)
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			var db *sqlstore.DB
			var err error
			if e.name == "SQLite" {
				db, err = sqlstore.Open(context.Background(), feasibilityBenchDB(b, women), sqlstore.PartNode)
			} else {
				db, err = sqlstore.Open(context.Background(), e.dsn(b), sqlstore.PartNode)
				if err == nil {
					err = fillRegister(context.Background(), db, synth.Config{Seed: 12, Regions: []string{"12"}, Generate: women})
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			sum, _ := db.RegisterSummary(context.Background())
			b.Logf("register: %d women, %d examinations", sum.Women, sum.Exams)
			for _, tc := range benchCriteria {
				b.Run(tc.name, func(b *testing.B) {
					c, err := tc.c.Check()
					if err != nil {
						b.Fatal(err)
					}
					var lat []time.Duration
					var n int64
					cpu0 := cpuTime()
					for b.Loop() {
						start := time.Now()
						res, err := db.CountMatching(context.Background(), c, 10)
						if err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
						n = res.Count
					}
					cpu := cpuTime() - cpu0
					slices.Sort(lat)
					b.ReportMetric(float64(sum.Exams), "exams")
					b.ReportMetric(float64(n), "count")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[(len(lat)*95+99)/100-1].Microseconds())/1000, "p95-ms")
					if e.name == "SQLite" { // PostgreSQL counts in its own processes
						b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
					}
				})
			}
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
