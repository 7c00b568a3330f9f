package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bildrum/bildrum"
)

// TestWALSyncs checks that a sync returns only after an fsync that started
// after it was asked for, that one fsync serves all syncs asked before it
// started, and that a failed fsync fails every sync from then on.
func TestWALSyncs(t *testing.T) {
	s := &walSyncs{}
	started := make(chan int, 4)
	release := make(chan error)
	calls := 0
	fsync := func() error {
		calls++
		started <- calls
		return <-release
	}
	results := make(chan string, 4)
	call := func(name string) {
		go func() {
			err := s.sync(fsync)
			results <- name + ":" + errString(err)
		}()
	}
	call("a")
	if n := <-started; n != 1 {
		t.Fatalf("fsync %d started, want 1", n)
	}
	// b and c ask while fsync 1 runs: it cannot serve them.
	call("b")
	call("c")
	waitAsked(s, 3)
	release <- nil
	if got := <-results; got != "a:" {
		t.Fatalf("after fsync 1: %s returned, want a", got)
	}
	if n := <-started; n != 2 {
		t.Fatalf("fsync %d started, want 2", n)
	}
	select {
	case got := <-results:
		t.Fatalf("%s returned before the fsync that serves it", got)
	default:
	}
	release <- nil
	got := []string{<-results, <-results}
	if !(got[0] == "b:" && got[1] == "c:" || got[0] == "c:" && got[1] == "b:") {
		t.Errorf("after fsync 2: %v returned, want b and c", got)
	}
	// A failed fsync fails its syncs and every later one.
	call("d")
	<-started
	release <- errors.New("input/output error")
	if got := <-results; got != "d:sync the index's WAL: input/output error" {
		t.Errorf("after a failed fsync: %s", got)
	}
	if err := s.sync(func() error { return nil }); err == nil {
		t.Errorf("a sync after a failed fsync succeeded")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitAsked returns when n syncs have been asked for.
func waitAsked(s *walSyncs, n uint64) {
	for {
		s.mu.Lock()
		asked := s.asked
		s.mu.Unlock()
		if asked >= n {
			return
		}
		runtime.Gosched()
	}
}

// TestIndexWriterConnection checks that the connection the archive's
// commits run on (synchronous=NORMAL) never serves anyone else, however
// it ends: every connection of the pool stays synchronous=FULL.
func TestIndexWriterConnection(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "node.db"), PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := bildrum.Instance{
		Study:          bildrum.Study{Patient: bildrum.Patient{ID: "195001182046"}, StudyInstanceUID: "2.25.1"},
		Series:         bildrum.Series{SeriesInstanceUID: "2.25.2", Modality: "MG"},
		SOPInstanceUID: "2.25.3",
		Object:         bildrum.Object{Key: "sha256/aa/a", SHA256: "a", Size: 1},
	}
	_, sync, err := d.PutInstancesGated(ctx, []bildrum.Instance{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sync(); err != nil {
		t.Fatal(err)
	}
	var mode int
	if err := d.writer.conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil || mode != 1 {
		t.Errorf("the writer's synchronous = %d, %v; want 1 (NORMAL)", mode, err)
	}
	// A failure that is not the gate's discards the writer's connection.
	bad := in
	bad.SOPInstanceUID = "2.25.4"
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := d.PutInstancesGated(cancelled, []bildrum.Instance{bad}, nil); err == nil {
		t.Fatal("PutInstancesGated with a cancelled context succeeded")
	}
	checkPoolFull(t, d)
	d.writer.close()
	checkPoolFull(t, d)
}

// checkPoolFull takes several connections of the pool at once and checks
// that each has synchronous=FULL.
func checkPoolFull(t *testing.T, d *DB) {
	t.Helper()
	ctx := context.Background()
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 4 {
		c, err := d.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode int
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil || mode != 2 {
			t.Errorf("a connection of the pool has synchronous = %d, %v; want 2 (FULL)", mode, err)
		}
	}
}

// TestIndexWriterNewWAL checks that when SQLite has removed the WAL (its
// last connection, the writer's, closed) the writer syncs the new one, not
// the file it had open.
func TestIndexWriterNewWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	d, err := Open(ctx, path, PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.db.SetMaxIdleConns(0) // the writer's connection is the only one
	put := func(ctx context.Context, n string) error {
		in := bildrum.Instance{
			Study:          bildrum.Study{Patient: bildrum.Patient{ID: "195001182046"}, StudyInstanceUID: "2.25.1" + n},
			Series:         bildrum.Series{SeriesInstanceUID: "2.25.2" + n, Modality: "MG"},
			SOPInstanceUID: "2.25.3" + n,
			Object:         bildrum.Object{Key: "sha256/aa/" + n, SHA256: n, Size: 1},
		}
		_, sync, err := d.PutInstancesGated(ctx, []bildrum.Instance{in}, nil)
		if err != nil {
			return err
		}
		return sync()
	}
	if err := put(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	before := d.writer.wal
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := put(cancelled, "2"); err == nil {
		t.Fatal("PutInstancesGated with a cancelled context succeeded")
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the WAL is still there after the writer's connection, the last one, closed: the test no longer replaces the WAL, so it would check nothing")
	}
	if err := put(ctx, "3"); err != nil {
		t.Fatal(err)
	}
	now, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if d.writer.wal == before || !sameFile(d.writer.wal, now) {
		t.Errorf("the writer syncs a WAL that is not the database's")
	}
}
