package query

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

func TestSignAndVerify(t *testing.T) {
	skey, vkey, err := GenerateKey("12")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if s.VerifierKey() != vkey || s.Name() != "bildrum-feasibility-12" {
		t.Fatalf("signer name %q vkey %q, want bildrum-feasibility-12 and %q", s.Name(), s.VerifierKey(), vkey)
	}
	count := int64(1234)
	p := bildrum.Provenance{Region: "12", QueryHash: strings.Repeat("ab", 32), Purpose: "research", Unit: "women",
		DataVersion: 7, ConsentVersion: 9, Threshold: 10, Epsilon: 0.5, Sensitivity: 1,
		Count: &count, Interval: &[2]int64{1228, 1240}, Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	a, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(a, vkey)
	if err != nil {
		t.Fatalf("Verify of a signed answer: %v", err)
	}
	if got.Key != "bildrum-feasibility-12" || *got.Count != 1234 || got.DataVersion != 7 {
		t.Errorf("Verify = %+v", got)
	}

	_, otherV, _ := GenerateKey("12")
	_, region14V, _ := GenerateKey("14")
	more := int64(1300)
	tampered := a
	tampered.Provenance.Count = &more
	forged := a
	forged.Signed = strings.Replace(a.Signed, `"count":1234`, `"count":1300`, 1)
	tests := []struct {
		name string
		a    bildrum.FeasibilityAnswer
		vkey string
		msg  string
	}{
		{"another key of the region", a, otherV, "not signed by"},
		{"another region's key", a, region14V, "not signed by"},
		{"provenance changed beside the signature", tampered, vkey, "differs from what"},
		{"signed text changed", forged, vkey, "not signed by"},
		{"no signature", bildrum.FeasibilityAnswer{Provenance: p}, vkey, "not signed by"},
		{"bad key", a, "not a key", "verifier key"},
	}
	for _, tt := range tests {
		if _, err := Verify(tt.a, tt.vkey); bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tt.msg) {
			t.Errorf("%s: Verify error = %v, want EINVALID with %q", tt.name, err, tt.msg)
		}
	}
}

func TestLoadSigner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "feasibility.key")
	first, err := LoadSigner(path, "12")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %v, %v; want mode 0600", fi.Mode(), err)
	}
	again, err := LoadSigner(path, "12")
	if err != nil || again.VerifierKey() != first.VerifierKey() {
		t.Errorf("reloading the key: %v, vkey %q; want the same key %q", err, again.VerifierKey(), first.VerifierKey())
	}
	if _, err := LoadSigner(path, "14"); bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), "give each node its own key") {
		t.Errorf("LoadSigner of region 12's key for 14: %v, want EINVALID", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("PRIVATE+KEY+nonsense\n"), 0o600)
	if _, err := LoadSigner(bad, "12"); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("LoadSigner of a bad key: %v, want EINVALID", err)
	}
	if _, _, err := GenerateKey("99"); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("GenerateKey(99): %v, want EINVALID", err)
	}
	skey, _, _ := GenerateKey("14")
	s, _ := NewSigner(skey)
	if _, err := NewNode("12", Rules{}, newMemStore(nil, nil), freshAlways, s, &fakeRecorder{}); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("NewNode(12) with region 14's key: %v, want EINVALID", err)
	}
}
