package register_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
	"github.com/bildrum/bildrum/synth"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// csvOptions are the options of every CSV test: region 12, a fixed clock.
func csvOptions(file string) register.Options {
	return register.Options{Region: "12", FileName: file, Now: fixedNow}
}

// importFile imports testdata/csv/name into store.
func importFile(t *testing.T, store register.Store, name string) (register.Report, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "csv", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return register.ImportCSV(context.Background(), f, csvOptions(name), store)
}

// describe renders the outcome of a rejected import as its golden file
// holds it: the summary, the counts and every error.
func describe(rep register.Report, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "error: %s\n", bildrum.ErrorMessage(err))
	fmt.Fprintf(&b, "rows %d, invalid %d, changed %d, unchanged %d\n", rep.Rows, rep.Invalid, rep.Changed, rep.Unchanged)
	for _, e := range rep.Errors {
		fmt.Fprintln(&b, e.String())
	}
	if rep.MoreErrors > 0 {
		fmt.Fprintf(&b, "and %d more\n", rep.MoreErrors)
	}
	return b.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestImportCSVGood(t *testing.T) {
	for _, name := range []string{"good.csv", "good-crlf-bom.csv"} {
		t.Run(name, func(t *testing.T) {
			store := newMemStore()
			rep, err := importFile(t, store, name)
			if err != nil {
				t.Fatalf("ImportCSV(%s) = %v\n%s", name, err, describe(rep, err))
			}
			if rep.Rows != 9 || rep.Changed != 9 || rep.Unchanged != 0 || rep.Invalid != 0 || len(rep.Errors) != 0 {
				t.Errorf("ImportCSV(%s) report = %+v, want 9 rows changed", name, rep)
			}
			rows, _ := store.snapshot()
			if got := rows[8].Unit; got != "12-MÖ, Östra" {
				t.Errorf("unit of the quoted row = %q, want %q", got, "12-MÖ, Östra")
			}
			// The same file again changes nothing.
			rep, err = importFile(t, store, name)
			if err != nil || rep.Changed != 0 || rep.Unchanged != 9 {
				t.Errorf("second ImportCSV(%s) = %+v, %v; want 9 unchanged", name, rep, err)
			}
		})
	}
}

