package keyfile

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "secret.key")
	calls := 0
	create := func() ([]byte, error) { calls++; return []byte("first\n"), nil }
	for i := range 2 {
		b, err := LoadOrCreate(path, create)
		if err != nil || string(b) != "first\n" {
			t.Fatalf("LoadOrCreate #%d = %q, %v; want the first key", i+1, b, err)
		}
	}
	if calls != 1 {
		t.Errorf("create called %d times, want once: an existing key is never replaced", calls)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path, create); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("LoadOrCreate of a key readable by others = %v, want EINVALID", err)
	}
}

func TestVerifierKeyOf(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "bildrum.test/key")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		skey, want string
		ok         bool
	}{
		{skey, vkey, true},
		{" " + skey + "\n", vkey, true},
		{vkey, "", false},
		{"PRIVATE+KEY+name+00000000+AAAA", "", false},
		{"", "", false},
	} {
		got, err := VerifierKeyOf(tc.skey)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("VerifierKeyOf(%q) = %q, %v; want %q", tc.skey, got, err, tc.want)
		}
	}
}
