package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/sqlstore"
)

// The node's index holds small objects for the archive.
var _ holdingIndex = (*sqlstore.DB)(nil)

// stalledMover is a FileBlobs whose WriteMany, the mover's way into the
// store, leaves the first object's file half written, as a crash in the
// middle of a move would, closes entered (the first time), waits until
// release is closed, and then fails with err, if set, or writes the
// objects.
type stalledMover struct {
	*FileBlobs
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	err     error
	calls   int
}

func newStalledMover(files *FileBlobs, err error) *stalledMover {
	return &stalledMover{FileBlobs: files, entered: make(chan struct{}), release: make(chan struct{}), err: err}
}

func (s *stalledMover) WriteMany(ctx context.Context, keys []string, data [][]byte) error {
	if p, err := s.path(keys[0]); err == nil {
		os.WriteFile(p, data[0][:len(data[0])/2], 0o600)
	}
	s.mu.Lock()
	if s.calls++; s.calls == 1 {
		close(s.entered)
	}
	s.mu.Unlock()
	<-s.release
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.FileBlobs.WriteMany(ctx, keys, data)
}

func (s *stalledMover) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *stalledMover) moves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// holdFixture is an index and a directory of blobs for an archive.
type holdFixture struct {
	db    *sqlstore.DB
	dir   string // of the blobs
	files *FileBlobs
}

// indexEngines are the databases an archive's index runs on: a SQLite
// file of the test's own, or a PostgreSQL database.
var indexEngines = []struct {
	name string
	dsn  func(t testing.TB, dir string) string
}{
	{"SQLite", func(t testing.TB, dir string) string { return filepath.Join(dir, "node.db") }},
	{"PostgreSQL", func(t testing.TB, dir string) string { return testenv.Postgres(t) }},
}

// newHoldFixture returns an index on SQLite and a directory of blobs.
func newHoldFixture(t testing.TB) *holdFixture {
	return newHoldFixtureOn(t, indexEngines[0].dsn)
}

// newHoldFixtureOn returns an index on the database dsn gives and a
// directory of blobs.
func newHoldFixtureOn(t testing.TB, dsn func(t testing.TB, dir string) string) *holdFixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlstore.Open(context.Background(), dsn(t, dir), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	files, err := OpenFileBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return &holdFixture{db: db, dir: files.Dir(), files: files}
}

// smallFiles returns n distinct mammograms small enough to be held.
func smallFiles(n int) [][]byte {
	files := make([][]byte, n)
	for i := range files {
		files[i] = archivetest.Mammogram(&archivetest.Image{Rows: 40, Columns: 32, Seed: uint64(i)})
	}
	return files
}

// storeAll stores files and returns their instances.
func storeAll(t *testing.T, a *Archive, files [][]byte) []bildrum.Instance {
	t.Helper()
	var out []bildrum.Instance
	for _, f := range files {
		in, err := a.Store(context.Background(), bytes.NewReader(f))
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		out = append(out, in)
	}
	return out
}

// heldKeys returns the keys of the objects the index holds.
func (f *holdFixture) heldKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	if err := f.db.HeldObjects(context.Background(), func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// checkInBlobStore checks that every instance's object is in the blob
// directory with exactly its file's bytes.
func (f *holdFixture) checkInBlobStore(t *testing.T, instances []bildrum.Instance, files [][]byte) {
	t.Helper()
	for i, in := range instances {
		got, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(in.Object.Key)))
		if err != nil || !bytes.Equal(got, files[i]) {
			t.Errorf("blob of instance %d: %d bytes, %v; want the %d stored", i, len(got), err, len(files[i]))
		}
	}
}