// TestImportCSVRejects imports each kind of bad file into a store that
// holds one earlier import, and checks that nothing of it was stored and
// that the errors are placed exactly (testdata/csv/*.golden).
func TestImportCSVRejects(t *testing.T) {
	tests := []struct {
		file string
		// one error to find, by its place and words; the golden file has all.
		line, column int
		field, words string
	}{
		{"empty.csv", 1, 0, "", "the file is empty"},
		{"wrong-columns.csv", 1, 4, "unit", `the column "unit" is missing`},
		{"wrong-columns.csv", 1, 4, "Round", `column 4 is "Round": write it "round"`},
		{"wrong-columns.csv", 1, 6, "comment", `column 6 is "comment", which is not a register column`},
		{"columns-out-of-order.csv", 1, 5, "invitation_date", `column 5 is "invitation_date" but should be "round"`},
		{"semicolons.csv", 1, 0, "", "separated by semicolons"},
		{"utf16.csv", 1, 0, "", "save it as UTF-8"},
		{"latin1.csv", 5, 4, "unit", "0xC5"},
		{"bad-syntax.csv", 3, 4, "unit", "a quote \" stands inside a value"},
		{"bad-syntax.csv", 5, 4, "unit", "quoted value is followed by more text"},
		{"bad-syntax.csv", 7, 0, "", "the row has 31 values"},
		{"bad-syntax.csv", 8, 0, "", "the row has 29 values"},
		{"unclosed-quote.csv", 4, 4, "unit", "is not closed before line 10"},
		{"truncated.csv", 10, 0, "", "the file ends in the middle of this row"},
		{"impossible-dates.csv", 3, 8, "exam_date", "February 2017 has 28 days"},
		{"impossible-dates.csv", 3, 16, "result_date", "there is no month 13"},
		{"impossible-dates.csv", 4, 6, "invitation_date", "not a date written YYYY-MM-DD"},
		{"impossible-dates.csv", 4, 17, "assessment_date", "2099-06-12 is in the future"},
		{"unknown-codes.csv", 3, 11, "reader1_birads", `"7" is not a BI-RADS category`},
		{"unknown-codes.csv", 3, 14, "density", `"C" must be written exactly "c"`},
		{"unknown-codes.csv", 4, 10, "views", `"XCC" is not a view`},
		{"unknown-codes.csv", 5, 23, "outcome", `"malignant" is not an outcome`},
		{"unknown-codes.csv", 5, 18, "additional_imaging", `"yes" is not 0 or 1`},
		{"unknown-codes.csv", 6, 27, "nodal_status", `"N1" is not a nodal status`},
		{"unknown-codes.csv", 8, 26, "tumour_size_mm", "250 is out of range"},
		{"bad-check-digit.csv", 3, 2, "person_id", "check digit is 7, want 6"},
		{"bad-check-digit.csv", 4, 2, "person_id", "want 12 digits"},
		{"wrong-region.csv", 3, 3, "region", "import it at the node of Västra Götaland"},
		{"wrong-region.csv", 4, 3, "region", `"99" is not a county code`},
		{"inconsistent.csv", 2, 8, "exam_date", "exam_date is filled in but attended is 0"},
		{"inconsistent.csv", 2, 15, "recalled", "only a woman who was examined can be recalled"},
		{"inconsistent.csv", 3, 8, "exam_date", "before the invitation date"},
		{"inconsistent.csv", 4, 17, "assessment_date", "recalled is 0"},
		{"inconsistent.csv", 5, 17, "assessment_date", "before the exam date"},
		{"inconsistent.csv", 6, 25, "diagnosis_date", "before the exam date"},
		{"inconsistent.csv", 6, 30, "interval_months", "only for interval cancers"},
		{"inconsistent.csv", 6, 26, "tumour_size_mm", "the outcome is dcis"},
		{"inconsistent.csv", 7, 30, "interval_months", "interval_months is missing"},
		{"inconsistent.csv", 8, 30, "interval_months", "are 13 whole months"},
		{"inconsistent.csv", 9, 24, "detection", "the outcome is benign"},
		{"inconsistent.csv", 10, 8, "exam_date", "the exam date is missing but attended is 1"},
		{"inconsistent.csv", 11, 1, "id", "contains the woman's personnummer"},
		{"inconsistent.csv", 11, 24, "detection", "detection is screen but recalled is 0"},
		{"inconsistent.csv", 12, 1, "id", "also on line 2"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s:%d:%d", tt.file, tt.line, tt.column), func(t *testing.T) {
			store := newMemStore()
			if _, err := importFile(t, store, "good.csv"); err != nil {
				t.Fatal(err)
			}
			before, version := store.snapshot()

			rep, err := importFile(t, store, tt.file)
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), "nothing was imported") {
				t.Fatalf("ImportCSV(%s) = %v, want EINVALID saying nothing was imported", tt.file, err)
			}
			after, afterVersion := store.snapshot()
			if afterVersion != version || !cmp.Equal(before, after) {
				t.Errorf("ImportCSV(%s) changed the store (version %d → %d)", tt.file, version, afterVersion)
			}
			if rep.Changed != 0 || rep.Unchanged != 0 {
				t.Errorf("ImportCSV(%s) report says %d changed, %d unchanged, want 0", tt.file, rep.Changed, rep.Unchanged)
			}
			found := false
			for _, e := range rep.Errors {
				found = found || e.File == tt.file && e.Line == tt.line && e.Column == tt.column && e.Field == tt.field && strings.Contains(e.Message, tt.words)
			}
			if !found {
				t.Errorf("ImportCSV(%s): no error at line %d, column %d (%s) saying %q; got\n%s", tt.file, tt.line, tt.column, tt.field, tt.words, describe(rep, err))
			}
			if !seen[tt.file] {
				seen[tt.file] = true
				golden(t, filepath.Join("csv", strings.TrimSuffix(tt.file, ".csv")+".golden"), describe(rep, err))
			}
		})
	}
}

// TestImportCSVMaxErrors lists the first errors and counts the rest.
func TestImportCSVMaxErrors(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString(strings.Join(register.CSVHeader(), ",") + "\n")
	for i := range 250 {
		fmt.Fprintf(&buf, "12-%04d,195001182046,12,12-MAL,1,2020-01-01,2,,0,,,,,,0,,,0,0,0,0,,,,,,,,0,\n", i)
	}
	opts := csvOptions("many.csv")
	opts.MaxErrors = 10
	rep, err := register.ImportCSV(context.Background(), &buf, opts, newMemStore())
	if got := bildrum.ErrorMessage(err); got != "many.csv: 250 rows are invalid; nothing was imported" {
		t.Errorf("ImportCSV error = %q", got)
	}
	if len(rep.Errors) != 10 || rep.MoreErrors != 240 || rep.Invalid != 250 || rep.Rows != 250 {
		t.Errorf("report: %d errors listed, %d more, %d invalid of %d; want 10, 240, 250 of 250", len(rep.Errors), rep.MoreErrors, rep.Invalid, rep.Rows)
	}
}

func TestImportCSVOptions(t *testing.T) {
	_, err := register.ImportCSV(context.Background(), strings.NewReader(""), register.Options{Region: "2"}, newMemStore())
	if bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("ImportCSV with region 2 = %v, want EINVALID", err)
	}
}

// TestImportCSVProgress reports bytes read, ending at the file's size.
func TestImportCSVProgress(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "csv", "good.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	opts := csvOptions("good.csv")
	opts.Progress = func(n int64) {
		if n < last {
			t.Errorf("progress went back from %d to %d", last, n)
		}
		last = n
	}
	if _, err := register.ImportCSV(context.Background(), bytes.NewReader(b), opts, newMemStore()); err != nil {
		t.Fatal(err)
	}
	if last != int64(len(b)) {
		t.Errorf("last progress = %d, want the file's %d bytes", last, len(b))
	}
}

