package register_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addSeeds adds every file of testdata/dir with the extension as a seed.
func addSeeds(f *testing.F, dir, ext string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkAtomic holds an import's contract on any input: it returns EINVALID
// and changes nothing, or stores every row it read; and what it stored
// exports and re-imports to the same episodes.
func checkAtomic(t *testing.T, store *memStore, before []bildrum.ScreeningEpisode, rep register.Report, err error) {
	t.Helper()
	after, _ := store.snapshot()
	if err != nil {
		if bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Fatalf("import error %v, want EINVALID", err)
		}
		if !cmp.Equal(before, after, cmpopts.EquateEmpty()) {
			t.Fatalf("a rejected import changed the store")
		}
		if len(rep.Errors) == 0 {
			t.Fatalf("a rejected import lists no errors: %+v", rep)
		}
		return
	}
	if rep.Invalid != 0 || len(rep.Errors) != 0 || rep.Changed+rep.Unchanged != rep.Rows {
		t.Fatalf("accepted import with report %+v", rep)
	}
	var out bytes.Buffer
	if err := register.WriteCSV(&out, seqOf(after)); err != nil {
		t.Fatal(err)
	}
	again := newMemStore()
	if _, err := register.ImportCSV(context.Background(), &out, csvOptions("export.csv"), again); err != nil {
		t.Fatalf("the export of accepted rows does not re-import: %v\n%s", err, out.String())
	}
	if got, _ := again.snapshot(); !cmp.Equal(after, got, cmpopts.EquateEmpty()) {
		t.Fatalf("export and re-import changed the rows:\n%s", cmp.Diff(after, got, cmpopts.EquateEmpty()))
	}
}

// preloaded returns a store holding good.csv, so that atomicity is checked
// against rows already there.
func preloaded(t *testing.T) (*memStore, []bildrum.ScreeningEpisode) {
	store := newMemStore()
	rows := goodEpisodes(t)
	if _, err := store.PutEpisodeStream(context.Background(), seqOf(rows)); err != nil {
		t.Fatal(err)
	}
	before, _ := store.snapshot()
	return store, before
}

// FuzzImportCSV feeds any bytes to ImportCSV and checks that it neither
// panics nor breaks atomicity. Each input costs a few milliseconds in the
// coverage-instrumented binary (the SQLite driver is linked in), so
// minimising an interesting input can stall the run for the default
// minute: run it with
//
//	go test -run '^$' -fuzz FuzzImportCSV -fuzztime 30s -fuzzminimizetime 100x ./register/
func FuzzImportCSV(f *testing.F) {
	addSeeds(f, "csv", ".csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		store, before := preloaded(t)
		opts := csvOptions("fuzz.csv")
		opts.MaxErrors = 5
		rep, err := register.ImportCSV(context.Background(), bytes.NewReader(data), opts, store)
		checkAtomic(t, store, before, rep, err)
	})
}

// FuzzImportFHIR does the same for ImportFHIR (same flags as FuzzImportCSV).
func FuzzImportFHIR(f *testing.F) {
	addSeeds(f, "fhir", ".json")
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.752.129.2.1.3.1","value":"195001182046"}]},"request":{"method":"PUT","url":"Patient"}}]}`))
	// Compile the schema now, in each worker, not inside the first input's
	// time limit.
	register.ImportFHIR(context.Background(), strings.NewReader("{}"), fhirOptions("warm-up.json"), newMemStore())
	f.Fuzz(func(t *testing.T, data []byte) {
		store, before := preloaded(t)
		opts := fhirOptions("fuzz.json")
		opts.MaxErrors = 5
		opts.MaxBytes = 1 << 20
		rep, err := register.ImportFHIR(context.Background(), bytes.NewReader(data), opts, store)
		checkAtomic(t, store, before, rep, err)
	})
}
