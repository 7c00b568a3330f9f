package tlog_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/tlog"
)

func TestFileIndex(t *testing.T) {
	path := t.TempDir() + "/persons.idx"
	x, err := tlog.OpenFileIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tlog.PersonTag{1}, tlog.PersonTag{2}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tag := a
			if i%2 == 1 {
				tag = b
			}
			if err := x.Add(context.Background(), []tlog.IndexEntry{{Tag: tag, Index: uint64(199 - i)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := x.Add(context.Background(), []tlog.IndexEntry{{Tag: a, Index: 1}}); err != nil { // again: harmless
		t.Fatal(err)
	}
	check := func(x *tlog.FileIndex, what string) {
		t.Helper()
		got, err := x.Indices(context.Background(), a)
		if err != nil || len(got) != 100 || !slices.IsSorted(got) || got[0] != 1 {
			t.Errorf("%s: Indices(a) = %v…, %v; want 100 odd indices, ascending", what, got[:min(5, len(got))], err)
		}
		if got, _ := x.Indices(context.Background(), tlog.PersonTag{3}); len(got) != 0 {
			t.Errorf("%s: Indices of an unknown tag = %v, want none", what, got)
		}
	}
	check(x, "open")
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(context.Background(), []tlog.IndexEntry{{Tag: a, Index: 1000}}); err == nil {
		t.Error("Add after Close succeeded")
	}

	// A record torn by a crash is dropped, and appends stay aligned.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{9, 9, 9, 9, 9})
	f.Close()
	x, err = tlog.OpenFileIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	check(x, "reopened after a torn write")
	if err := x.Add(context.Background(), []tlog.IndexEntry{{Tag: b, Index: 5000}}); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x, err = tlog.OpenFileIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got, _ := x.Indices(context.Background(), b); !slices.Contains(got, 5000) || len(got) != 101 {
		t.Errorf("Indices(b) after repair and append = %d indices, want 101 with 5000", len(got))
	}

	if err := os.WriteFile(path, []byte("something else"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.OpenFileIndex(path); err == nil {
		t.Error("OpenFileIndex of another file succeeded")
	}
}

// failingIndex fails its first Adds, like a full disk that recovers.
type failingIndex struct {
	mu    sync.Mutex
	fails int
	m     map[tlog.PersonTag][]uint64
}

func (f *failingIndex) Add(ctx context.Context, entries []tlog.IndexEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("disk full")
	}
	for _, e := range entries {
		if !slices.Contains(f.m[e.Tag], e.Index) {
			f.m[e.Tag] = append(f.m[e.Tag], e.Index)
			slices.Sort(f.m[e.Tag])
		}
	}
	return nil
}

func (f *failingIndex) Indices(ctx context.Context, tag tlog.PersonTag) ([]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.m[tag]), nil
}

// TestIndexFailedButPersisted: when the index fails after the leaf was
// sequenced, RecordAccess fails (the data are not served), the leaf stays
// in the log, and the index gets it once it works again.
func TestIndexFailedButPersisted(t *testing.T) {
	cfg := testConfig(t.TempDir())
	idx := &failingIndex{fails: 1, m: map[tlog.PersonTag][]uint64{}}
	cfg.Index, cfg.IndexFile = idx, ""
	l := openLog(t, cfg)
	person := testPersons(t, 1)[0]

	err := l.RecordAccess(context.Background(), event(person, 0))
	if err == nil || bildrum.ErrorCode(err) != bildrum.EINTERNAL {
		t.Fatalf("RecordAccess with a failing index = %v, want an internal error", err)
	}
	found, err := l.FindLeaves(context.Background(), l.PersonKey(person), 0)
	if err != nil || !slices.Equal(found, []uint64{0}) {
		t.Fatalf("FindLeaves = %v, %v; want the leaf that failed to index, 0", found, err)
	}
	got, err := l.PersonIndices(context.Background(), person)
	if err != nil || !slices.Equal(got, []uint64{0}) {
		t.Fatalf("PersonIndices after the index recovered = %v, %v; want [0]", got, err)
	}
	if err := l.RecordAccess(context.Background(), event(person, 1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.PersonIndices(context.Background(), person); !slices.Equal(got, []uint64{0, 1}) {
		t.Fatalf("PersonIndices = %v, want [0 1]", got)
	}
}