// TestImportCSVStores runs imports against SQLite and PostgreSQL: a good
// file, the same again (nothing changes), a bad file (nothing is stored),
// and an export that re-imports unchanged into the source and identically
// into a fresh store.
func TestImportCSVStores(t *testing.T) {
	ctx := context.Background()
	synthetic := synthCSV(t, synth.Config{Seed: 5, Regions: []string{"12"}})
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			db := openStore(t, eng.dsn(t))
			rep, err := importFile(t, db, "good.csv")
			if err != nil || rep.Changed != 9 {
				t.Fatalf("ImportCSV(good.csv) = %+v, %v; want 9 changed", rep, err)
			}
			rep, err = register.ImportCSV(ctx, bytes.NewReader(synthetic), csvOptions("synthetic.csv"), db)
			if err != nil || rep.Changed != rep.Rows || rep.Rows < 1000 {
				t.Fatalf("ImportCSV(synthetic) = %+v, %v; want every row changed", rep, err)
			}
			sum, err := db.RegisterSummary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := collect(t, db)

			rep, err = register.ImportCSV(ctx, bytes.NewReader(synthetic), csvOptions("synthetic.csv"), db)
			if err != nil || rep.Changed != 0 || rep.Unchanged != rep.Rows {
				t.Errorf("re-import = %+v, %v; want every row unchanged", rep, err)
			}
			if _, err := importFile(t, db, "inconsistent.csv"); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("ImportCSV(inconsistent.csv) = %v, want EINVALID", err)
			}
			if _, err := importFile(t, db, "truncated.csv"); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("ImportCSV(truncated.csv) = %v, want EINVALID", err)
			}
			after, err := db.RegisterSummary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after.DataVersion != sum.DataVersion || after.Invitations != sum.Invitations {
				t.Errorf("summary moved from %+v to %+v after imports that change nothing", sum, after)
			}

			var export bytes.Buffer
			if err := register.WriteCSV(&export, allEpisodes(ctx, db)); err != nil {
				t.Fatal(err)
			}
			rep, err = register.ImportCSV(ctx, bytes.NewReader(export.Bytes()), csvOptions("export.csv"), db)
			if err != nil || rep.Changed != 0 || rep.Unchanged != len(before) {
				t.Errorf("export re-imported into its source = %+v, %v; want %d unchanged", rep, err, len(before))
			}
			fresh := openStore(t, eng.dsn(t))
			if _, err := register.ImportCSV(ctx, bytes.NewReader(export.Bytes()), csvOptions("export.csv"), fresh); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, collect(t, fresh), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("export imported into a fresh store differs (-source +fresh):\n%s", diff)
			}
		})
	}
}

// synthCSV writes a synthetic register as CSV.
func synthCSV(t testing.TB, cfg synth.Config) []byte {
	t.Helper()
	var episodes []bildrum.ScreeningEpisode
	if _, err := synth.Generate(context.Background(), cfg, func(e bildrum.ScreeningEpisode) error {
		episodes = append(episodes, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := register.WriteCSV(&buf, seqOf(episodes)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failingStore reads some rows of the sequence and then fails, as a store
// whose disk fills up does; it commits nothing.
type failingStore struct{ after int }

var errDiskFull = errors.New("disk full")

func (s failingStore) PutEpisodeStream(_ context.Context, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) (bildrum.PutResult, error) {
	n := 0
	for _, err := range episodes {
		if err != nil {
			return bildrum.PutResult{}, err
		}
		if n++; n > s.after {
			return bildrum.PutResult{}, errDiskFull
		}
	}
	return bildrum.PutResult{Changed: n}, nil
}

// TestImportCSVFailures: a store that fails, and a context that ends, give
// their error back (not EINVALID), and the reading goroutine ends.
func TestImportCSVFailures(t *testing.T) {
	big := synthCSV(t, synth.Config{Seed: 5, Regions: []string{"12"}})
	_, err := register.ImportCSV(context.Background(), bytes.NewReader(big), csvOptions("big.csv"), failingStore{after: 1000})
	if !errors.Is(err, errDiskFull) || bildrum.ErrorCode(err) != bildrum.EINTERNAL {
		t.Errorf("ImportCSV into a failing store = %v, want %v as an internal error", err, errDiskFull)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	store := newMemStore()
	_, err = register.ImportCSV(ctx, bytes.NewReader(big), csvOptions("big.csv"), store)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ImportCSV with a cancelled context = %v, want %v", err, context.Canceled)
	}
	if rows, _ := store.snapshot(); len(rows) != 0 {
		t.Errorf("a cancelled import stored %d rows", len(rows))
	}
	_, err = register.ImportCSV(context.Background(), iotest.ErrReader(errDiskFull), csvOptions("broken.csv"), newMemStore())
	if !errors.Is(err, errDiskFull) || bildrum.ErrorCode(err) != bildrum.EINTERNAL {
		t.Errorf("ImportCSV from a failing reader = %v, want %v as an internal error", err, errDiskFull)
	}
}
