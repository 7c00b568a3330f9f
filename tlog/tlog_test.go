package tlog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	f_log "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/tlog"
)

const testOrigin = "bildrum.test/log"

// testConfig lays a log out under dir as the hub does: the public log in
// dir/public, the secrets and the index in dir/private.
func testConfig(dir string) tlog.Config {
	return tlog.Config{
		Dir:                filepath.Join(dir, "public"),
		Origin:             testOrigin,
		KeyFile:            filepath.Join(dir, "private", "log.key"),
		CommitmentKeyFile:  filepath.Join(dir, "private", "commitment.key"),
		IndexFile:          filepath.Join(dir, "private", "persons.idx"),
		CheckpointInterval: 100 * time.Millisecond,
		BatchMaxAge:        5 * time.Millisecond,
		Log:                slog.New(slog.DiscardHandler),
	}
}

func openLog(t testing.TB, cfg tlog.Config) *tlog.Log {
	t.Helper()
	l, err := tlog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testPersons returns n of Skatteverket's official test personnummer.
func testPersons(t testing.TB, n int) []bildrum.PersonID {
	t.Helper()
	f, err := os.Open("../synth/data/skatteverket_test_personnummer.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []bildrum.PersonID
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < n {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := bildrum.ParsePersonID(line)
		if err != nil {
			t.Fatalf("test personnummer %q: %v", line, err)
		}
		out = append(out, id)
	}
	if len(out) < n {
		t.Fatalf("only %d test personnummer", len(out))
	}
	return out
}

func event(person bildrum.PersonID, i int) bildrum.AccessEvent {
	return bildrum.AccessEvent{
		Time:    time.Date(2026, 3, 1, 10, 0, i%60, 123456789, time.UTC),
		Actor:   bildrum.Principal{Name: "Anna Andersson", Role: bildrum.RoleRadiologist, Organisation: "Region Skåne", Region: "12"},
		Purpose: bildrum.PurposeCare,
		Region:  "12",
		Person:  person,
		Kind:    bildrum.AccessImageRead,
		What:    fmt.Sprintf("WADO-RS /dicomweb/studies/1.2.752.%d", i),
	}
}

// appendAll appends events concurrently and returns their indices.
func appendAll(t testing.TB, l *tlog.Log, events []bildrum.AccessEvent) []uint64 {
	t.Helper()
	indices := make([]uint64, len(events))
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	for i, e := range events {
		wg.Go(func() { indices[i], errs[i] = l.Append(context.Background(), e) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return indices
}

// checkpointAfter waits for a checkpoint covering every index and verifies it.
func checkpointAfter(t testing.TB, l *tlog.Log, indices []uint64) *f_log.Checkpoint {
	t.Helper()
	last := slices.Max(indices)
	raw, err := l.WaitCheckpoint(context.Background(), last)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := l.ParseCheckpoint(raw)
	if err != nil {
		t.Fatalf("ParseCheckpoint: %v\n%s", err, raw)
	}
	if cp.Size <= last {
		t.Fatalf("checkpoint of size %d does not cover leaf %d", cp.Size, last)
	}
	return cp
}

func TestAppendAndProveInclusion(t *testing.T) {
	persons := testPersons(t, 10)
	for _, n := range []int{1, 2, 255, 256, 257, 700} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			l := openLog(t, testConfig(t.TempDir()))
			var events []bildrum.AccessEvent
			for i := range n {
				events = append(events, event(persons[i%len(persons)], i))
			}
			indices := appendAll(t, l, events)
			slices.Sort(indices)
			for i, index := range indices {
				if index != uint64(i) {
					t.Fatalf("indices = %v…, want 0 to %d each once", indices[:min(10, len(indices))], n-1)
				}
			}
			cp := checkpointAfter(t, l, indices)
			for _, index := range indices {
				e, err := l.Entry(context.Background(), index)
				if err != nil {
					t.Fatalf("Entry(%d): %v", index, err)
				}
				hashes, err := l.InclusionProof(context.Background(), index, cp.Size)
				if err != nil {
					t.Fatalf("InclusionProof(%d, %d): %v", index, cp.Size, err)
				}
				leafHash := rfc6962.DefaultHasher.HashLeaf(e)
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash, hashes, cp.Hash); err != nil {
					t.Fatalf("inclusion proof of leaf %d in the signed tree of size %d: %v", index, cp.Size, err)
				}
				// A proof must not verify for another leaf.
				if other := (index + 1) % cp.Size; other != index {
					if err := proof.VerifyInclusion(rfc6962.DefaultHasher, other, cp.Size, leafHash, hashes, cp.Hash); err == nil {
						t.Fatalf("the proof of leaf %d also verifies as leaf %d", index, other)
					}
				}
			}
		})
	}
}

func TestConsistencyAcrossAppends(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	persons := testPersons(t, 3)
	var cps []*f_log.Checkpoint
	i := 0
	for _, batch := range []int{1, 3, 250, 2, 300, 1} {
		var events []bildrum.AccessEvent
		for range batch {
			events = append(events, event(persons[i%3], i))
			i++
		}
		cps = append(cps, checkpointAfter(t, l, appendAll(t, l, events)))
	}
	for a, old := range cps {
		for _, new := range cps[a:] {
			hashes, err := l.ConsistencyProof(context.Background(), old.Size, new.Size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", old.Size, new.Size, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, new.Size, hashes, old.Hash, new.Hash); err != nil {
				t.Errorf("checkpoints of sizes %d and %d are not consistent: %v", old.Size, new.Size, err)
			}
		}
	}
	if _, err := l.ConsistencyProof(context.Background(), 5, 3); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("ConsistencyProof(5, 3) = %v, want an EINVALID error", err)
	}
	if _, err := l.InclusionProof(context.Background(), 0, 1<<40); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
		t.Errorf("InclusionProof beyond the log = %v, want an ENOTFOUND error", err)
	}
}

