package register_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
	"github.com/bildrum/bildrum/synth"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// goodEpisodes are the rows of testdata/csv/good.csv.
func goodEpisodes(t testing.TB) []bildrum.ScreeningEpisode {
	t.Helper()
	rows, err := readGood()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(rows)
}

// readGood imports good.csv once per test process.
var readGood = sync.OnceValues(func() ([]bildrum.ScreeningEpisode, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "csv", "good.csv"))
	if err != nil {
		return nil, err
	}
	store := newMemStore()
	if _, err := register.ImportCSV(context.Background(), bytes.NewReader(b), csvOptions("good.csv"), store); err != nil {
		return nil, err
	}
	rows, _ := store.snapshot()
	return rows, nil
})

func date(t testing.TB, s string) bildrum.Date {
	t.Helper()
	d, err := bildrum.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func fhirOptions(file string) register.Options {
	return register.Options{Region: "12", FileName: file, Now: fixedNow}
}

// TestMarshalBundleGolden keeps testdata/fhir/good.json, the Bundle of
// good.csv, as MarshalBundle writes it.
func TestMarshalBundleGolden(t *testing.T) {
	b, err := register.MarshalBundle(goodEpisodes(t))
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, b, "", " "); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("fhir", "good.json"), indented.String()+"\n")
}

// TestBundleValidatesAgainstSchema checks good.json against the whole
// official R4 schema (not only the definitions ImportFHIR uses per entry).
func TestBundleValidatesAgainstSchema(t *testing.T) {
	schemaFile := filepath.Join("..", "..", "shared", "data", "fhir.schema.json")
	if _, err := os.Stat(schemaFile); err != nil {
		schemaFile = "fhir.schema.json" // the embedded copy
	}
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("fhir.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "fhir", "good.json"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("good.json does not validate against the R4 schema: %v", err)
	}
}

func TestImportFHIRGood(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fhir", "good.json"))
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	rep, err := register.ImportFHIR(context.Background(), bytes.NewReader(b), fhirOptions("good.json"), store)
	if err != nil {
		t.Fatalf("ImportFHIR(good.json) = %v\n%s", err, describe(rep, err))
	}
	if rep.Rows != 9 || rep.Changed != 9 {
		t.Errorf("ImportFHIR(good.json) report = %+v, want 9 episodes changed", rep)
	}
	got, _ := store.snapshot()
	if diff := cmp.Diff(goodEpisodes(t), got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("episodes from the Bundle differ from good.csv's (-csv +fhir):\n%s", diff)
	}
	rep, err = register.ImportFHIR(context.Background(), bytes.NewReader(b), fhirOptions("good.json"), store)
	if err != nil || rep.Changed != 0 || rep.Unchanged != 9 {
		t.Errorf("second ImportFHIR = %+v, %v; want 9 unchanged", rep, err)
	}
}

