package query

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/keyfile"
)

// Answers are signed as C2SP signed notes (https://c2sp.org/signed-note)
// with an Ed25519 key of the node, the format of the transparency log's
// checkpoints: the note's text is the provenance as compact JSON and a
// newline; its key name says whose it is.

// KeyName is the signed-note key name of a region's feasibility key.
func KeyName(region string) string { return "bildrum-feasibility-" + region }

// GenerateKey returns a new Ed25519 key pair for a region's feasibility
// answers: the signer key ("PRIVATE+KEY+bildrum-feasibility-12+…"), which
// stays at the node, and the verifier key ("bildrum-feasibility-12+…"),
// which the node publishes so that anyone can check its answers.
func GenerateKey(region string) (skey, vkey string, err error) {
	if _, err := bildrum.RegionByCode(region); err != nil {
		return "", "", err
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, KeyName(region))
	if err != nil {
		return "", "", fmt.Errorf("generate feasibility key: %w", err)
	}
	return skey, vkey, nil
}

// Signer signs a node's feasibility answers.
type Signer struct {
	signer note.Signer
	vkey   string
}

// NewSigner returns the signer of a signer key from GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility key: not a signed-note signer key (%v): generate one with query.GenerateKey", err)
	}
	vkey, err := keyfile.VerifierKeyOf(skey)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility key: %s", bildrum.ErrorMessage(err))
	}
	return &Signer{signer: s, vkey: vkey}, nil
}

// LoadSigner reads the signer key of region's feasibility answers from
// path, creating it (mode 0600) when the file does not exist. A key of
// another region, or a key file readable by others, is an EINVALID error.
func LoadSigner(path, region string) (*Signer, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		skey, _, err := GenerateKey(region)
		return []byte(skey + "\n"), err
	})
	if err != nil {
		return nil, fmt.Errorf("feasibility key %s: %w", path, err)
	}
	s, err := NewSigner(string(b))
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility key %s: %s", path, bildrum.ErrorMessage(err))
	}
	if s.Name() != KeyName(region) {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility key %s signs for %q, not region %s (%s): give each node its own key", path, s.Name(), region, KeyName(region))
	}
	return s, nil
}

// Name returns the signer's key name, such as bildrum-feasibility-12.
func (s *Signer) Name() string { return s.signer.Name() }

// VerifierKey returns the verifier key that checks the signer's answers.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the answer of a provenance: the provenance itself, with Key
// set to the signer's name, and the same as a signed note.
func (s *Signer) Sign(p bildrum.Provenance) (bildrum.FeasibilityAnswer, error) {
	p.Key = s.Name()
	text, err := json.Marshal(p)
	if err != nil {
		return bildrum.FeasibilityAnswer{}, fmt.Errorf("sign provenance: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: string(text) + "\n"}, s.signer)
	if err != nil {
		return bildrum.FeasibilityAnswer{}, fmt.Errorf("sign provenance: %w", err)
	}
	return bildrum.FeasibilityAnswer{Provenance: p, Signed: string(signed)}, nil
}

// Verify checks that an answer is signed by the key of vkey and that its
// provenance is exactly what was signed, and returns the signed
// provenance. Anyone holding a node's published verifier key can run it;
// docs/feasibility.md says how to do the same without Go.
func Verify(a bildrum.FeasibilityAnswer, vkey string) (bildrum.Provenance, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return bildrum.Provenance{}, bildrum.Errorf(bildrum.EINVALID, "verifier key %q: %v", vkey, err)
	}
	n, err := note.Open([]byte(a.Signed), note.VerifierList(v))
	if err != nil {
		return bildrum.Provenance{}, bildrum.Errorf(bildrum.EINVALID, "answer not signed by %s: %v", v.Name(), err)
	}
	var p bildrum.Provenance
	dec := json.NewDecoder(strings.NewReader(n.Text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return bildrum.Provenance{}, bildrum.Errorf(bildrum.EINVALID, "signed provenance is not valid: %v", err)
	}
	if p.Key != v.Name() {
		return bildrum.Provenance{}, bildrum.Errorf(bildrum.EINVALID, "signed provenance names key %q, but it is signed by %q", p.Key, v.Name())
	}
	unsigned, err := json.Marshal(a.Provenance)
	if err != nil {
		return bildrum.Provenance{}, fmt.Errorf("verify: %w", err)
	}
	if !bytes.Equal(append(unsigned, '\n'), []byte(n.Text)) {
		return bildrum.Provenance{}, bildrum.Errorf(bildrum.EINVALID, "the answer's provenance differs from what %s signed", v.Name())
	}
	return p, nil
}
