// Package archive is a node's DICOM archive: an index of patients, studies,
// series and instances in the node's SQL store (bildrum.ImageIndex), and the
// instances themselves, byte for byte as received, in a blob store under
// content-addressed keys. It holds the logic of STOW-RS, QIDO-RS and WADO-RS
// (PS3.18) free of HTTP: receiving and checking PS3.10 files, searching,
// cutting frames, rendering, and the DICOM JSON model (PS3.18 Annex F);
// package dicomweb serves it over HTTP.
//
// # Durability
//
// An instance is acknowledged only when both its bytes and its index entry
// are durable: the bytes are made durable under their final,
// content-addressed key (sha256/xx/<hex>) first, and the index entry is
// committed after. A large instance is received into a spool file that is
// then ingested under its key (see FileBlobs.Ingest); a small one is
// written from memory straight to its key, and its sync runs while the
// index statements do, the transaction committing only when it has finished
// (see FileBlobs.Write and commit.go). A crash between the two leaves an
// object no index entry refers to, which is harmless and which Sweep
// removes; it never leaves an index entry without its bytes.
//
// Where the index can hold bytes and the blob store is a local directory,
// a small instance's bytes go instead into the very transaction that
// indexes it, so that one sync makes both durable, and are moved into the
// blob store afterwards, many with one sync; Recover moves those a crash
// left behind (see hold.go).
//
// The index entries of concurrent store requests are committed together,
// in one transaction and so one sync (group commit, see Batch.Commit):
// store throughput with many clients is then bound by the disk's bandwidth
// and the CPU rather than by the number of syncs a second.
package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Archive is a node's DICOM archive. It is safe for concurrent use.
type Archive struct {
	index    bildrum.ImageIndex
	blobs    BlobStore
	now      func() time.Time
	gdcmconv string // decoder of compressed pixel data for rendering; "" for none

	log *slog.Logger

	// mu guards pins: the object keys of instances received but not yet
	// indexed, which Sweep must not remove; and the objects held in the
	// index and in memory until they are moved into the blob store (see
	// hold.go): held, their bytes in heldBytes, heldCommits counting the
	// commits of held objects, and whether the mover runs.
	mu          sync.Mutex
	pins        map[string]int
	held        map[string]*heldObject
	heldBytes   int
	holdLimit   int
	heldCommits uint64
	moving      bool
	hurry       chan struct{} // Wait's request to the mover to move at once

	bufs chan []byte // receive buffers kept for reuse

	// commitMu guards queue, the batches waiting for the committer (see
	// commit.go), and committing, whether a committer runs.
	commitMu   sync.Mutex
	queue      []*commit
	committing bool
	pending    sync.WaitGroup // batches queued and not yet through their round
}

// New returns an archive on an index and a blob store.
func New(index bildrum.ImageIndex, blobs BlobStore) *Archive {
	return &Archive{index: index, blobs: blobs, now: time.Now, log: slog.Default(), pins: map[string]int{}, held: map[string]*heldObject{}, holdLimit: holdLimit, hurry: make(chan struct{}, 1), bufs: make(chan []byte, copyBuffers)}
}

// SetLogger sets where the archive reports errors of its background work.
func (a *Archive) SetLogger(log *slog.Logger) { a.log = log }

// SetClock replaces the clock that stamps received instances; for tests.
func (a *Archive) SetClock(now func() time.Time) { a.now = now }

// Index returns the archive's image index.
func (a *Archive) Index() bildrum.ImageIndex { return a.index }

// Blobs returns the archive's blob store.
func (a *Archive) Blobs() BlobStore { return a.blobs }

func (a *Archive) pin(key string) {
	a.mu.Lock()
	a.pins[key]++
	a.mu.Unlock()
}

func (a *Archive) unpin(key string) {
	a.mu.Lock()
	if a.pins[key]--; a.pins[key] <= 0 {
		delete(a.pins, key)
	}
	a.mu.Unlock()
}

// Batch receives the instances of one store request: Add writes each
// instance's bytes, Commit indexes them together once the bytes are
// durable, which is when they are stored. Close releases what was not
// committed. A Batch is used by one goroutine; many batches may be used at
// once.
type Batch struct {
	// Study, when set, is the only study the batch accepts: Add refuses
	// instances of others with ErrStudyMismatch (PS3.18 §10.5.1).
	Study string

	a         *Archive
	instances []bildrum.Instance
	syncs     []*objectSync // per instance: its object's sync under way, or nil when durable
}

// objectSync is the sync of an object written by objectWriter.Write, run
// in a goroutine of its own from the moment the object is written.
type objectSync struct {
	done chan struct{}
	err  error // once done is closed
}

// startSync runs sync in a new goroutine.
func startSync(sync func() error) *objectSync {
	s := &objectSync{done: make(chan struct{})}
	go func() {
		s.err = sync()
		close(s.done)
	}()
	return s
}

