package consent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const anna = bildrum.PersonID("195001182046")

func openReplica(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCheckerFailsClosedForSecondaryUse(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	rec := bildrum.ConsentRecord{Person: anna, Version: 7, ChangedAt: now.Add(-time.Hour), ChangedBy: "citizen",
		Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"research"}, CareBlocks: []string{"14"}}}
	tests := []struct {
		name     string
		syncedAt time.Duration // before now; -1 never
		region   string
		purpose  bildrum.Purpose
		want     bool
		wantCode string
	}{
		{"fresh, research opted out", time.Minute, "12", "research", false, ""},
		{"fresh, statistics allowed", time.Minute, "12", "statistics", true, ""},
		{"fresh, recruitment needs opt-in", time.Minute, "12", "recruitment", false, ""},
		{"stale, statistics refused", 11 * time.Minute, "12", "statistics", false, bildrum.EUNAVAILABLE},
		{"never synced, statistics refused", -1, "12", "statistics", false, bildrum.EUNAVAILABLE},
		{"stale, care still served", 11 * time.Minute, "12", "care", true, ""},
		{"stale, care block still applied", 11 * time.Minute, "14", "care", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openReplica(t)
			if tt.syncedAt >= 0 {
				if err := db.ApplyConsentChanges(ctx, []bildrum.ConsentRecord{rec}, 7, now.Add(-tt.syncedAt)); err != nil {
					t.Fatal(err)
				}
			}
			c := &consent.Checker{Replica: db, Region: tt.region, Now: func() time.Time { return now }}
			d, err := c.Allows(ctx, anna, tt.purpose)
			if code := bildrum.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("Allows(%s) error %v, want code %q", tt.purpose, err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(bildrum.ErrorMessage(err), "secondary use is refused") {
					t.Errorf("refusal does not say why: %q", bildrum.ErrorMessage(err))
				}
				return
			}
			if d.Allowed != tt.want || (!d.Allowed && d.Reason == "") {
				t.Errorf("Allows(%s) at region %s = %+v, want allowed=%v with a reason when not", tt.purpose, tt.region, d, tt.want)
			}
			if tt.syncedAt >= 0 && d.ConsentVersion != 7 {
				t.Errorf("decision names consent version %d, want 7", d.ConsentVersion)
			}
		})
	}
}

var fhirSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open("../register/fhir.schema.json") // the official FHIR R4 JSON schema, copied from shared/data
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("fhir.schema.json")
})

// TestResourcesAreValidFHIR checks the Consent resources against the
// official FHIR R4 JSON schema and the meaning DESIGN.md gives them.
func TestResourcesAreValidFHIR(t *testing.T) {
	sch, err := fhirSchema()
	if err != nil {
		t.Fatal(err)
	}
	rec := bildrum.ConsentRecord{Person: anna, Version: 12, ChangedAt: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), ChangedBy: "citizen",
		Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"innovation", "research"}, CareBlocks: []string{"14", "all"},
			TrialContact: bildrum.TrialContact{OptIn: true, Email: "anna@example.se"}}}
	rs := consent.Resources(rec)
	if len(rs) != 5 {
		t.Fatalf("%d resources, want 2 opt-outs + 1 trial permit + 2 care blocks", len(rs))
	}
	bundle := consent.SearchBundle("https://hub.example", rs)
	raw, _ := json.Marshal(bundle)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("Consent bundle is not valid FHIR R4: %v\n%s", err, raw)
	}
	// The validator bites: a Consent with a numeric status is refused.
	broken := bytes.Replace(raw, []byte(`"status":"active"`), []byte(`"status":7`), 1)
	bad, _ := jsonschema.UnmarshalJSON(bytes.NewReader(broken))
	if err := sch.Validate(bad); err == nil {
		t.Fatalf("schema accepted a Consent with status 7")
	}
	deny := map[string]bool{}
	for _, r := range rs {
		if r.Provision.Type == "deny" {
			deny[r.Provision.Purpose[0].Code] = true
		}
		if strings.Contains(r.ID, string(anna)) {
			t.Errorf("resource id %q contains her personnummer", r.ID)
		}
	}
	if !deny["HRESCH"] || !deny["SYSDEV"] || !deny["TREAT"] {
		t.Errorf("deny provisions %v, want research (HRESCH), innovation (SYSDEV) and care (TREAT)", deny)
	}
	if len(consent.Resources(bildrum.ConsentRecord{Person: anna})) != 0 {
		t.Errorf("a woman without choices has Consent resources, want none")
	}
}
