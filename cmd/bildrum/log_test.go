package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/tlog"
)

const logTestOrigin = "bildrum.test/log"

// testTlog is a transparency log served over HTTP, as the hub serves it.
type testTlog struct {
	log  *tlog.Log
	dir  string // the public log directory
	url  string // the log's URL prefix
	vkey string
	skey string
}

// startTestTlog opens a log signed with skey (a new key when empty) and
// serves it.
func startTestTlog(t *testing.T, skey string) *testTlog {
	t.Helper()
	dir := t.TempDir()
	vkey := ""
	var err error
	if skey == "" {
		if skey, vkey, err = tlog.GenerateKey(logTestOrigin); err != nil {
			t.Fatal(err)
		}
	} else if vkey, err = tlog.VerifierKeyOf(skey); err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(context.Background(), tlog.Config{
		Dir:                filepath.Join(dir, "public"),
		Origin:             logTestOrigin,
		Signer:             signer,
		VerifierKey:        vkey,
		CommitmentKey:      bytes.Repeat([]byte{7}, tlog.CommitmentKeySize),
		IndexFile:          filepath.Join(dir, "persons.idx"),
		CheckpointInterval: 100 * time.Millisecond,
		BatchMaxAge:        5 * time.Millisecond,
		Log:                slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)
	return &testTlog{log: l, dir: filepath.Join(dir, "public"), url: srv.URL + tlog.Prefix, vkey: vkey, skey: skey}
}

// add appends n events about person and waits for a checkpoint with them.
func (tl *testTlog) add(t *testing.T, person bildrum.PersonID, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	indices := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			indices[i], errs[i] = tl.log.Append(context.Background(), bildrum.AccessEvent{
				Time:    time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
				Actor:   bildrum.Principal{Name: "Anna Andersson", Role: bildrum.RoleRadiologist, Organisation: "Region Skåne", Region: "12"},
				Purpose: bildrum.PurposeCare, Region: "12", Person: person,
				Kind: bildrum.AccessImageRead, What: fmt.Sprintf("WADO-RS /dicomweb/studies/1.2.752.%d", i),
			})
		})
	}
	wg.Wait()
	var last uint64
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, indices[i])
	}
	if _, err := tl.log.WaitCheckpoint(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// runBildrum runs a command line as main does and returns its exit code
// and output.
func runBildrum(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// flipByte changes one byte of a file of the log directory, as an
// operator rewriting history would.
func flipByte(t *testing.T, path string, offset int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLogVerify(t *testing.T) {
	const person = bildrum.PersonID("189001019802")
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, tl *testTlog) []string // extra arguments
		full    bool
		code    int
		stdout  []string
		stderr  []string
		noState bool // the state file must not be written
	}{
		{
			name:   "first run",
			code:   0,
			stdout: []string{"checkpoint of size 300", "first checkpoint seen", "tiles: hash to the signed root", "OK"},
		},
		{
			name:   "full",
			full:   true,
			code:   0,
			stdout: []string{"full: 300 entries recomputed", "OK"},
		},
		{
			name: "full finds a person's leaves",
			full: true,
			setup: func(t *testing.T, tl *testTlog) []string {
				return []string{"-person-key", hex.EncodeToString(tl.log.PersonKey(person))}
			},
			code:   0,
			stdout: []string{"person: 300 leaves are this person's"},
		},
		{
			name: "full reads leaves about no one person",
			full: true,
			setup: func(t *testing.T, tl *testTlog) []string {
				var last uint64
				for i := range 4 {
					index, err := tl.log.Append(context.Background(), bildrum.AccessEvent{
						Actor:   bildrum.Principal{Name: "Eva Forskare", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"},
						Purpose: bildrum.PurposeResearch, Region: "14", Kind: bildrum.AccessFeasibilityQuery,
						What: fmt.Sprintf("feasibility count %064x of women; ε 0.5 charged", i),
					})
					if err != nil {
						t.Fatal(err)
					}
					last = max(last, index)
				}
				if _, err := tl.log.WaitCheckpoint(context.Background(), last); err != nil {
					t.Fatal(err)
				}
				return []string{"-person-key", hex.EncodeToString(tl.log.PersonKey(person))}
			},
			code:   0,
			stdout: []string{"full: 304 entries recomputed", "leaves: 300 about a person (version 1), 4 about no one person", "person: 300 leaves are this person's"},
		},
		{
			name: "entry bundle altered",
			full: true,
			setup: func(t *testing.T, tl *testTlog) []string {
				flipByte(t, filepath.Join(tl.dir, "tile", "entries", "000"), 40)
				return nil
			},
			code:    1,
			stderr:  []string{"leaf 0: entry 0 of tile/entries/000", "hash 0 of tile/0/000", "the entry was altered"},
			noState: true,
		},
		{
			name: "level 0 tile altered",
			full: true,
			setup: func(t *testing.T, tl *testTlog) []string {
				flipByte(t, filepath.Join(tl.dir, "tile", "0", "000"), 5*32+3)
				return nil
			},
			code:    1,
			stderr:  []string{"leaf 5: entry 5 of tile/entries/000", "hash 5 of tile/0/000", "the tile was altered"},
			noState: true,
		},
		{
			name: "partial tile altered",
			setup: func(t *testing.T, tl *testTlog) []string {
				flipByte(t, filepath.Join(tl.dir, "tile", "0", "001.p", "44"), 0)
				return nil
			},
			code:    1,
			stderr:  []string{"the tiles for size 300 hash to root", "a tile was altered (run with -full to find it)"},
			noState: true,
		},
		{
			name: "partial tile altered, full",
			full: true,
			setup: func(t *testing.T, tl *testTlog) []string {
				flipByte(t, filepath.Join(tl.dir, "tile", "0", "001.p", "44"), 0)
				return nil
			},
			code:    1,
			stderr:  []string{"leaf 256: entry 0 of tile/entries/001.p/44", "hash 0 of tile/0/001.p/44", "the tile was altered"},
			noState: true,
		},
		{
			name: "checkpoint signed with another key",
			setup: func(t *testing.T, tl *testTlog) []string {
				skey, _, err := tlog.GenerateKey(logTestOrigin)
				if err != nil {
					t.Fatal(err)
				}
				other := startTestTlog(t, skey)
				other.add(t, person, 3)
				return []string{"-url", other.url}
			},
			code:    1,
			stderr:  []string{"not signed by the log key " + logTestOrigin},
			noState: true,
		},
		{
			name: "witness cosignature missing",
			setup: func(t *testing.T, tl *testTlog) []string {
				_, wvkey, err := note.GenerateKey(rand.Reader, "bildrum.test/witness")
				if err != nil {
					t.Fatal(err)
				}
				return []string{"-witness", wvkey}
			},
			code:    1,
			stderr:  []string{"carries 0 valid witness cosignatures, 1 are required: none from bildrum.test/witness"},
			noState: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := startTestTlog(t, "")
			tl.add(t, person, 300)
			state := filepath.Join(t.TempDir(), "state", "log.checkpoint")
			args := []string{"log", "verify", "-url", tl.url, "-vkey", tl.vkey, "-state", state}
			if tc.full {
				args = append(args, "-full")
			}
			if tc.setup != nil {
				args = append(args, tc.setup(t, tl)...)
			}
			code, stdout, stderr := runBildrum(t, args...)
			if code != tc.code {
				t.Fatalf("bildrum %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not say %q:\n%s", want, stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if _, err := os.Stat(state); tc.noState != os.IsNotExist(err) {
				t.Errorf("state file written: %v, want %v", err == nil, !tc.noState)
			}
		})
	}
}

// TestLogVerifyTracksState runs verify twice over a growing log, and then
// against a log with another history under the same key: a fork.
func TestLogVerifyTracksState(t *testing.T) {
	const person = bildrum.PersonID("189001019802")
	tl := startTestTlog(t, "")
	tl.add(t, person, 10)
	state := filepath.Join(t.TempDir(), "log.checkpoint")
	verify := func(url string) (int, string, string) {
		return runBildrum(t, "log", "verify", "-url", url, "-vkey", tl.vkey, "-state", state)
	}
	if code, stdout, stderr := verify(tl.url); code != 0 {
		t.Fatalf("first verify: exit %d\n%s%s", code, stdout, stderr)
	}
	tl.add(t, person, 20)
	code, stdout, stderr := verify(tl.url)
	if code != 0 || !strings.Contains(stdout, "extends the checkpoint of size 10 seen before") {
		t.Fatalf("second verify: exit %d, want 0 and the consistency with size 10\n%s%s", code, stdout, stderr)
	}

	// The same key signs another history: 40 other leaves.
	fork := startTestTlog(t, tl.skey)
	fork.add(t, "189001029819", 40)
	code, _, stderr = verify(fork.url)
	if code != 1 || !strings.Contains(stderr, "is not consistent with the checkpoint of size 30") || !strings.Contains(stderr, state) {
		t.Fatalf("verify of a forked log: exit %d, want 1 and the inconsistency named\n%s", code, stderr)
	}
	// A shorter history under the same key: a rollback.
	short := startTestTlog(t, tl.skey)
	short.add(t, person, 5)
	code, _, stderr = verify(short.url)
	if code != 1 || !strings.Contains(stderr, "the log shrank") {
		t.Fatalf("verify of a rolled back log: exit %d, want 1 and a rollback named\n%s", code, stderr)
	}
}

func TestLogShow(t *testing.T) {
	const person = bildrum.PersonID("189001019802")
	tl := startTestTlog(t, "")
	tl.add(t, person, 3)
	code, stdout, stderr := runBildrum(t, "log", "show", "-url", tl.url, "-vkey", tl.vkey, "-index", "2",
		"-person-key", hex.EncodeToString(tl.log.PersonKey(person)))
	if code != 0 {
		t.Fatalf("log show: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"leaf 2 of bildrum.test/log, included in the signed checkpoint of size 3", `"kind": "image-read"`, `"legal_basis": "PDL (2008:355) 4 kap.`, "this leaf is about the person of this key", "what: WADO-RS /dicomweb/studies/1.2.752.", "actor: Anna Andersson"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("log show does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, string(person)) || strings.Contains(stdout, "1.2.752") && !strings.Contains(stdout, "what:") {
		t.Errorf("log show prints personal data outside the opened details:\n%s", stdout)
	}

	// Without -vkey, the log's own key is used, with a warning.
	code, _, stderr = runBildrum(t, "log", "show", "-url", tl.url, "-index", "0")
	if code != 0 || !strings.Contains(stderr, "trusting the key the log serves itself") {
		t.Errorf("log show without -vkey: exit %d, stderr %q; want 0 and a warning", code, stderr)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"log", "show", "-url", tl.url, "-vkey", tl.vkey, "-index", "3"}, 1, "leaf 3 is not in the log: the checkpoint covers 3 leaves"},
		{[]string{"log", "show", "-url", tl.url, "-vkey", tl.vkey}, 2, "give the leaf with -index N"},
		{[]string{"log", "verify", "-vkey", tl.vkey}, 2, "give the log's URL with -url"},
		{[]string{"log", "verify", "-url", tl.url}, 2, "-vkey"},
		{[]string{"log", "verify", "-url", tl.url, "-vkey", "nonsense"}, 2, "log verifier key"},
		{[]string{"log", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"log"}, 2, "verify or show"},
	} {
		code, _, stderr := runBildrum(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("bildrum %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.stderr)
		}
	}
}

func TestLogServesWithoutCredentials(t *testing.T) {
	tl := startTestTlog(t, "")
	for _, p := range []string{"/checkpoint", "/v1/verifier-key"} {
		resp, err := http.Get(tl.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without credentials: %s, want 200", p, resp.Status)
		}
	}
}