// TestImportFHIRSynthetic sends a synthetic register through MarshalBundle
// and ImportFHIR into SQLite and PostgreSQL, and compares with the CSV path.
func TestImportFHIRSynthetic(t *testing.T) {
	ctx := context.Background()
	// Two years of one region: about 1,700 episodes, every shape of row.
	csv := synthCSV(t, synth.Config{Seed: 9, Regions: []string{"12"}, From: date(t, "2024-01-01"), To: date(t, "2025-12-31")})
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			viaCSV := openStore(t, eng.dsn(t))
			if _, err := register.ImportCSV(ctx, bytes.NewReader(csv), csvOptions("synthetic.csv"), viaCSV); err != nil {
				t.Fatal(err)
			}
			want := collect(t, viaCSV)
			bundle, err := register.MarshalBundle(want)
			if err != nil {
				t.Fatal(err)
			}
			viaFHIR := openStore(t, eng.dsn(t))
			rep, err := register.ImportFHIR(ctx, bytes.NewReader(bundle), fhirOptions("synthetic.json"), viaFHIR)
			if err != nil {
				t.Fatalf("ImportFHIR = %v\n%s", err, describe(rep, err))
			}
			if rep.Rows != len(want) || rep.Changed != len(want) {
				t.Errorf("ImportFHIR report = %+v, want %d episodes changed", rep, len(want))
			}
			if diff := cmp.Diff(want, collect(t, viaFHIR), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("FHIR import differs from CSV import (-csv +fhir):\n%s", diff)
			}
			rep, err = register.ImportFHIR(ctx, bytes.NewReader(bundle), fhirOptions("synthetic.json"), viaCSV)
			if err != nil || rep.Changed != 0 {
				t.Errorf("the Bundle imported into the CSV's store = %+v, %v; want nothing changed", rep, err)
			}
			// A bad Bundle stores nothing.
			before, _ := viaFHIR.RegisterSummary(ctx)
			bad := bytes.Replace(bundle, []byte(`"status":"available"`), []byte(`"status":"done"`), 1)
			if _, err := register.ImportFHIR(ctx, bytes.NewReader(bad), fhirOptions("bad.json"), viaFHIR); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("ImportFHIR(bad) = %v, want EINVALID", err)
			}
			after, _ := viaFHIR.RegisterSummary(ctx)
			if after.DataVersion != before.DataVersion {
				t.Errorf("a rejected Bundle moved the data version from %d to %d", before.DataVersion, after.DataVersion)
			}
		})
	}
}

// bundleCase changes good.json into a bad Bundle.
type bundleCase struct {
	name   string
	mutate func(b map[string]any) // on the decoded good.json
	raw    func(good []byte) []byte
	opts   func(*register.Options)
	// errors to find; the golden file testdata/fhir/NAME.golden has all.
	wants []wantError
}

// wantError is an error to find by its place and words; entry -1 is none.
type wantError struct {
	entry          int
	resource, path string
	words          string
}

// entryResource returns entry i's resource of a decoded Bundle.
func entryResource(b map[string]any, i int) map[string]any {
	return b["entry"].([]any)[i].(map[string]any)["resource"].(map[string]any)
}

// firstEntry returns the index of the n-th (from 0) entry of a type.
func firstEntry(b map[string]any, typ string, n int) int {
	for i, e := range b["entry"].([]any) {
		if e.(map[string]any)["resource"].(map[string]any)["resourceType"] == typ {
			if n == 0 {
				return i
			}
			n--
		}
	}
	panic("no " + typ)
}

func TestImportFHIRRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "fhir", "good.json"))
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(good, &decoded); err != nil {
		t.Fatal(err)
	}
	study := firstEntry(decoded, "ImagingStudy", 1) // 12-0002, attended
	obs := firstEntry(decoded, "Observation", 0)
	report := firstEntry(decoded, "DiagnosticReport", 0)
	patient := firstEntry(decoded, "Patient", 0)
	at := func(i int, more string) string { return fmt.Sprintf("Bundle.entry[%d].resource%s", i, more) }
	entries := len(decoded["entry"].([]any))
	tests := []bundleCase{
		{name: "schema-violation", mutate: func(b map[string]any) {
			entryResource(b, study)["status"] = "done"
			entryResource(b, patient)["gender2"] = "female"
		}, wants: []wantError{
			{study, "ImagingStudy", at(study, ".status"), `"done" is not allowed here`},
			{patient, "Patient", at(patient, ""), `"gender2" is not an element here`},
		}},
		{name: "dangling-reference", mutate: func(b map[string]any) {
			entryResource(b, obs)["derivedFrom"] = []any{map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}}
		}, wants: []wantError{{obs, "Observation", at(obs, ".derivedFrom[0].reference"), "is not the fullUrl of any entry"}}},
		{name: "wrong-code", mutate: func(b map[string]any) {
			entryResource(b, obs)["valueCodeableConcept"] = map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "12345"}}}
			entryResource(b, report)["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "24605-8"}}}
		}, wants: []wantError{
			{obs, "Observation", at(obs, ".valueCodeableConcept"), "SNOMED CT code of a BI-RADS category"},
			{report, "DiagnosticReport", at(report, ".code"), "must be LOINC 24606-6"},
		}},
		{name: "impossible-date", mutate: func(b map[string]any) {
			entryResource(b, study)["started"] = "2017-02-30"
		}, wants: []wantError{{study, "ImagingStudy", at(study, ".started"), "February 2017 has 28 days"}}},
		{name: "wrong-region", opts: func(o *register.Options) { o.Region = "14" },
			wants: []wantError{{study, "ImagingStudy", at(study, ".extension[0].valueCode"), "import it at the node of Skåne"}}},
		{name: "batch", mutate: func(b map[string]any) { b["type"] = "batch" },
			wants: []wantError{{-1, "", "Bundle.type", `set type to "transaction"`}}},
		{name: "not-a-bundle", raw: func([]byte) []byte {
			return []byte(`{"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "195001182046"}]}`)
		}, wants: []wantError{{-1, "", "", "the body is a Patient"}}},
		{name: "truncated", raw: func(g []byte) []byte { return g[:len(g)/2] },
			wants: []wantError{{-1, "", "", "the Bundle was probably cut off"}}},
		{name: "too-large", opts: func(o *register.Options) { o.MaxBytes = 4 << 10 },
			wants: []wantError{{-1, "", "", "the Bundle is larger than 4 KiB"}}},
		{name: "utf16", raw: func([]byte) []byte { return []byte("\xff\xfe{\x00}\x00") },
			wants: []wantError{{-1, "", "", "UTF-16"}}},
		{name: "foreign-resource", mutate: func(b map[string]any) {
			b["entry"] = append(b["entry"].([]any), map[string]any{"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
				"resource": map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}},
				"request":  map[string]any{"method": "POST", "url": "Condition"}})
		}, wants: []wantError{{entries, "Condition", at(entries, ".resourceType"), "not part of the register"}}},
		{name: "coordination-system", mutate: func(b map[string]any) {
			entryResource(b, patient)["identifier"].([]any)[0].(map[string]any)["system"] = register.SystemSamordningsnummer
		}, wants: []wantError{{patient, "Patient", at(patient, ".identifier[0].system"), "is a personnummer, so its system is urn:oid:1.2.752.129.2.1.3.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := good
			if tt.mutate != nil {
				var b map[string]any
				json.Unmarshal(good, &b)
				tt.mutate(b)
				body, _ = json.MarshalIndent(b, "", " ")
			}
			if tt.raw != nil {
				body = tt.raw(good)
			}
			opts := fhirOptions(tt.name + ".json")
			if tt.opts != nil {
				tt.opts(&opts)
			}
			store := newMemStore()
			rep, err := register.ImportFHIR(context.Background(), bytes.NewReader(body), opts, store)
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), "nothing was imported") {
				t.Fatalf("ImportFHIR(%s) = %v, want EINVALID saying nothing was imported\n%s", tt.name, err, describe(rep, err))
			}
			if rows, version := store.snapshot(); len(rows) != 0 || version != 0 {
				t.Errorf("ImportFHIR(%s) stored %d rows", tt.name, len(rows))
			}
			for _, w := range tt.wants {
				found := false
				for _, e := range rep.Errors {
					entryOK := w.entry < 0 && e.Entry == nil || e.Entry != nil && *e.Entry == w.entry
					found = found || entryOK && e.Resource == w.resource && e.Path == w.path && strings.Contains(e.Message, w.words)
				}
				if !found {
					t.Errorf("ImportFHIR(%s): no error at entry %d (%s) %s saying %q; got\n%s", tt.name, w.entry, w.resource, w.path, w.words, describe(rep, err))
				}
			}
			golden(t, filepath.Join("fhir", tt.name+".golden"), describe(rep, err))
		})
	}
}
