package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bildrum/bildrum"
)

// Held objects.
//
// An instance is acknowledged when its bytes and its index entry are both
// durable, the bytes first. Written to the blob store, a small object's
// bytes need a sync of their own before the index's: two waits for the disk
// in a row for every request, where indexing alone needs one. So where the
// index can hold bytes (holdingIndex), a small object's bytes go into the
// transaction that indexes it (bildrum.Object.Data), and one sync makes
// both durable. The archive keeps the bytes in memory meanwhile and moves
// them into the blob store afterwards, many objects at a time (manyWriter:
// one sync for them all); only once they are durable there does it have
// the index release them. Until then reads of the object are served from
// memory. A crash leaves held bytes in the index, which Recover moves when
// the node starts again.
//
// At most holdLimit bytes are held at a time: beyond, small objects are
// written to the blob store as before (objectWriter), so that a blob store
// slower than the stores leaves a bounded backlog, in memory and for
// Recover, and store throughput is what the blob store sustains.

// holdingIndex is an index that keeps the bytes of objects given with
// their instances (bildrum.Object.Data) until they are released.
// HeldObjects calls fn with every object held; ReleaseHeldObjects forgets
// the objects of keys, which need not be durable at once.
type holdingIndex interface {
	HeldObjects(ctx context.Context, fn func(key string, data []byte) error) error
	ReleaseHeldObjects(ctx context.Context, keys []string) error
}

// manyWriter is a BlobStore that makes many objects durable from memory
// together, more cheaply than one by one (FileBlobs.WriteMany). When
// WriteMany returns nil, every object is durable under its key; when it
// fails, some may be incomplete under theirs.
type manyWriter interface {
	WriteMany(ctx context.Context, keys []string, data [][]byte) error
}

var _ manyWriter = (*FileBlobs)(nil)

const (
	holdLimit = 64 << 20               // bytes held at most (Archive.holdLimit, which tests lower)
	moveBatch = 256                    // objects moved at most with one sync
	moveDelay = 100 * time.Millisecond // the mover's wait for more objects to move with one sync
)

// heldObject is an object whose bytes the index holds, or will when its
// round commits; guarded by Archive.mu.
type heldObject struct {
	data      []byte
	holders   int  // instances added with it whose round has not ended
	committed bool // a round has, or may have, committed it: to be moved
	moving    bool // the mover is moving it now
}

