package register_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/register"
	"github.com/bildrum/bildrum/synth"
)

// BenchmarkImportCSV measures the validated import of a synthetic register
// of about 124,000 rows (region 12, 20,000 generated women besides the
// official test numbers) into a fresh SQLite node database, and, in the
// same run, the sqlite3 shell's raw .import of the same file into a table
// of the same columns (no validation, no keys, no indexes): the ceiling of
// CSV into SQLite on this machine. validate-only is the register's own
// share (a store that keeps nothing); ratio runs both imports in turn in
// each iteration and reports shell time / bildrum time (goal ≥ 0.25).
func BenchmarkImportCSV(b *testing.B) {
	file := filepath.Join(b.TempDir(), "register-12.csv")
	if err := os.WriteFile(file, synthCSV(b, synth.Config{Seed: 7, Regions: []string{"12"}, Generate: 20000}), 0o644); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	rows := bytes.Count(data, []byte("\n")) - 1 // less the header
	var bildrumRate, shellRate float64

	// The register's own part: read, check and hand over every row, to a
	// store that keeps nothing.
	b.Run("validate-only", func(b *testing.B) {
		b.SetBytes(fi.Size())
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			f, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			rep, err := register.ImportCSV(context.Background(), f, register.Options{Region: "12", FileName: "register-12.csv"}, discardStore{})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			n += rep.Rows
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("bildrum-SQLite", func(b *testing.B) {
		b.SetBytes(fi.Size())
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			db := openStore(b, filepath.Join(b.TempDir(), "node.db"))
			f, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			rep, err := register.ImportCSV(context.Background(), f, register.Options{Region: "12", FileName: "register-12.csv"}, db)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			f.Close()
			db.Close()
			if rep.Rows != rows {
				b.Fatalf("imported %d rows of %d", rep.Rows, rows)
			}
			b.StartTimer()
		}
		bildrumRate = float64(rows*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(bildrumRate, "rows/s")
	})

	b.Run("sqlite3-shell", func(b *testing.B) {
		shell := testenv.RequireExternal(b, "sqlite3")
		b.SetBytes(fi.Size())
		for b.Loop() {
			b.StopTimer()
			db := filepath.Join(b.TempDir(), "raw.db")
			b.StartTimer()
			shellImport(b, shell, db, file)
		}
		shellRate = float64(rows*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(shellRate, "rows/s")
	})

	// The ratio, from the two imports run in turn in every iteration, so
	// that a shared machine's load falls on both alike.
	b.Run("ratio", func(b *testing.B) {
		shell := testenv.RequireExternal(b, "sqlite3")
		var ours, theirs time.Duration
		for b.Loop() {
			b.StopTimer()
			db := openStore(b, filepath.Join(b.TempDir(), "node.db"))
			raw := filepath.Join(b.TempDir(), "raw.db")
			f, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			if _, err := register.ImportCSV(context.Background(), f, register.Options{Region: "12", FileName: "register-12.csv"}, db); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			shellImport(b, shell, raw, file)
			ours, theirs = ours+mid.Sub(start), theirs+time.Since(mid)
			b.StopTimer()
			f.Close()
			db.Close()
			b.StartTimer()
		}
		b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
		b.ReportMetric(float64(rows*b.N)/ours.Seconds(), "bildrum-rows/s")
		b.ReportMetric(float64(rows*b.N)/theirs.Seconds(), "shell-rows/s")
		b.ReportMetric(0, "ns/op")
	})

	// The pinned driver's own ceiling: what the shell does (every field as
	// text into a table with no keys and no indexes, one transaction), but
	// through modernc.org/sqlite and database/sql, with the same durability
	// settings as a node's database, run in turn with the shell. No import
	// through this driver can be faster, validation or not.
	b.Run("driver-ceiling", func(b *testing.B) {
		shell := testenv.RequireExternal(b, "sqlite3")
		var driver, theirs time.Duration
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			start := time.Now()
			rawDriverImport(b, filepath.Join(dir, "driver.db"), file)
			mid := time.Now()
			shellImport(b, shell, filepath.Join(dir, "raw.db"), file)
			driver, theirs = driver+mid.Sub(start), theirs+time.Since(mid)
		}
		b.ReportMetric(theirs.Seconds()/driver.Seconds(), "ratio")
		b.ReportMetric(float64(rows*b.N)/driver.Seconds(), "driver-rows/s")
		b.ReportMetric(0, "ns/op")
	})

	if bildrumRate > 0 && shellRate > 0 {
		b.Logf("%d rows, %.1f MB: validated import at %.0f rows/s is %.2f of the sqlite3 shell's raw .import (%.0f rows/s); goal ≥ 0.25",
			rows, float64(fi.Size())/1e6, bildrumRate, bildrumRate/shellRate, shellRate)
	}
}

// shellImport runs the sqlite3 shell's CSV import of file into a new
// table episodes of db, whose columns the header names.
func shellImport(b *testing.B, shell, db, file string) {
	b.Helper()
	if out, err := exec.Command(shell, db, ".mode csv", ".import "+file+" episodes").CombinedOutput(); err != nil || len(out) > 0 {
		b.Fatalf("sqlite3 .import: %v\n%s", err, out)
	}
}

// discardStore reads the sequence and keeps nothing.
type discardStore struct{}

func (discardStore) PutEpisodeStream(_ context.Context, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) (bildrum.PutResult, error) {
	n := 0
	for _, err := range episodes {
		if err != nil {
			return bildrum.PutResult{}, err
		}
		n++
	}
	return bildrum.PutResult{Changed: n}, nil
}

// rawDriverImport copies the CSV file into a new table episodes of a SQLite
// database at path, every field as text, through modernc.org/sqlite (the
// driver sqlstore registers) with a node database's pragmas: the sqlite3
// shell's .import, done by the pinned driver.
func rawDriverImport(b *testing.B, path, file string) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-65536)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		b.Fatal(err)
	}
	cols := make([]string, len(header))
	for i, h := range header {
		cols[i] = `"` + strings.ReplaceAll(h, `"`, `""`) + `" TEXT`
	}
	if _, err := db.Exec(`CREATE TABLE episodes (` + strings.Join(cols, ", ") + `)`); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(`INSERT INTO episodes VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", len(header)), ", ") + `)`)
	if err != nil {
		b.Fatal(err)
	}
	args := make([]any, len(header))
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			b.Fatal(err)
		}
		for i, v := range rec {
			args[i] = v
		}
		if _, err := stmt.Exec(args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