// checkReads checks that the archive returns every instance's bytes.
func checkReads(t *testing.T, a *Archive, instances []bildrum.Instance, files [][]byte) {
	t.Helper()
	for i, in := range instances {
		rc, err := a.Open(context.Background(), in)
		if err != nil {
			t.Errorf("Open(instance %d) = %v", i, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, files[i]) {
			t.Errorf("Open(instance %d) read %d bytes, %v; want the %d stored", i, len(got), err, len(files[i]))
		}
		h, _, c, err := a.Header(context.Background(), in)
		if err != nil || h.TransferSyntaxUID == "" {
			t.Errorf("Header(instance %d) = %v", i, err)
			continue
		}
		c.Close()
	}
}

// TestHeldObjectsMoved checks the life of small objects: acknowledged with
// their bytes held in the index, readable at once, even while a move has
// left one half written, and then moved into the blob store byte for byte
// and released from the index and from memory.
func TestHeldObjectsMoved(t *testing.T) {
	for _, e := range indexEngines {
		t.Run(e.name, func(t *testing.T) { testHeldObjectsMoved(t, e.dsn) })
	}
}

func testHeldObjectsMoved(t *testing.T, dsn func(testing.TB, string) string) {
	f := newHoldFixtureOn(t, dsn)
	stalled := newStalledMover(f.files, nil)
	a := New(f.db, stalled)
	files := smallFiles(12)
	instances := storeAll(t, a, files)

	if got := f.heldKeys(t); len(got) != len(files) {
		t.Errorf("the index holds %d objects after the stores, want %d: each small object's bytes are committed with its entry", len(got), len(files))
	}
	<-stalled.entered
	checkReads(t, a, instances, files)
	close(stalled.release)
	a.Wait()
	f.checkInBlobStore(t, instances, files)
	if got := f.heldKeys(t); len(got) != 0 {
		t.Errorf("the index holds %d objects after the move, want none", len(got))
	}
	if len(a.held) != 0 || a.heldBytes != 0 {
		t.Errorf("the archive keeps %d objects (%d bytes) in memory after the move, want none", len(a.held), a.heldBytes)
	}
	checkReads(t, a, instances, files)
	if n := stalled.moves(); n > 2 {
		t.Errorf("the mover synced %d times for %d objects stored in a row: it should move them together", n, len(files))
	}
}

// TestHeldObjectsSurviveCrash stops an archive while its mover has left a
// half-written object, as a kill would, and starts another on the same
// files: Recover moves every held object, the half-written one replaced,
// and releases them; when its move fails, it says so, and the objects stay
// held and readable.
func TestHeldObjectsSurviveCrash(t *testing.T) {
	for _, e := range indexEngines {
		t.Run(e.name, func(t *testing.T) { testHeldObjectsSurviveCrash(t, e.dsn) })
	}
}

func testHeldObjectsSurviveCrash(t *testing.T, dsn func(testing.TB, string) string) {
	f := newHoldFixtureOn(t, dsn)
	killed := newStalledMover(f.files, errors.New("killed"))
	crashed := New(f.db, killed)
	crashed.SetLogger(slog.New(slog.DiscardHandler))
	files := smallFiles(8)
	instances := storeAll(t, crashed, files)
	<-killed.entered
	defer func() {
		close(killed.release) // the crashed archive's move fails, as it never ended
		crashed.Wait()
	}()

	failing := newStalledMover(f.files, errors.New("no space left on device"))
	close(failing.release)
	restarted := New(f.db, failing)
	if moved, err := restarted.Recover(context.Background()); err == nil || !strings.Contains(err.Error(), "no space left") || moved != 0 {
		t.Errorf("Recover with a failing blob store = %d, %v; want 0 and its error", moved, err)
	}
	checkReads(t, restarted, instances, files)
	if got := f.heldKeys(t); len(got) != len(files) {
		t.Errorf("the index holds %d objects after a failed Recover, want all %d", len(got), len(files))
	}

	restarted = New(f.db, f.files)
	moved, err := restarted.Recover(context.Background())
	if err != nil || moved != len(files) {
		t.Fatalf("Recover = %d, %v; want %d moved", moved, err, len(files))
	}
	f.checkInBlobStore(t, instances, files)
	if got := f.heldKeys(t); len(got) != 0 {
		t.Errorf("the index holds %d objects after Recover, want none", len(got))
	}
	checkReads(t, restarted, instances, files)
	if removed, err := restarted.Sweep(context.Background(), 0); err != nil || removed != 0 {
		t.Errorf("Sweep after Recover = %d, %v; want nothing removed", removed, err)
	}
	if moved, err := restarted.Recover(context.Background()); err != nil || moved != 0 {
		t.Errorf("second Recover = %d, %v; want nothing left to move", moved, err)
	}
}

// TestHeldMoveFails checks that a move that fails keeps the objects held,
// readable and reported, and that the next store's move takes them too.
func TestHeldMoveFails(t *testing.T) {
	f := newHoldFixture(t)
	stalled := newStalledMover(f.files, errors.New("no space left on device"))
	close(stalled.release)
	a := New(f.db, stalled)
	var log testenv.LockedBuffer
	a.SetLogger(slog.New(slog.NewTextHandler(&log, nil)))
	files := smallFiles(6)
	instances := storeAll(t, a, files[:5])
	a.Wait()
	if got := f.heldKeys(t); len(got) != 5 {
		t.Errorf("the index holds %d objects after a failed move, want all 5", len(got))
	}
	if !strings.Contains(log.String(), "no space left on device") {
		t.Errorf("log after a failed move = %q, want the error", log.String())
	}
	checkReads(t, a, instances, files[:5])

	stalled.setErr(nil)
	instances = append(instances, storeAll(t, a, files[5:])...)
	a.Wait()
	f.checkInBlobStore(t, instances, files)
	if got := f.heldKeys(t); len(got) != 0 {
		t.Errorf("the index holds %d objects after the next move, want none", len(got))
	}
}

// TestHoldLimit checks that beyond its limit the archive writes small
// objects straight to the blob store, durably before acknowledging them.
func TestHoldLimit(t *testing.T) {
	f := newHoldFixture(t)
	stalled := newStalledMover(f.files, nil)
	a := New(f.db, stalled)
	files := smallFiles(5)
	a.holdLimit = len(files[0]) + len(files[1]) + len(files[2]) // their UIDs differ in length
	instances := storeAll(t, a, files)
	if got := f.heldKeys(t); len(got) != 3 {
		t.Errorf("the index holds %d objects, want 3: the limit holds 3", len(got))
	}
	f.checkInBlobStore(t, instances[3:], files[3:])
	close(stalled.release)
	a.Wait()
	f.checkInBlobStore(t, instances, files)
}

// TestHeldRefused checks that a refused instance's bytes are neither kept
// in memory nor moved into the blob store.
func TestHeldRefused(t *testing.T) {
	f := newHoldFixture(t)
	a := New(f.db, f.files)
	sop := archivetest.NewUID()
	first := archivetest.Mammogram(&archivetest.Image{Rows: 40, Columns: 32, SOPInstanceUID: sop, Seed: 1})
	changed := archivetest.Mammogram(&archivetest.Image{Rows: 40, Columns: 32, SOPInstanceUID: sop, Seed: 2})
	storeAll(t, a, [][]byte{first})
	in, err := a.Store(context.Background(), bytes.NewReader(changed))
	if bildrum.ErrorCode(err) != bildrum.ECONFLICT {
		t.Fatalf("Store(changed instance) = %v, want ECONFLICT", err)
	}
	a.Wait()
	if _, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(in.Object.Key))); !os.IsNotExist(err) {
		t.Errorf("the refused instance's object is in the blob store (%v), want it not written", err)
	}
	if len(a.held) != 0 || a.heldBytes != 0 || len(f.heldKeys(t)) != 0 {
		t.Errorf("after a refusal %d objects (%d bytes) are kept in memory and %d in the index, want none", len(a.held), a.heldBytes, len(f.heldKeys(t)))
	}
}
