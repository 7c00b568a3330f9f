package tlog

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/keyfile"
)

// GenerateKey returns a new Ed25519 signed-note key pair for a log with
// the given origin: the signer key ("PRIVATE+KEY+origin+hash+…") and the
// verifier key ("origin+hash+…", [signed-note] type 0x01) that auditors
// pass to 'bildrum log verify -vkey'.
func GenerateKey(origin string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("tlog: generate key for %q: %w", origin, err)
	}
	return skey, vkey, nil
}

// VerifierKeyOf returns the verifier key of an Ed25519 signer key.
func VerifierKeyOf(skey string) (string, error) {
	vkey, err := keyfile.VerifierKeyOf(skey)
	if err != nil {
		return "", fmt.Errorf("tlog: %w", err)
	}
	return vkey, nil
}

// loadOrCreateSigner reads the signer key at path, creating it (mode 0600)
// on first start. The key must sign for origin.
func loadOrCreateSigner(path, origin string) (note.Signer, string, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		skey, _, err := GenerateKey(origin)
		return []byte(skey + "\n"), err
	})
	if err != nil {
		return nil, "", err
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", bildrum.Errorf(bildrum.EINVALID, "log key %s is not a signed-note signer key (%v): restore it from backup; a new key makes a new log", path, err)
	}
	if s.Name() != origin {
		return nil, "", bildrum.Errorf(bildrum.EINVALID, "log key %s signs for origin %q, but the configured origin is %q: set the origin back, or start a new log in a new directory", path, s.Name(), origin)
	}
	vkey, err := VerifierKeyOf(skey)
	if err != nil {
		return nil, "", bildrum.Errorf(bildrum.EINVALID, "log key %s: %v", path, err)
	}
	return s, vkey, nil
}

// loadOrCreateSecret reads the commitment key at path (hex), creating a
// random one (mode 0600) on first start.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		k := make([]byte, CommitmentKeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(k) + "\n"), nil
	})
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < CommitmentKeySize {
		return nil, bildrum.Errorf(bildrum.EINVALID, "commitment key %s must hold at least %d random bytes in hex: restore it from backup (without it no woman can find her earlier events)", path, CommitmentKeySize)
	}
	return k, nil
}
