package tlog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/tlog"
)

// TestWitnessCosigns runs a real witness, torchwood's litewitness
// (see below), and checks that the log's checkpoints carry its
// valid cosignature, across several checkpoints (so the witness checks
// consistency proofs too).
func TestWitnessCosigns(t *testing.T) {
	w := startLitewitness(t, testOrigin)

	dir := t.TempDir()
	cfg := testConfig(dir)
	skey, vkey, err := tlog.GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	cfg.VerifierKey = vkey
	w.trust(t, vkey)
	cfg.Witnesses = []tlog.Witness{{URL: w.url, VerifierKey: w.vkey}}
	l := openLog(t, cfg)
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()

	c, err := tlog.NewClient(srv.URL+"/log", vkey, []string{w.vkey}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var events []bildrum.AccessEvent
		for i := range 100 {
			events = append(events, event("189001019802", round*100+i))
		}
		checkpointAfter(t, l, appendAll(t, l, events))
		cp, err := c.Checkpoint(context.Background())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !slices.Equal(cp.Cosigners, []string{w.name}) {
			t.Fatalf("round %d: checkpoint cosigned by %v, want %s\n%s", round, cp.Cosigners, w.name, cp.Raw)
		}
	}

	// A client that requires another witness refuses the checkpoint.
	_, stranger := newWitnessKey(t, "bildrum.test/stranger")
	c2, err := tlog.NewClient(srv.URL+"/log", vkey, []string{stranger}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "witness cosignatures") {
		t.Errorf("checkpoint without the required witness = %v, want an error about cosignatures", err)
	}
}

// litewitness is a litewitness process serving on loopback.
type litewitness struct {
	name, vkey, url, db string
}

// The witness is filippo.io/torchwood/cmd/litewitness, which
// scripts/test.sh installs at v0.9.0 with its own go.mod, not required by
// ours: torchwood's module graph names sigsum.org/sigsum-go, which the
// module proxy here does not serve, and would break 'go list -m all' and
// 'go mod tidy' for bildrum.

// newWitnessKey returns a witness's Ed25519 key and its cosignature/v1
// verifier key (signed-note type 0x04).
func newWitnessKey(t *testing.T, name string) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, cosig
}

// startLitewitness starts litewitness (the program BILDRUM_LITEWITNESS
// names, which scripts/test.sh installs, or one in
// PATH), serves its key from an in-process ssh-agent, and starts it on a
// free loopback port.
func startLitewitness(t *testing.T, origin string) *litewitness {
	t.Helper()
	program := os.Getenv("BILDRUM_LITEWITNESS")
	if program == "" {
		program = "litewitness"
	}
	program = testenv.RequireExternal(t, program)

	w := &litewitness{name: "bildrum.test/witness", db: filepath.Join(t.TempDir(), "witness.db")}
	priv, vkey := newWitnessKey(t, w.name)
	w.vkey = vkey

	sock := filepath.Join(t.TempDir(), "agent.sock")
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var serving sync.WaitGroup
	t.Cleanup(func() { ln.Close(); serving.Wait() })
	serving.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			serving.Go(func() { defer conn.Close(); agent.ServeAgent(keyring, conn) })
		}
	})
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}

	// The witness's database: the schema of torchwood's witness.OpenDB,
	// and the log added as witnessctl add-log does.
	db, err := sql.Open("sqlite", w.db)
	if err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS log (origin TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, tree_hash TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS key (origin TEXT NOT NULL, key TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin))`,
		`CREATE TABLE IF NOT EXISTS bastion (origin TEXT NOT NULL, bastion TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin))`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)`, origin, base64.StdEncoding.EncodeToString(empty[:])); err != nil {
		t.Fatal(err)
	}
	db.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w.url = "http://" + addr
	cmd := exec.Command(program, "-name", w.name, "-db", w.db, "-ssh-agent", sock,
		"-key", ssh.FingerprintSHA256(sshPub), "-listen", addr)
	var out testenv.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("litewitness output:\n%s", out.String())
		}
	})
	// Wait for the witness to listen: it is another process, so there is
	// nothing to wait on but its port.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(w.url + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("litewitness did not start listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w
}

// trust adds the log's verifier key to the witness, as witnessctl add-key does.
func (w *litewitness) trust(t *testing.T, vkey string) {
	t.Helper()
	db, err := sql.Open("sqlite", w.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO key (origin, key) VALUES (?, ?)`, v.Name(), vkey); err != nil {
		t.Fatal(err)
	}
}
