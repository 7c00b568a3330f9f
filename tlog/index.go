package tlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/bildrum/bildrum/internal/keyfile"
)

// PersonTag is the key of a person in a PersonIndex: PersonTagOf her person
// key. It is derived with the hub's secret, so the index holds no
// personnummer and cannot be searched for one without that secret.
type PersonTag [32]byte

// String returns the tag in hex.
func (t PersonTag) String() string { return hex.EncodeToString(t[:]) }

// PersonIndex maps persons to the indices of their leaves, so that the hub
// finds a woman's events without scanning the log. The hub's SQL store may
// implement it; FileIndex is the default.
//
// Add records, for each entry, that the leaf at its index is its person's.
// It is durable when it returns nil; adding a pair again is harmless. Indices returns the
// person's leaf indices in ascending order, none (and no error) for a person
// without leaves. Implementations are safe for concurrent use.
//
// The log calls Add after the leaf is durably sequenced. When Add fails the
// leaf is in the log but not yet indexed: the log retries it with the next
// Add and at Close, and Log.FindLeaves finds such a leaf by scanning.
type PersonIndex interface {
	Add(ctx context.Context, entries []IndexEntry) error
	Indices(ctx context.Context, tag PersonTag) ([]uint64, error)
}

// IndexEntry is one pair of a PersonIndex: the leaf at Index is about the
// person whose tag is Tag.
type IndexEntry struct {
	Tag   PersonTag
	Index uint64
}

// indexMagic starts a FileIndex file; records follow.
const indexMagic = "bildrum tlog person index v1\n"

// indexRecord is the size of one record: tag, then the index big-endian.
const indexRecord = 32 + 8

// FileIndex is a PersonIndex in an append-only file of fixed-size records,
// held in memory for lookups. Concurrent Adds share one write and one fsync
// (group commit). A record torn by a crash is dropped at open: its leaf is
// then found by Log.FindLeaves.
type FileIndex struct {
	path string

	mu       sync.Mutex // guards everything below
	f        *os.File
	m        map[PersonTag][]uint64
	pending  []byte       // records not yet written
	waiters  []chan error // one per pending Add
	flushing bool         // a goroutine is writing; it takes pending when done
	idle     *sync.Cond   // signalled when flushing ends
	closed   bool
}

// OpenFileIndex opens the index file at path, creating it (mode 0600)
// when missing.
func OpenFileIndex(path string) (*FileIndex, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tlog: person index: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tlog: person index: %w", err)
	}
	x := &FileIndex{path: path, f: f, m: map[PersonTag][]uint64{}}
	x.idle = sync.NewCond(&x.mu)
	if err := x.load(); err != nil {
		f.Close()
		return nil, err
	}
	return x, nil
}

func (x *FileIndex) load() error {
	b, err := io.ReadAll(x.f)
	if err != nil {
		return fmt.Errorf("tlog: read person index %s: %w", x.path, err)
	}
	if len(b) == 0 {
		if _, err := x.f.Write([]byte(indexMagic)); err != nil {
			return fmt.Errorf("tlog: write person index %s: %w", x.path, err)
		}
		if err := x.f.Sync(); err != nil {
			return fmt.Errorf("tlog: sync person index %s: %w", x.path, err)
		}
		return keyfile.SyncDir(filepath.Dir(x.path))
	}
	if !bytes.HasPrefix(b, []byte(indexMagic)) {
		return fmt.Errorf("tlog: %s is not a person index (it does not start with %q)", x.path, indexMagic)
	}
	recs := b[len(indexMagic):]
	whole := len(recs) - len(recs)%indexRecord
	for i := 0; i < whole; i += indexRecord {
		x.insert(PersonTag(recs[i:i+32]), binary.BigEndian.Uint64(recs[i+32:i+indexRecord]))
	}
	if whole != len(recs) {
		// A torn record from a crash: drop it, so that appends stay aligned.
		if err := x.f.Truncate(int64(len(indexMagic) + whole)); err != nil {
			return fmt.Errorf("tlog: repair person index %s: %w", x.path, err)
		}
	}
	_, err = x.f.Seek(0, io.SeekEnd)
	return err
}

// insert adds index to the tag's sorted list, once. x.mu is held (or x is
// not shared yet).
func (x *FileIndex) insert(tag PersonTag, index uint64) bool {
	l := x.m[tag]
	i, found := slices.BinarySearch(l, index)
	if found {
		return false
	}
	x.m[tag] = slices.Insert(l, i, index)
	return true
}

// Add implements PersonIndex.
func (x *FileIndex) Add(ctx context.Context, entries []IndexEntry) error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return fmt.Errorf("tlog: person index %s is closed", x.path)
	}
	added := false
	for _, e := range entries {
		if l := x.m[e.Tag]; len(l) > 0 {
			if _, found := slices.BinarySearch(l, e.Index); found {
				continue
			}
		}
		var rec [indexRecord]byte
		copy(rec[:32], e.Tag[:])
		binary.BigEndian.PutUint64(rec[32:], e.Index)
		x.pending = append(x.pending, rec[:]...)
		added = true
	}
	if !added {
		x.mu.Unlock()
		return nil
	}
	done := make(chan error, 1)
	x.waiters = append(x.waiters, done)
	if !x.flushing {
		x.flushing = true
		go x.flush()
	}
	x.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("tlog: person index: %w", ctx.Err())
	}
}

// flush writes pending records until there are none, one write and one
// fsync for all the records that arrived meanwhile.
func (x *FileIndex) flush() {
	x.mu.Lock()
	for len(x.pending) > 0 {
		recs, waiters := x.pending, x.waiters
		x.pending, x.waiters = nil, nil
		x.mu.Unlock()
		_, err := x.f.Write(recs)
		if err == nil {
			err = x.f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("tlog: write person index %s: %w", x.path, err)
		}
		x.mu.Lock()
		if err == nil {
			for i := 0; i < len(recs); i += indexRecord {
				x.insert(PersonTag(recs[i:i+32]), binary.BigEndian.Uint64(recs[i+32:i+indexRecord]))
			}
		}
		for _, w := range waiters {
			w <- err
		}
	}
	x.flushing = false
	x.idle.Broadcast()
	x.mu.Unlock()
}

// Indices implements PersonIndex.
func (x *FileIndex) Indices(ctx context.Context, tag PersonTag) ([]uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.m[tag]), nil
}

// Close closes the file after the writes under way; Adds after Close fail.
func (x *FileIndex) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	for x.flushing {
		x.idle.Wait()
	}
	return x.f.Close()
}
