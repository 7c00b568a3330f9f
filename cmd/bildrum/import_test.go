package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// registerTestdata is the register package's test files.
var registerTestdata = filepath.Join("..", "..", "register", "testdata")

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "node.db")
	good := filepath.Join(registerTestdata, "csv", "good.csv")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{"csv", []string{"import", "-db", db, "-region", "12", good}, exitOK,
			"good.csv: 9 rows read, 9 changed, 0 unchanged", []string{"importing good.csv"}},
		{"again, flags after the file", []string{"import", good, "-db", db, "-region", "12"}, exitOK,
			"good.csv: 9 rows read, 0 changed, 9 unchanged", nil},
		{"fhir by extension", []string{"import", "-db", db, "-region", "12", filepath.Join(registerTestdata, "fhir", "good.json")}, exitOK,
			"good.json: 9 episodes read, 0 changed, 9 unchanged", nil},
		{"bad rows", []string{"import", "-db", db, "-region", "12", filepath.Join(registerTestdata, "csv", "inconsistent.csv")}, exitError, "",
			[]string{"inconsistent.csv: line 2, column 8 (exam_date): exam_date is filled in but attended is 0", "… and 8 more errors", "bildrum: inconsistent.csv: 11 rows are invalid; nothing was imported"}},
		{"bad bundle", []string{"import", "-db", db, "-region", "12", "-format", "fhir", good}, exitError, "",
			[]string{"the JSON is broken at byte 1", "nothing was imported"}},
		{"no file", []string{"import", "-db", db, "-region", "12"}, exitUsage, "", []string{"give the file to import"}},
		{"two files", []string{"import", "-db", db, "-region", "12", good, good}, exitUsage, "", []string{"unexpected argument"}},
		{"no db", []string{"import", "-region", "12", good}, exitUsage, "", []string{"-db"}},
		{"bad region", []string{"import", "-db", db, "-region", "2", good}, exitUsage, "", []string{"unknown region \"2\""}},
		{"other region's database", []string{"import", "-db", db, "-region", "14", good}, exitUsage, "", []string{"holds region 12's register"}},
		{"bad format", []string{"import", "-db", db, "-region", "12", "-format", "xml", good}, exitUsage, "", []string{"write csv or fhir"}},
		{"missing file", []string{"import", "-db", db, "-region", "12", filepath.Join(dir, "none.csv")}, exitError, "", []string{"cannot open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("bildrum %s: exit %d, want %d; stderr:\n%s", strings.Join(tt.args, " "), code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr = %q, want %q", stderr.String(), want)
				}
			}
		})
	}
}

// writeSynthCSV writes a synthetic register of region 12 as CSV.
func writeSynthCSV(t *testing.T, cfg synth.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := register.NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(context.Background(), cfg, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// registerDigest is the SHA-256 of a node database's whole register, and
// its summary.
func registerDigest(t *testing.T, path string) ([32]byte, bildrum.RegisterSummary) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, path, sqlstore.PartNode)
	if err != nil {
		t.Fatalf("open %s after the import: %v", path, err)
	}
	defer db.Close()
	sum, err := db.RegisterSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for offset := 0; ; offset += 1000 {
		rows, _, err := db.ListEpisodes(ctx, bildrum.EpisodeFilter{Limit: 1000, Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rows {
			json.NewEncoder(h).Encode(e)
		}
		if len(rows) < 1000 {
			break
		}
	}
	return [32]byte(h.Sum(nil)), sum
}

// TestImportKilledMidwayLeavesTheDatabaseAsBefore runs `bildrum import` as
// a process that reads a large register from a pipe into a SQLite node
// database, feeds it more than half of the file, so that it is inside its
// transaction with tens of thousands of rows written, and kills it with
// SIGKILL. The database must then open and hold exactly the rows it held
// before.
func TestImportKilledMidwayLeavesTheDatabaseAsBefore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.db")
	small := filepath.Join(dir, "small.csv")
	if err := os.WriteFile(small, writeSynthCSV(t, synth.Config{Seed: 3, Regions: []string{"12"}}), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"import", "-db", path, "-region", "12", small}, &stdout, &stderr); code != exitOK {
		t.Fatalf("first import: exit %d: %s", code, stderr.String())
	}
	beforeDigest, before := registerDigest(t, path)

	large := writeSynthCSV(t, synth.Config{Seed: 4, Regions: []string{"12"}, Generate: 20000})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := bildrumCommand(t, "import", "-db", path, "-region", "12", "-")
	cmd.Stdin = r
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer cmd.Process.Kill()

	// The write returns once the process has read all but the pipe's and
	// its reader's buffers (some 128 KiB) of it: it is mid-import.
	fed := len(large) * 6 / 10
	if _, err := w.Write(large[:fed]); err != nil {
		cmd.Wait()
		t.Fatalf("feeding the import: %v; its stderr:\n%s", err, childErr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("import ended with %v before it was killed; stderr:\n%s", err, childErr.String())
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		t.Logf("killed after %d of %d bytes; write-ahead log left: %d bytes", fed, len(large), fi.Size())
	}

	afterDigest, after := registerDigest(t, path)
	if afterDigest != beforeDigest || after.Invitations != before.Invitations || after.DataVersion != before.DataVersion {
		t.Errorf("after the killed import the register is %+v, want as before %+v (rows identical: %v)", after, before, afterDigest == beforeDigest)
	}
	// The database still takes imports.
	stdout.Reset()
	if code := run(context.Background(), []string{"import", "-db", path, "-region", "12", small}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), " 0 changed") {
		t.Errorf("import after the kill: exit %d, %q; stderr %s", code, stdout.String(), stderr.String())
	}
}