// wait returns when the object is durable, or its sync failed.
func (s *objectSync) wait() error {
	if s == nil {
		return nil
	}
	<-s.done
	return s.err
}

// Errors of Batch.Add that are not domain errors.
var (
	// ErrReceive wraps errors of reading the instance from its reader.
	ErrReceive = errors.New("receive")
	// ErrStudyMismatch is returned for an instance of another study than
	// the batch's.
	ErrStudyMismatch = errors.New("study mismatch")
)

// NewBatch starts receiving instances.
func (a *Archive) NewBatch() *Batch { return &Batch{a: a} }

// Receive buffers. Readers such as a multipart part return a few KB a
// read; gathering them into large buffers before hashing and writing
// keeps the writes to the spool file few (one per copyBuffer bytes). An
// object that fits in one buffer is not spooled at all: it
// is checked and stored from the buffer (see Batch.Add).
const (
	copyBuffer  = 256 << 10 // bytes per buffer
	copyBuffers = 16        // buffers kept for reuse
)

// buffer returns a receive buffer, a kept one where there is one: unlike a
// sync.Pool's, kept buffers survive garbage collections, so that small
// objects received at a high rate allocate (and clear) none. A kept
// buffer holds the bytes of an earlier object: only the part of it filled
// by the current one is ever read.
func (a *Archive) buffer() []byte {
	select {
	case b := <-a.bufs:
		return b
	default:
		return make([]byte, copyBuffer)
	}
}

// release keeps b for reuse, unless enough are kept.
func (a *Archive) release(b []byte) {
	select {
	case a.bufs <- b:
	default:
	}
}

// fill reads from r into buf until buf is full or r ends, and returns the
// bytes read and whether r ended (io.EOF). Not io.ReadFull, which would
// hide an io.ErrUnexpectedEOF of r (a truncated body) as a short read:
// errors of r come back wrapped in ErrReceive.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		switch err {
		case nil:
		case io.EOF:
			return n, true, nil
		default:
			return n, false, fmt.Errorf("%w: %w", ErrReceive, err)
		}
	}
	return n, false, nil
}

// receive copies r to its end into w and h through buf, each write as
// large as buf. It returns the bytes copied and an error of r wrapped in
// ErrReceive, or an error of w.
func receive(w io.Writer, h hash.Hash, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, eof, err := fill(r, buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := w.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("receive: %w", err)
			}
			n += int64(m)
		}
		if err != nil || eof {
			return n, err
		}
	}
}

