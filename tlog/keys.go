package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
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
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>, per x/mod/sumdb/note.
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	if !ok || len(parts) != 3 {
		return "", errors.New("tlog: not a signed-note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("tlog: not an Ed25519 signed-note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[0], pub)
}

// loadOrCreateSigner reads the signer key at path, creating it (mode 0600)
// on first start. The key must sign for origin.
func loadOrCreateSigner(path, origin string) (note.Signer, string, error) {
	b, err := loadOrCreate(path, func() ([]byte, error) {
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
	b, err := loadOrCreate(path, func() ([]byte, error) {
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

// loadOrCreate returns the contents of the secret file at path. When there
// is none, it writes create's bytes there atomically with mode 0600. An
// existing file readable by others is refused.
func loadOrCreate(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	data, err := create()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlog: key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("tlog: create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("tlog: create %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("tlog: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("tlog: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("tlog: write %s: %w", path, err)
	}
	// Link, unlike rename, fails when another process created the key
	// meanwhile: then that key is the one to use.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("tlog: create %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return readSecret(path)
}

func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, bildrum.Errorf(bildrum.EINVALID, "secret key file %s has mode %v, readable by others: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlog: read %s: %w", path, err)
	}
	return b, nil
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("tlog: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("tlog: sync %s: %w", dir, err)
	}
	return nil
}