func TestReopenKeepsLogConsistent(t *testing.T) {
	dir := t.TempDir()
	person := testPersons(t, 1)[0]
	l, err := tlog.Open(context.Background(), testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	vkey := l.VerifierKey()
	first := appendAll(t, l, []bildrum.AccessEvent{event(person, 0), event(person, 1), event(person, 2)})
	old := checkpointAfter(t, l, first)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close is idempotent, and a closed log takes no events.
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(context.Background(), event(person, 3)); bildrum.ErrorCode(err) != bildrum.EUNAVAILABLE {
		t.Fatalf("Append after Close = %v, want EUNAVAILABLE", err)
	}

	l = openLog(t, testConfig(dir))
	if l.VerifierKey() != vkey {
		t.Fatalf("reopened log has key %s, want %s", l.VerifierKey(), vkey)
	}
	second := appendAll(t, l, []bildrum.AccessEvent{event(person, 3), event(person, 4)})
	new := checkpointAfter(t, l, second)
	if new.Size != 5 {
		t.Fatalf("after reopening and two more events the tree has %d leaves, want 5", new.Size)
	}
	hashes, err := l.ConsistencyProof(context.Background(), old.Size, new.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, new.Size, hashes, old.Hash, new.Hash); err != nil {
		t.Fatalf("checkpoint before the restart (size %d) is not consistent with the one after (size %d): %v", old.Size, new.Size, err)
	}
	got, err := l.PersonIndices(context.Background(), person)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("PersonIndices after reopening = %v, want %v", got, want)
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	cfg := testConfig(t.TempDir())
	openLog(t, cfg)
	if _, err := tlog.Open(context.Background(), cfg); bildrum.ErrorCode(err) != bildrum.EUNAVAILABLE {
		t.Fatalf("second Open of one directory = %v, want EUNAVAILABLE", err)
	}
}

// TestRecordAccessDurable crashes a process right after RecordAccess
// returned, and finds the event in the log it left on disk.
func TestRecordAccessDurable(t *testing.T) {
	if dir := os.Getenv("TLOG_TEST_CRASH_DIR"); dir != "" {
		crashAfterRecord(dir)
		return
	}
	dir := t.TempDir()
	person := testPersons(t, 1)[0]
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordAccessDurable$")
	cmd.Env = append(os.Environ(), "TLOG_TEST_CRASH_DIR="+dir, "TLOG_TEST_PERSON="+string(person))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("crashing process: %v, want exit status 3\n%s", err, out)
	}
	index, err := strconv.ParseUint(string(bytes.TrimSpace(lastLine(out))), 10, 64)
	if err != nil {
		t.Fatalf("crashing process did not print the index: %v\n%s", err, out)
	}

	l := openLog(t, testConfig(dir))
	e, err := l.Entry(context.Background(), index)
	if err != nil {
		t.Fatalf("after the crash, Entry(%d): %v", index, err)
	}
	leaf, err := tlog.ParseLeaf(e)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Mine(l.PersonKey(person)) {
		t.Fatalf("leaf %d after the crash is not the person's", index)
	}
	got, err := l.PersonIndices(context.Background(), person)
	if err != nil || !slices.Contains(got, index) {
		t.Fatalf("PersonIndices after the crash = %v, %v; want it to hold %d", got, err, index)
	}
	cp := checkpointAfter(t, l, []uint64{index})
	hashes, err := l.InclusionProof(context.Background(), index, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyInclusion(e, index, cp.Size, hashes, cp.Hash); err != nil {
		t.Fatalf("leaf recorded before the crash is not in the checkpoint after it: %v", err)
	}
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// crashAfterRecord records one event and exits at once, without Close.
func crashAfterRecord(dir string) {
	cfg := testConfig(dir)
	cfg.CheckpointInterval = time.Hour // no checkpoint would cover it
	l, err := tlog.Open(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	person := bildrum.PersonID(os.Getenv("TLOG_TEST_PERSON"))
	// Other events first, so that the one checked is not in the first
	// checkpoint (of size 0) written at creation.
	for i := range 3 {
		if err := l.RecordAccess(context.Background(), event("189001019802", i)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	index, err := l.Append(context.Background(), event(person, 9))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println(index)
	os.Exit(3)
}

// TestPublicLogHasNoPersonnummer scans every byte the log directory holds
// (tiles, entry bundles, checkpoints and tessera's state) for every test
// person's number in every common spelling, and checks that one woman's
// leaves cannot be linked to each other.
func TestPublicLogHasNoPersonnummer(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	l := openLog(t, cfg)
	persons := testPersons(t, 300)
	var events []bildrum.AccessEvent
	for i, p := range persons {
		e1, e2 := event(p, i), event(p, i)
		e2.Purpose = bildrum.PurposeResearch
		e1.What = "WADO-RS /dicomweb/studies?PatientID=" + string(p) // a careless resource name
		events = append(events, e1, e2)
	}
	indices := appendAll(t, l, events)
	checkpointAfter(t, l, indices)

	var forms [][]byte
	for _, p := range persons {
		s := string(p)
		for _, f := range []string{s, s[2:], s[:8] + "-" + s[8:], s[2:8] + "-" + s[8:]} {
			forms = append(forms, []byte(f), []byte(base64.StdEncoding.EncodeToString([]byte(f))))
		}
	}
	scan := func(root string) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, f := range forms {
				if bytes.Contains(b, f) {
					t.Errorf("%s contains %q", path, f)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scan(cfg.Dir)
	scan(cfg.IndexFile)

	for i, p := range persons[:20] {
		a, b := leafAt(t, l, indices[2*i]), leafAt(t, l, indices[2*i+1])
		if bytes.Equal(a.Commitment, b.Commitment) || bytes.Equal(a.Nonce, b.Nonce) {
			t.Errorf("two leaves of one person share a commitment or nonce: %x %x", a.Commitment, b.Commitment)
		}
		if a.Actor.ID != b.Actor.ID || a.Actor.ID == "" {
			t.Errorf("one actor has the pseudonyms %q and %q, want one", a.Actor.ID, b.Actor.ID)
		}
		pk := l.PersonKey(p)
		if !a.Mine(pk) || !b.Mine(pk) {
			t.Errorf("person %d does not recognise her leaves", i)
		}
		if a.Mine(l.PersonKey(persons[i+1])) {
			t.Errorf("person %d recognises person %d's leaf", i+1, i)
		}
		d, err := tlog.OpenDetails(pk, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := "WADO-RS /dicomweb/studies?PatientID=" + string(p); d.What != want || d.ActorName != "Anna Andersson" {
			t.Errorf("OpenDetails = %+v, want what %q and the actor's name", d, want)
		}
		if _, err := tlog.OpenDetails(l.PersonKey(persons[i+1]), a); !errors.Is(err, tlog.ErrNotMine) {
			t.Errorf("OpenDetails with another person's key = %v, want ErrNotMine", err)
		}
	}
	if got := leafAt(t, l, indices[0]); got.Time != "2026-03-01T10:00:00Z" || got.LegalBasis == "" || got.Region != "12" {
		t.Errorf("leaf = %+v, want time in whole seconds, a legal basis and the region", got)
	}
}

func leafAt(t testing.TB, l *tlog.Log, index uint64) tlog.Leaf {
	t.Helper()
	e, err := l.Entry(context.Background(), index)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tlog.ParseLeaf(e)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestPersonIndicesAndFindLeaves(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	persons := testPersons(t, 6)
	nobody := persons[5]
	persons = persons[:5]
	var events []bildrum.AccessEvent
	for i := range 600 {
		events = append(events, event(persons[i%5], i))
	}
	indices := appendAll(t, l, events)
	for p, person := range persons {
		var want []uint64
		for i, index := range indices {
			if i%5 == p {
				want = append(want, index)
			}
		}
		slices.Sort(want)
		got, err := l.PersonIndices(context.Background(), person)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("PersonIndices(person %d) = %v, %v; want %d indices", p, got, err, len(want))
		}
		found, err := l.FindLeaves(context.Background(), l.PersonKey(person), 0)
		if err != nil || !slices.Equal(found, want) {
			t.Errorf("FindLeaves(person %d) = %v, %v; want the same as the index", p, found, err)
		}
	}
	if got, err := l.PersonIndices(context.Background(), nobody); err != nil || len(got) != 0 {
		t.Errorf("PersonIndices of a person without events = %v, %v; want none", got, err)
	}
}

// queryEvent is a feasibility query event: about no one person.
func queryEvent(i int) bildrum.AccessEvent {
	return bildrum.AccessEvent{
		Time:    time.Date(2026, 3, 1, 11, 0, i%60, 0, time.UTC),
		Actor:   bildrum.Principal{Name: "Eva Forskare", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"},
		Purpose: bildrum.PurposeResearch,
		Region:  "14",
		Kind:    bildrum.AccessFeasibilityQuery,
		What:    fmt.Sprintf("feasibility count %064x of women; ε 0.5 charged", i),
	}
}

// TestEventsAboutNoPerson checks leaf version 2: a query event becomes a
// leaf with its subject in the clear and no commitment, which is nobody's,
// is listed in no person's index, and is proved like any other leaf; the
// leaves about persons around it stay version 1.
func TestEventsAboutNoPerson(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	person := testPersons(t, 1)[0]
	indices := appendAll(t, l, []bildrum.AccessEvent{event(person, 0), queryEvent(1), event(person, 2)})
	slices.Sort(indices)
	var query uint64
	for _, i := range indices {
		leaf := leafAt(t, l, i)
		switch {
		case leaf.Kind == bildrum.AccessFeasibilityQuery:
			query = i
			if leaf.Version != tlog.LeafVersionNoPerson || leaf.AboutPerson() || leaf.Mine(l.PersonKey(person)) ||
				leaf.Subject != queryEvent(1).What || leaf.Nonce != nil || leaf.Sealed != nil ||
				leaf.Actor.Role != bildrum.RoleResearcher || leaf.Region != "14" || !strings.Contains(leaf.LegalBasis, "EHDS") {
				t.Errorf("query leaf %d = %+v; want version 2 with the public subject and no commitment", i, leaf)
			}
		case leaf.Version != tlog.LeafVersionPerson || !leaf.Mine(l.PersonKey(person)) || leaf.Subject != "":
			t.Errorf("person leaf %d = %+v; want version 1, hers, without a subject", i, leaf)
		}
	}
	got, err := l.PersonIndices(context.Background(), person)
	if err != nil || len(got) != 2 || slices.Contains(got, query) {
		t.Errorf("PersonIndices = %v, %v; want her two leaves and not the query's %d", got, err, query)
	}
	found, err := l.FindLeaves(context.Background(), l.PersonKey(person), 0)
	if err != nil || !slices.Equal(found, got) {
		t.Errorf("FindLeaves = %v, %v; want %v", found, err, got)
	}
	cp := checkpointAfter(t, l, indices)
	e, err := l.Entry(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := l.InclusionProof(context.Background(), query, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyInclusion(e, query, cp.Size, hashes, cp.Hash); err != nil {
		t.Errorf("inclusion of the query leaf: %v", err)
	}
}

// TestAppendAll checks that a page of events goes in as one: each index
// holds its own event, the persons' indices list theirs, a page with one
// invalid event adds nothing and names it, and pages from concurrent
// callers do not mix up their indices.
func TestAppendAll(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	persons := testPersons(t, 3)
	var page []bildrum.AccessEvent
	for i := range 300 {
		if i%100 == 99 {
			page = append(page, queryEvent(i))
			continue
		}
		page = append(page, event(persons[i%3], i))
	}
	bad := slices.Clone(page)
	bad[42].Region = ""
	if _, err := l.AppendAll(context.Background(), bad); bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(err.Error(), "event 43 of 300") {
		t.Fatalf("AppendAll with event 43 invalid = %v, want EINVALID naming it", err)
	}
	if n, _ := l.Size(context.Background()); n != 0 {
		t.Fatalf("the refused page left %d leaves", n)
	}

	halves := [][]bildrum.AccessEvent{page[:150], page[150:]}
	got := make([][]uint64, 2)
	var wg sync.WaitGroup
	for h := range halves {
		wg.Go(func() {
			var err error
			if got[h], err = l.AppendAll(context.Background(), halves[h]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	indices := append(got[0], got[1]...)
	if len(indices) != len(page) {
		t.Fatalf("AppendAll returned %d indices for %d events", len(indices), len(page))
	}
	want := map[bildrum.PersonID][]uint64{}
	for i, index := range indices {
		leaf := leafAt(t, l, index)
		if page[i].Person == "" {
			if leaf.Subject != page[i].What {
				t.Errorf("leaf %d = %+v, want the query event %d", index, leaf, i)
			}
			continue
		}
		d, err := tlog.OpenDetails(l.PersonKey(page[i].Person), leaf)
		if err != nil || d.What != page[i].What {
			t.Errorf("leaf %d: %+v, %v; want event %d (%s)", index, d, err, i, page[i].What)
		}
		want[page[i].Person] = append(want[page[i].Person], index)
	}
	for p, w := range want {
		slices.Sort(w)
		if got, err := l.PersonIndices(context.Background(), p); err != nil || !slices.Equal(got, w) {
			t.Errorf("PersonIndices(%s) = %v, %v; want %v", p, got, err, w)
		}
	}
}

// TestParseLeafVersions checks that ParseLeaf reads versions 1 and 2 and
// refuses what neither allows, rather than guessing.
func TestParseLeafVersions(t *testing.T) {
	const head = `"time":"2026-03-01T10:00:00Z","actor":{"organisation":"KI","role":"researcher","id":"00"},"purpose":"research","legal_basis":"x","region":"14","kind":"feasibility-query"`
	person := `"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","commitment":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","sealed":"AAAA"`
	for _, tc := range []struct {
		name, leaf string
		ok         bool
	}{
		{"v1 about a person", `{"v":1,` + head + `,` + person + `}`, true},
		{"v2 about a person", `{"v":2,` + head + `,` + person + `}`, true},
		{"v2 about no person", `{"v":2,` + head + `,"subject":"feasibility count"}`, true},
		{"v1 without a person", `{"v":1,` + head + `,"subject":"feasibility count"}`, false},
		{"v2 with neither", `{"v":2,` + head + `}`, false},
		{"v2 with both", `{"v":2,` + head + `,` + person + `,"subject":"x"}`, false},
		{"v2 with half a person", `{"v":2,` + head + `,"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","subject":"x"}`, false},
		{"v3", `{"v":3,` + head + `,"subject":"x"}`, false},
		{"unknown field", `{"v":2,` + head + `,"subject":"x","person":"189001019802"}`, false},
	} {
		_, err := tlog.ParseLeaf([]byte(tc.leaf))
		if (err == nil) != tc.ok {
			t.Errorf("%s: ParseLeaf = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestAppendRejectsIncompleteEvents(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	good := event("189001019802", 0)
	for _, tc := range []struct {
		name   string
		change func(*bildrum.AccessEvent)
	}{
		{"no person", func(e *bildrum.AccessEvent) { e.Person = "" }},
		{"query event with a person", func(e *bildrum.AccessEvent) { e.Kind = bildrum.AccessFeasibilityQuery }},
		{"query event without a description", func(e *bildrum.AccessEvent) {
			e.Kind, e.Person, e.What = bildrum.AccessFeasibilityQuery, "", ""
		}},
		{"no kind", func(e *bildrum.AccessEvent) { e.Kind = "" }},
		{"no region", func(e *bildrum.AccessEvent) { e.Region = "" }},
		{"no role", func(e *bildrum.AccessEvent) { e.Actor.Role = "" }},
		{"unknown purpose", func(e *bildrum.AccessEvent) { e.Purpose = "marketing" }},
		{"huge organisation", func(e *bildrum.AccessEvent) { e.Actor.Organisation = strings.Repeat("x", 70000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.change(&e)
			if err := l.RecordAccess(context.Background(), e); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("RecordAccess = %v, want an EINVALID error", err)
			}
		})
	}
	if n, _ := l.Size(context.Background()); n != 0 {
		t.Errorf("rejected events left %d leaves", n)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		change func(*tlog.Config)
		want   string
	}{
		{"no dir", func(c *tlog.Config) { c.Dir = "" }, "log directory"},
		{"origin with scheme", func(c *tlog.Config) { c.Origin = "https://bildrum.se/log" }, "without scheme"},
		{"origin with slash", func(c *tlog.Config) { c.Origin = "bildrum.se/log/" }, "trailing slash"},
		{"no key", func(c *tlog.Config) { c.KeyFile = "" }, "KeyFile"},
		{"key in public dir", func(c *tlog.Config) { c.KeyFile = filepath.Join(c.Dir, "log.key") }, "inside the public log directory"},
		{"no commitment key", func(c *tlog.Config) { c.CommitmentKeyFile = "" }, "CommitmentKeyFile"},
		{"short commitment key", func(c *tlog.Config) { c.CommitmentKey = []byte("short") }, "at least 32"},
		{"no index", func(c *tlog.Config) { c.IndexFile = "" }, "IndexFile"},
		{"fast checkpoints", func(c *tlog.Config) { c.CheckpointInterval = time.Millisecond }, "at least 100ms"},
		{"signer and verifier key differ", func(c *tlog.Config) {
			skey, _, _ := tlog.GenerateKey(testOrigin)
			_, vkey, _ := tlog.GenerateKey(testOrigin)
			c.Signer, _ = note.NewSigner(skey)
			c.VerifierKey = vkey
		}, "is not the signer's"},
		{"quorum too big", func(c *tlog.Config) {
			c.Witnesses = []tlog.Witness{{URL: "http://127.0.0.1:1", VerifierKey: "w+00000000+BAAA"}}
			c.WitnessQuorum = 2
		}, "witness quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(dir)
			tc.change(&cfg)
			_, err := tlog.Open(context.Background(), cfg)
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tc.want) {
				t.Errorf("Open = %v, want an EINVALID error saying %q", err, tc.want)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	l := openLog(t, cfg)
	vkey := l.VerifierKey()
	l.Close()
	for _, f := range []string{cfg.KeyFile, cfg.CommitmentKeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if !strings.HasPrefix(vkey, testOrigin+"+") {
		t.Errorf("verifier key %q does not start with the origin", vkey)
	}

	// Another origin with the same key is refused.
	other := cfg
	other.Origin = "bildrum.test/other"
	if _, err := tlog.Open(context.Background(), other); err == nil || !strings.Contains(bildrum.ErrorMessage(err), "signs for origin") {
		t.Errorf("Open with another origin = %v, want an error about the key's origin", err)
	}
	// A key readable by others is refused.
	os.Chmod(cfg.KeyFile, 0o644)
	if _, err := tlog.Open(context.Background(), cfg); err == nil || !strings.Contains(bildrum.ErrorMessage(err), "chmod 600") {
		t.Errorf("Open with a key of mode 0644 = %v, want an error saying chmod 600", err)
	}
}

func TestLegalBasis(t *testing.T) {
	for _, tc := range []struct {
		purpose             bildrum.Purpose
		actorRegion, region string
		want                string
	}{
		{bildrum.PurposeCare, "12", "12", "PDL (2008:355) 4 kap."},
		{bildrum.PurposeCare, "14", "12", "PDL (2008:355) 6 kap. sammanhållen journalföring"},
		{bildrum.PurposeResearch, "", "12", "EHDS (EU) 2025/327 art. 53.1 e"},
		{bildrum.PurposeStatistics, "", "12", "art. 53.1 c"},
		{bildrum.PurposeInnovation, "", "12", "art. 53.1 e i–ii"},
		{bildrum.PurposeQuality, "", "12", "7 kap. kvalitetsregister"},
		{bildrum.PurposeGovernance, "", "12", "art. 53.1 b"},
		{bildrum.PurposeSupervision, "", "12", "patientsäkerhetslagen (2010:659)"},
		{bildrum.PurposeEducation, "", "12", "art. 53.1 d"},
		{bildrum.PurposeRecruitment, "", "12", "samtycke"},
	} {
		if got := tlog.LegalBasis(tc.purpose, tc.actorRegion, tc.region); !strings.Contains(got, tc.want) {
			t.Errorf("LegalBasis(%s, %q, %q) = %q, want it to contain %q", tc.purpose, tc.actorRegion, tc.region, got, tc.want)
		}
	}
	for _, p := range bildrum.Purposes() {
		if tlog.LegalBasis(p, "", "12") == "" {
			t.Errorf("purpose %s has no legal basis", p)
		}
	}
}

func TestHTTP(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	var events []bildrum.AccessEvent
	for i := range 300 {
		events = append(events, event("189001019802", i))
	}
	cp := checkpointAfter(t, l, appendAll(t, l, events))
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()

	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	for _, tc := range []struct {
		path        string
		status      int
		contentType string
	}{
		{"/log/checkpoint", 200, "text/plain; charset=utf-8"},
		{"/log/tile/0/000", 200, "application/octet-stream"},
		{"/log/tile/0/001.p/44", 200, "application/octet-stream"},
		{"/log/tile/1/000.p/1", 200, "application/octet-stream"},
		{"/log/tile/entries/000", 200, "application/octet-stream"},
		{"/log/tile/entries/001.p/44", 200, "application/octet-stream"},
		{"/log/v1/verifier-key", 200, "text/plain; charset=utf-8"},
		{"/log/v1/entries/299", 200, "application/json"},
		{"/log/v1/entries/300", 404, "application/problem+json"},
		{"/log/v1/proof/inclusion?index=7&tree_size=300", 200, "application/json"},
		{"/log/v1/proof/inclusion?index=7", 400, "application/problem+json"},
		{"/log/v1/proof/consistency?first=10&second=300", 200, "application/json"},
		// Only canonical tlog-tiles paths, nothing else of the directory.
		{"/log/tile/0/0000", 404, ""},
		{"/log/tile/0/x000/000", 404, ""},
		{"/log/tile/0/002", 404, ""},
		{"/log/.state/treeState", 404, ""},
		{"/log/tile/entries/../../.state/treeState", 404, ""},
		{"/log/tile/0/%2e%2e/%2e%2e/.state/treeState", 404, ""},
	} {
		resp, _ := get(tc.path)
		if resp.StatusCode != tc.status || (tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType) {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
		}
	}

	var incl tlog.InclusionProofJSON
	_, body := get(fmt.Sprintf("/log/v1/proof/inclusion?index=7&tree_size=%d", cp.Size))
	if err := json.Unmarshal(body, &incl); err != nil {
		t.Fatal(err)
	}
	var entry tlog.EntryJSON
	_, body = get("/log/v1/entries/7")
	if err := json.Unmarshal(body, &entry); err != nil {
		t.Fatal(err)
	}
	if entry.Leaf == nil || entry.Leaf.Kind != bildrum.AccessImageRead {
		t.Errorf("entry JSON has leaf %+v, want the decoded leaf", entry.Leaf)
	}
	if err := tlog.VerifyInclusion(entry.Entry, incl.LeafIndex, incl.TreeSize, incl.Hashes, cp.Hash); err != nil {
		t.Errorf("inclusion proof from the JSON API does not verify: %v", err)
	}
	var cons tlog.ConsistencyProofJSON
	_, body = get(fmt.Sprintf("/log/v1/proof/consistency?first=10&second=%d", cp.Size))
	json.Unmarshal(body, &cons)
	if len(cons.Hashes) == 0 {
		t.Errorf("consistency proof from the JSON API is empty")
	}

	// A gzip-capable client gets compressed entry bundles.
	req, _ := http.NewRequest("GET", srv.URL+"/log/tile/entries/000", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("entry bundle Content-Encoding = %q, want gzip", resp.Header.Get("Content-Encoding"))
	}

	// Everything verifies through the client, from HTTP alone.
	c, err := tlog.NewClient(srv.URL+"/log", l.VerifierKey(), nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccp, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckTiles(context.Background(), ccp); err != nil {
		t.Error(err)
	}
	n := uint64(0)
	if err := c.Audit(context.Background(), ccp, func(index uint64, e []byte) error { n++; return nil }); err != nil {
		t.Error(err)
	}
	if n != ccp.Size {
		t.Errorf("Audit visited %d leaves, want %d", n, ccp.Size)
	}
	e, err := c.Entry(context.Background(), ccp, 260)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.ParseLeaf(e); err != nil {
		t.Error(err)
	}
}

func TestLongResourceIsTruncated(t *testing.T) {
	l := openLog(t, testConfig(t.TempDir()))
	e := event("189001019802", 0)
	e.What = "QIDO-RS " + strings.Repeat("å", 100_000)
	index, err := l.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append with a 200 kB resource name: %v", err)
	}
	d, err := tlog.OpenDetails(l.PersonKey(e.Person), leafAt(t, l, index))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.What) > 2048 || !strings.HasSuffix(d.What, "…") || !strings.HasPrefix(d.What, "QIDO-RS åå") {
		t.Errorf("sealed resource of %d bytes ending %q, want at most 2048 bytes ending in …", len(d.What), d.What[len(d.What)-8:])
	}
}