// Add reads one DICOM PS3.10 file from r to its end, checks it, and writes
// its bytes; they are durable before Commit indexes them. It returns the
// instance as it will be indexed. Errors are EINVALID for a file that is
// not well-formed DICOM or lacks a UID the archive needs, ECONFLICT for a
// SOP Instance UID stored before with other bytes (for a file larger than a
// receive buffer; a smaller one is refused by Commit), ErrStudyMismatch for
// another study than the batch's, and errors of r (such as a body over its
// size limit) wrapped in ErrReceive. Nothing of a failed Add is kept but,
// at worst, an unreferenced object.
//
// A file smaller than a receive buffer is read into memory, checked there,
// and written once, straight to its object (objectWriter), without a spool
// file: for small instances the spool file's creation, link and removal
// cost more than the rest of storing them. Its sync starts at once and runs
// while the request goes on and its index entry is prepared; the entry is
// committed only when the sync has finished (see commit.go). Nor is the
// index asked first whether the instance is stored already: the commit
// finds a repeated instance (idempotent) or a conflicting one anyway, and
// for a small file the question costs more than writing it again. A larger
// file is spooled as it arrives, asked about, and then ingested, durably,
// before Add returns.
func (b *Batch) Add(ctx context.Context, r io.Reader) (bildrum.Instance, error) {
	a := b.a
	buf := a.buffer()
	defer func() { a.release(buf) }()
	n, eof, err := fill(r, buf)
	if err != nil {
		return bildrum.Instance{}, err
	}
	if eof {
		data := buf[:n]
		sum := sha256.Sum256(data)
		return b.add(ctx, bytesReaderAt(data), int64(n), hex.EncodeToString(sum[:]), false, func(obj *bildrum.Object) (*objectSync, error) {
			if held := a.hold(obj.Key, data); held != nil {
				obj.Data = held // durable with its index entry, see hold.go
				return nil, nil
			}
			return a.write(ctx, obj.Key, data)
		})
	}

	f, err := a.blobs.Spool()
	if err != nil {
		return bildrum.Instance{}, fmt.Errorf("receive: %w", err)
	}
	ingested := false
	defer func() {
		if !ingested {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	h.Write(buf[:n])
	if _, err := f.Write(buf[:n]); err != nil {
		return bildrum.Instance{}, fmt.Errorf("receive: %w", err)
	}
	rest, err := receive(f, h, r, buf)
	if err != nil {
		return bildrum.Instance{}, err
	}
	return b.add(ctx, f, int64(n)+rest, hex.EncodeToString(h.Sum(nil)), true, func(obj *bildrum.Object) (*objectSync, error) {
		ingested = true
		return nil, a.blobs.Ingest(ctx, obj.Key, f)
	})
}

// add checks the file of size bytes in file, with the hex SHA-256 sum, and
// calls store to write its bytes under their key (obj.Key), or to have
// the index hold them (obj.Data), unless lookup is set and the index holds
// the instance already; see Add. store returns the sync that makes them
// durable, or nil when they are, or will be with the index entry.
func (b *Batch) add(ctx context.Context, file io.ReaderAt, size int64, sum string, lookup bool, store func(obj *bildrum.Object) (*objectSync, error)) (bildrum.Instance, error) {
	a := b.a
	hdr, err := ReadHeader(file, size)
	if err != nil {
		return bildrum.Instance{}, bildrum.Errorf(bildrum.EINVALID, "%v", err)
	}
	inst, err := hdr.Instance()
	if err != nil {
		return inst, err
	}
	if b.Study != "" && inst.Study.StudyInstanceUID != b.Study {
		return inst, fmt.Errorf("%w: the instance belongs to study %s, not to study %s of the request", ErrStudyMismatch, inst.Study.StudyInstanceUID, b.Study)
	}
	inst.Object = bildrum.Object{Key: ObjectKey(sum), Size: size, SHA256: sum, Received: a.now().UTC()}

	// An instance stored before needs no second copy of its bytes, and
	// one stored with other bytes will be refused: keep neither.
	prev, err := bildrum.Instance{}, bildrum.Errorf(bildrum.ENOTFOUND, "not asked")
	if lookup {
		prev, err = a.index.Instance(ctx, inst.SOPInstanceUID)
	}
	switch {
	case err == nil && prev.Object.SHA256 == sum:
		inst.Object = prev.Object
		a.pin(inst.Object.Key) // as every instance of the batch, for Close and the committer to unpin
		b.instances = append(b.instances, inst)
		b.syncs = append(b.syncs, nil)
		return inst, nil
	case err == nil:
		return inst, bildrum.Errorf(bildrum.ECONFLICT, "SOP Instance %s is already stored with other content: a changed instance needs a new SOP Instance UID", inst.SOPInstanceUID)
	case bildrum.ErrorCode(err) != bildrum.ENOTFOUND:
		return inst, err
	}

	a.pin(inst.Object.Key)
	sync, err := store(&inst.Object)
	if err != nil {
		a.unpin(inst.Object.Key)
		return inst, err
	}
	b.instances = append(b.instances, inst)
	b.syncs = append(b.syncs, sync)
	return inst, nil
}

// write writes data under key and starts making it durable, where the blob
// store takes objects from memory; where not, it makes data durable
// through a spool file before it returns (and returns a nil sync).
func (a *Archive) write(ctx context.Context, key string, data []byte) (*objectSync, error) {
	if w, ok := a.blobs.(objectWriter); ok {
		sync, err := w.Write(ctx, key, data)
		if err != nil {
			return nil, err
		}
		return startSync(sync), nil
	}
	f, err := a.blobs.Spool()
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("receive: %w", err)
	}
	return nil, a.blobs.Ingest(ctx, key, f)
}

// Commit indexes the instances added and returns one error per instance in
// the order added: nil for an instance now stored, durably. See
// bildrum.ImageIndex for the errors. The instances are indexed in one
// transaction together with those of other batches committing at the same
// time (group commit); a failure of another batch fails none of these.
// When Commit returns an error, no instance was stored, except when ctx
// ended first: then Commit returns ctx's error and the instances may yet be
// stored, which a repeated store finds idempotent.
func (b *Batch) Commit(ctx context.Context) ([]error, error) {
	defer b.Close()
	if len(b.instances) == 0 {
		return nil, nil
	}
	instances, syncs := b.instances, b.syncs
	b.instances, b.syncs = nil, nil // the committer unpins them
	errs, err := b.a.groupCommit(ctx, instances, syncs)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return errs, nil
}

// Instances returns the instances added so far.
func (b *Batch) Instances() []bildrum.Instance { return b.instances }

// Close releases the instances not committed; their objects are left for
// Sweep (a sync under way finishes on its own).
func (b *Batch) Close() {
	for _, in := range b.instances {
		b.a.unpin(in.Object.Key)
	}
	b.a.unhold(b.instances, func(int) bool { return true })
	b.instances, b.syncs = nil, nil
}

// Store receives and indexes one PS3.10 file: Add and Commit of a batch of
// one.
func (a *Archive) Store(ctx context.Context, r io.Reader) (bildrum.Instance, error) {
	b := a.NewBatch()
	defer b.Close()
	inst, err := b.Add(ctx, r)
	if err != nil {
		return inst, err
	}
	errs, err := b.Commit(ctx)
	if err != nil {
		return inst, err
	}
	return inst, errs[0]
}

// ObjectKey is the blob key of an object with the hex SHA-256 sum.
func ObjectKey(sum string) string { return "sha256/" + sum[:2] + "/" + sum }

// Sweep removes objects that no index entry refers to and spool files left
// by interrupted receipts, when they were last written before olderThan
// ago, and returns how many it removed. Objects of instances being received
// by this process are kept whatever their age.
func (a *Archive) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := a.now().Add(-olderThan)
	removed := 0
	err := a.blobs.Walk(ctx, func(key, spool string, mod time.Time) error {
		if !mod.Before(cutoff) {
			return nil
		}
		if spool != "" {
			if err := os.Remove(spool); err == nil {
				removed++
			}
			return nil
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.pins[key] > 0 {
			return nil
		}
		used, err := a.index.ObjectReferenced(ctx, key)
		if err != nil || used {
			return err
		}
		if err := a.blobs.Delete(ctx, key); err != nil {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("sweep: %w", err)
	}
	return removed, nil
}

// Open returns the bytes of an indexed instance exactly as received.
func (a *Archive) Open(ctx context.Context, in bildrum.Instance) (io.ReadCloser, error) {
	if rc, ok := a.openHeld(in.Object.Key); ok {
		return rc, nil
	}
	rc, err := a.blobs.Open(ctx, in.Object.Key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", in.SOPInstanceUID, err)
	}
	return rc, nil
}

// Header reads the header of an indexed instance from its stored bytes.
func (a *Archive) Header(ctx context.Context, in bildrum.Instance) (*Header, io.ReaderAt, io.Closer, error) {
	rc, err := a.Open(ctx, in)
	if err != nil {
		return nil, nil, nil, err
	}
	ra, ok := rc.(io.ReaderAt)
	if !ok {
		// Object storage: read the object once into memory.
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", in.SOPInstanceUID, err)
		}
		ra, rc = bytesReaderAt(data), io.NopCloser(nil)
	}
	h, err := ReadHeader(ra, in.Object.Size)
	if err != nil {
		rc.Close()
		return nil, nil, nil, fmt.Errorf("header of %s: %w", in.SOPInstanceUID, err)
	}
	return h, ra, rc, nil
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Frame locates frame number n (from 1) of an instance with native pixel
// data: its offset and length in the stored bytes. Compressed transfer
// syntaxes give ErrCompressed.
func (h *Header) Frame(n int) (off, length int64, err error) {
	if h.Pixel == nil {
		return 0, 0, bildrum.Errorf(bildrum.ENOTFOUND, "the instance has no pixel data")
	}
	if !Uncompressed(h.TransferSyntaxUID) {
		return 0, 0, ErrCompressed
	}
	rows, _ := h.Int(tag.Rows)
	cols, _ := h.Int(tag.Columns)
	bits, _ := h.Int(tag.BitsAllocated)
	spp, ok := h.Int(tag.SamplesPerPixel)
	if !ok {
		spp = 1
	}
	frames, ok := h.Int(tag.NumberOfFrames)
	if !ok || frames < 1 {
		frames = 1
	}
	if n < 1 || n > frames {
		return 0, 0, bildrum.Errorf(bildrum.ENOTFOUND, "frame %d does not exist: the instance has %d", n, frames)
	}
	if bits != 1 && bits%8 != 0 {
		return 0, 0, bildrum.Errorf(bildrum.EINVALID, "bits allocated %d is not supported for frame retrieval", bits)
	}
	size := int64(rows) * int64(cols) * int64(spp) * int64(bits)
	if bits == 1 {
		if frames > 1 {
			return 0, 0, bildrum.Errorf(bildrum.EINVALID, "frames of multi-frame 1-bit images are not supported")
		}
		size = (size + 7) / 8
	} else {
		size /= 8
	}
	off = h.Pixel.Offset + int64(n-1)*size
	if size <= 0 || off+size > h.Pixel.Offset+h.Pixel.Length {
		return 0, 0, bildrum.Errorf(bildrum.EINVALID, "the pixel data (%d bytes) are shorter than %d frames of %d×%d×%d×%d bits", h.Pixel.Length, frames, rows, cols, spp, bits)
	}
	return off, size, nil
}

// ErrCompressed is returned for operations on the pixel data of a
// compressed transfer syntax that the archive keeps but does not decode.
var ErrCompressed = errors.New("the pixel data are compressed")