// hold returns the bytes under key held in memory for the index to hold,
// adding data when they are not yet, or nil when the index cannot hold
// bytes, holdLimit bytes are held already, or the blob store is not a
// manyWriter. The instance that gets them must be given to unhold once its
// round has ended.
//
// Only a manyWriter store holds: a local file system, where moving many
// objects costs one sync, the gain of holding, and fails as the index on
// the same kind of disk would. Object storage is another service, which
// may be down: a small object is acknowledged there only once the service
// has it, as a large one is.
func (a *Archive) hold(key string, data []byte) []byte {
	if _, ok := a.index.(holdingIndex); !ok {
		return nil
	}
	if _, ok := a.blobs.(manyWriter); !ok {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.held[key]
	if h == nil {
		if a.heldBytes+len(data) > a.holdLimit {
			return nil
		}
		h = &heldObject{data: bytes.Clone(data)}
		a.held[key] = h
		a.heldBytes += len(data)
	}
	h.holders++
	return h.data
}

// unhold ends the hold of the instances whose objects hold gave, once
// their round has ended: refused says whether the index refused each one,
// and so holds nothing for it. The others may be committed, and are
// moved into the blob store; a move of bytes whose transaction failed
// after all leaves an object no index entry refers to, which Sweep
// removes.
func (a *Archive) unhold(instances []bildrum.Instance, refused func(i int) bool) {
	start := false
	a.mu.Lock()
	for i, in := range instances {
		if in.Object.Data == nil {
			continue
		}
		h := a.held[in.Object.Key]
		h.holders--
		if !refused(i) {
			h.committed = true
			a.heldCommits++
			start = true
		}
		a.dropIfDone(in.Object.Key, h)
	}
	if start && !a.moving {
		a.moving = true
		a.pending.Add(1)
	} else {
		start = false
	}
	a.mu.Unlock()
	if start {
		go a.moveHeld()
	}
}

// dropIfDone forgets h, held under key, when nothing is to be done with it
// any more; a.mu is held.
func (a *Archive) dropIfDone(key string, h *heldObject) {
	if h.holders == 0 && !h.committed && !h.moving {
		delete(a.held, key)
		a.heldBytes -= len(h.data)
	}
}

// moveHeld is the mover: it moves committed held objects into the blob
// store until none is left, waiting moveDelay before a batch that the last
// did not fill, so that one sync serves many, unless Wait has asked it to
// hurry. A failed move leaves the
// objects held, in memory and in the index, to be moved after the next
// commit or by Recover.
func (a *Archive) moveHeld() {
	defer a.pending.Done()
	ctx := context.Background()
	hurried := false
	for n := 0; ; {
		if n < moveBatch && !hurried {
			select {
			case <-time.After(moveDelay):
			case <-a.hurry:
				hurried = true
			}
		}
		a.mu.Lock()
		commits := a.heldCommits
		a.mu.Unlock()
		var err error
		n, err = a.moveOnce(ctx)
		if err != nil {
			a.log.Error("archive: moving held objects into the blob store failed; the index keeps them, and they are moved after the next store or at the next start", "err", err)
		}
		a.mu.Lock()
		if err != nil || n == 0 && a.heldCommits == commits {
			a.moving = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
	}
}

// moveOnce moves up to moveBatch committed held objects into the blob
// store, durably, and then releases them in the index. It returns how many
// it moved.
func (a *Archive) moveOnce(ctx context.Context) (int, error) {
	var keys []string
	var data [][]byte
	a.mu.Lock()
	for key, h := range a.held {
		if len(keys) == moveBatch {
			break
		}
		if h.committed && !h.moving {
			h.moving = true
			keys = append(keys, key)
			data = append(data, h.data)
		}
	}
	a.mu.Unlock()
	if len(keys) == 0 {
		return 0, nil
	}
	err := a.putMany(ctx, keys, data)
	if err == nil {
		err = a.index.(holdingIndex).ReleaseHeldObjects(ctx, keys)
	}
	a.mu.Lock()
	for _, key := range keys {
		h := a.held[key]
		h.moving = false
		if err == nil {
			h.committed = false
			a.dropIfDone(key, h)
		}
	}
	a.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("move %d held objects into the blob store: %w", len(keys), err)
	}
	return len(keys), nil
}

// putMany makes objects durable in the blob store: together where it can,
// one by one where not.
func (a *Archive) putMany(ctx context.Context, keys []string, data [][]byte) error {
	if w, ok := a.blobs.(manyWriter); ok {
		return w.WriteMany(ctx, keys, data)
	}
	for i, key := range keys {
		sync, err := a.write(ctx, key, data[i])
		if err != nil {
			return err
		}
		if err := sync.wait(); err != nil {
			return err
		}
	}
	return nil
}

// Recover moves into the blob store the objects that the index still
// holds, which a crash (or a failed move) left there, and returns how
// many it moved. A node calls it when it starts, before it serves and
// before Sweep: until then the blob store may lack those objects, or have
// them incomplete, as a crash in the middle of a move leaves them. When
// it fails, the objects it read stay held, in memory and in the index.
func (a *Archive) Recover(ctx context.Context) (int, error) {
	hi, ok := a.index.(holdingIndex)
	if !ok {
		return 0, nil
	}
	err := hi.HeldObjects(ctx, func(key string, data []byte) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.held[key] == nil {
			a.held[key] = &heldObject{data: data}
			a.heldBytes += len(data)
		}
		a.held[key].committed = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover held objects: %w", err)
	}
	moved := 0
	for {
		n, err := a.moveOnce(ctx)
		moved += n
		if err != nil {
			return moved, fmt.Errorf("recover held objects: %w", err)
		}
		if n == 0 {
			return moved, nil
		}
	}
}

// openHeld returns a reader of the object under key when it is held in
// memory.
func (a *Archive) openHeld(key string) (io.ReadCloser, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.held[key]
	if h == nil {
		return nil, false
	}
	return heldReader{bytes.NewReader(h.data)}, true
}

// heldReader reads a held object; its ReadAt serves Header.
type heldReader struct{ *bytes.Reader }

func (heldReader) Close() error { return nil }
