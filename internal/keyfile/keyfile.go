// Package keyfile keeps the secret keys that parts of bildrum create on
// first start (the log's signing and commitment keys, each node's
// feasibility signing key): created once, atomically and readable by their
// owner only, and never silently replaced. It also derives the verifier
// key of a signed-note Ed25519 signer key, which x/mod/sumdb/note does not
// offer.
package keyfile

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
)

// LoadOrCreate returns the contents of the secret file at path. When there
// is none, it writes create's bytes there with mode 0600, atomically and
// durably (file and directory fsynced); when another process created the
// file meanwhile, that file wins. An existing file readable by others is
// an EINVALID error.
func LoadOrCreate(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	data, err := create()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	// Link, unlike rename, fails when another process created the key
	// meanwhile: then that key is the one to use.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return nil, err
	}
	return read(path)
}

func read(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, bildrum.Errorf(bildrum.EINVALID, "secret key file %s has mode %v, readable by others: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// SyncDir makes a directory's entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// VerifierKeyOf returns the verifier key of an Ed25519 signed-note signer
// key, PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>, or an EINVALID
// error for anything else.
func VerifierKeyOf(skey string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	if !ok || len(parts) != 3 {
		return "", bildrum.Errorf(bildrum.EINVALID, "not a signed-note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", bildrum.Errorf(bildrum.EINVALID, "not an Ed25519 signed-note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[0], pub)
}
