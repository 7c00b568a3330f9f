// Package tlog is bildrum's transparency log: an append-only, verifiable log
// of every access to a person's data.
//
// Each access event becomes one leaf (leaf.go, docs/transparency.md) in an
// RFC 6962 Merkle tree kept by tessera's POSIX driver in a directory. The
// hub signs [tlog-checkpoint]s of the tree with its Ed25519 [signed-note]
// key, optionally cosigned by [tlog-witness] witnesses, and serves the
// checkpoint, the tiles and the entry bundles read-only over HTTP in the
// [tlog-tiles] layout under /log/, so that auditors need nothing but HTTP.
//
// A leaf names no woman: it holds a keyed commitment to her and her
// details sealed under her person key, derived from the hub's secret
// commitment key. The hub finds her leaves through a PersonIndex; she,
// given her person key, recognises and opens them, and checks their
// inclusion proofs against a signed checkpoint.
//
// Client verifies a log from outside, as 'bildrum log verify' does.
//
// [tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
// [signed-note]: https://c2sp.org/signed-note
// [tlog-tiles]: https://c2sp.org/tlog-tiles
// [tlog-witness]: https://c2sp.org/tlog-witness
package tlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	f_log "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
)

// Defaults of Config. With them an event is in a published checkpoint
// within about CheckpointInterval after it is recorded (see the benchmarks).
const (
	DefaultCheckpointInterval = 500 * time.Millisecond
	DefaultBatchMaxAge        = 5 * time.Millisecond
	DefaultBatchMaxSize       = 1024
	DefaultWitnessTimeout     = 5 * time.Second
)

// Config configures a Log. Files holding secrets must not be inside Dir,
// whose contents are public.
type Config struct {
	// Dir holds the public log: checkpoint, tile/ and tile/entries/ in the
	// [tlog-tiles] layout, written by tessera's POSIX driver, plus
	// tessera's own .state/ (private but not secret). Created when missing.
	// Required.
	Dir string

	// Origin is the checkpoint origin: the log's URL prefix without scheme
	// and trailing slash, e.g. "bildrum.se/log". It names the log for ever:
	// the signing key is bound to it. Required.
	Origin string

	// KeyFile is the log's signed-note signer key ("PRIVATE+KEY+origin+…"),
	// generated with mode 0600 on first start when missing. Required
	// unless Signer is set. Losing it means starting a new log.
	KeyFile string
	// Signer signs checkpoints instead of the key in KeyFile (tests, HSMs).
	// Its name must be Origin; VerifierKey must then be set too.
	Signer note.Signer
	// VerifierKey is Signer's verifier key; only with Signer.
	VerifierKey string

	// CommitmentKeyFile holds the secret commitment key (hex), generated
	// with mode 0600 on first start when missing. Required unless
	// CommitmentKey is set. Without it no woman can find her earlier
	// events, so back it up with the log key.
	CommitmentKeyFile string
	// CommitmentKey is the secret commitment key itself, at least
	// CommitmentKeySize bytes; it overrides CommitmentKeyFile.
	CommitmentKey []byte

	// IndexFile is where the default FileIndex keeps which leaves are whose
	// (by PersonTag, never by personnummer). Required unless Index is set.
	IndexFile string
	// Index replaces the FileIndex, e.g. with the hub's SQL store. The Log
	// does not close it.
	Index PersonIndex

	// CheckpointInterval is how often a new checkpoint is signed while the
	// log grows. Default DefaultCheckpointInterval, at least 100ms.
	CheckpointInterval time.Duration
	// Events are sequenced in rounds, one at a time: each round takes every
	// event that arrived while the previous one was written (group
	// commit), at most BatchMaxSize, and writes them with one set of
	// fsyncs. A round smaller than that waits BatchMaxAge for more before
	// it is written. Defaults DefaultBatchMaxSize and DefaultBatchMaxAge.
	BatchMaxAge  time.Duration
	BatchMaxSize uint

	// Witnesses cosign each checkpoint ([tlog-witness]) before it is
	// published. Optional.
	Witnesses []Witness
	// WitnessQuorum is how many Witnesses must cosign. Default all of them.
	WitnessQuorum int
	// WitnessTimeout bounds the wait for witnesses. Default 5s.
	WitnessTimeout time.Duration
	// WitnessFailOpen publishes a checkpoint even when the quorum was not
	// reached in time. Default false: the checkpoint waits for the
	// witnesses, while events are still recorded durably.
	WitnessFailOpen bool
	// HTTPClient calls the witnesses. Default http.DefaultClient.
	HTTPClient *http.Client

	// Now is the clock for events without a time. Default time.Now.
	Now func() time.Time
	// Log receives the log's own messages. Default slog.Default().
	Log *slog.Logger
}

// Witness is a [tlog-witness] witness that cosigns the log's checkpoints.
type Witness struct {
	// URL is the witness's base URL; checkpoints go to URL/add-checkpoint.
	URL string `json:"url"`
	// VerifierKey is the witness's cosignature key, "name+hash+base64"
	// (signed-note type 0x04, cosignature/v1).
	VerifierKey string `json:"verifier_key"`
}

func (c Config) withDefaults() (Config, error) {
	invalid := func(format string, args ...any) (Config, error) {
		return Config{}, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: "+format, args...)
	}
	if c.Dir == "" {
		return invalid("set the log directory (Dir)")
	}
	if c.Origin == "" || strings.Contains(c.Origin, "://") || strings.HasSuffix(c.Origin, "/") || strings.ContainsAny(c.Origin, " +\n") {
		return invalid("origin %q: want the log's URL prefix without scheme or trailing slash, e.g. \"bildrum.se/log\"", c.Origin)
	}
	switch {
	case c.Signer != nil:
		if c.Signer.Name() != c.Origin {
			return invalid("the signer signs for %q, not the origin %q", c.Signer.Name(), c.Origin)
		}
		if c.VerifierKey == "" {
			return invalid("give the signer's verifier key (VerifierKey)")
		}
	case c.KeyFile == "":
		return invalid("set the log key file (KeyFile), created on first start")
	}
	if c.CommitmentKey == nil && c.CommitmentKeyFile == "" {
		return invalid("set the commitment key file (CommitmentKeyFile), created on first start")
	}
	if c.CommitmentKey != nil && len(c.CommitmentKey) < CommitmentKeySize {
		return invalid("the commitment key has %d bytes, want at least %d random bytes", len(c.CommitmentKey), CommitmentKeySize)
	}
	if c.Index == nil && c.IndexFile == "" {
		return invalid("set the person index file (IndexFile)")
	}
	for _, f := range []string{c.KeyFile, c.CommitmentKeyFile, c.IndexFile} {
		if f != "" && inside(c.Dir, f) {
			return invalid("%s is inside the public log directory %s: keep keys and the person index outside it", f, c.Dir)
		}
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.CheckpointInterval < 100*time.Millisecond {
		return invalid("checkpoint interval %v: want at least 100ms", c.CheckpointInterval)
	}
	if c.BatchMaxAge <= 0 {
		c.BatchMaxAge = DefaultBatchMaxAge
	}
	if c.BatchMaxSize == 0 {
		c.BatchMaxSize = DefaultBatchMaxSize
	}
	if c.WitnessQuorum == 0 {
		c.WitnessQuorum = len(c.Witnesses)
	}
	if c.WitnessQuorum < 0 || c.WitnessQuorum > len(c.Witnesses) {
		return invalid("witness quorum %d: want between 1 and the %d witnesses configured", c.WitnessQuorum, len(c.Witnesses))
	}
	if c.WitnessTimeout <= 0 {
		c.WitnessTimeout = DefaultWitnessTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

// inside reports whether path is dir or below it.
func inside(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Log is an open transparency log. Its methods are safe for concurrent use.
type Log struct {
	cfg      Config
	vkey     string
	verifier note.Verifier
	leaves   leafMaker
	index    PersonIndex
	ownIndex *FileIndex // the index Open opened, closed by Close

	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	tiles    *tileCache         // full tiles for proofs, read through reader
	cancel   context.CancelFunc // stops tessera's background work
	unlock   func() error       // releases the directory lock

	awaitOnce sync.Once
	awaiter   *tessera.PublicationAwaiter
	bg        context.Context

	inflight      sync.WaitGroup // appends under way, waited for by Close
	requests      chan request   // to the sequencer; closed by Close
	sequencerDone chan struct{}  // closed when the sequencer ends

	mu       sync.Mutex   // guards retry and closed
	retry    []IndexEntry // sequenced leaves whose index Add failed
	closed   bool
	closeErr error
}

// Open opens the log in cfg.Dir, creating it, its keys and its index on
// first start. Only one Log may have a directory open at a time.
func Open(ctx context.Context, cfg Config) (_ *Log, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg}
	defer func() {
		if err != nil {
			l.release()
			if l.ownIndex != nil {
				l.ownIndex.Close()
			}
		}
	}()
	if err := os.MkdirAll(filepath.Join(cfg.Dir, ".state"), 0o755); err != nil {
		return nil, fmt.Errorf("tlog: log directory: %w", err)
	}
	if l.unlock, err = lockDir(filepath.Join(cfg.Dir, ".state", "bildrum.lock")); err != nil {
		return nil, err
	}

	signer := cfg.Signer
	l.vkey = cfg.VerifierKey
	if signer == nil {
		if signer, l.vkey, err = loadOrCreateSigner(cfg.KeyFile, cfg.Origin); err != nil {
			return nil, err
		}
	}
	if l.verifier, err = note.NewVerifier(l.vkey); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: verifier key %q: %v", l.vkey, err)
	}
	if l.verifier.Name() != cfg.Origin {
		return nil, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: verifier key is for %q, not the origin %q", l.verifier.Name(), cfg.Origin)
	}
	if signed, err := note.Sign(&note.Note{Text: "bildrum tlog key check\n"}, signer); err != nil {
		return nil, fmt.Errorf("tlog: sign with the log key: %w", err)
	} else if _, err := note.Open(signed, note.VerifierList(l.verifier)); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: the verifier key %s is not the signer's", l.vkey)
	}

	ckey := cfg.CommitmentKey
	if ckey == nil {
		if ckey, err = loadOrCreateSecret(cfg.CommitmentKeyFile); err != nil {
			return nil, err
		}
	}
	l.leaves = leafMaker{key: ckey, now: cfg.Now}

	l.index = cfg.Index
	if l.index == nil {
		if l.ownIndex, err = OpenFileIndex(cfg.IndexFile); err != nil {
			return nil, err
		}
		l.index = l.ownIndex
	}

	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithCheckpointRepublishInterval(max(tessera.DefaultCheckpointRepublishInterval, cfg.CheckpointInterval))
	if len(cfg.Witnesses) > 0 {
		group, err := witnessGroup(cfg.Witnesses, cfg.WitnessQuorum)
		if err != nil {
			return nil, err
		}
		opts.WithWitnesses(group, &tessera.WitnessOptions{Timeout: cfg.WitnessTimeout, FailOpen: cfg.WitnessFailOpen})
	}
	driver, err := posix.New(ctx, posix.Config{Path: cfg.Dir, HTTPClient: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("tlog: open %s: %w", cfg.Dir, err)
	}
	// tessera's background work outlives Open's context; Close ends it.
	l.bg, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.appender, l.shutdown, l.reader, err = tessera.NewAppender(l.bg, driver, opts)
	if err != nil {
		return nil, fmt.Errorf("tlog: open %s: %w", cfg.Dir, err)
	}
	l.tiles = &tileCache{read: l.reader.ReadTile, tiles: map[[2]uint64][]byte{}}
	l.requests = make(chan request, 2*cfg.BatchMaxSize)
	l.sequencerDone = make(chan struct{})
	go l.sequence()
	cfg.Log.Info("transparency log open", "dir", cfg.Dir, "origin", cfg.Origin, "vkey", l.vkey, "witnesses", len(cfg.Witnesses))
	return l, nil
}

func witnessGroup(ws []Witness, quorum int) (tessera.WitnessGroup, error) {
	var ps []tessera.Witness
	for _, w := range ws {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return tessera.WitnessGroup{}, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: witness URL %q: want http(s)://HOST[/PATH]", w.URL)
		}
		tw, err := tessera.NewWitness(w.VerifierKey, u)
		if err != nil {
			return tessera.WitnessGroup{}, bildrum.Errorf(bildrum.EINVALID, "transparency log configuration: witness key %q: %v (want a cosignature/v1 verifier key, name+hash+base64)", w.VerifierKey, err)
		}
		ps = append(ps, tw)
	}
	// NewWitnessGroup takes its private interface; Witness satisfies it.
	group := tessera.WitnessGroup{N: quorum}
	for _, w := range ps {
		group.Components = append(group.Components, w)
	}
	return group, nil
}

// lockDir takes an exclusive lock on path, so that no other Log (in this
// process or another) writes the same directory.
func lockDir(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tlog: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, bildrum.Errorf(bildrum.EUNAVAILABLE, "the transparency log in %s is open in another process or part: stop it first", filepath.Dir(filepath.Dir(path)))
		}
		return nil, fmt.Errorf("tlog: lock %s: %w", path, err)
	}
	return f.Close, nil
}

// VerifierKey returns the log's signed-note verifier key,
// "origin+hash+base64", which auditors pass to 'bildrum log verify -vkey'.
func (l *Log) VerifierKey() string { return l.vkey }

// Origin returns the checkpoint origin.
func (l *Log) Origin() string { return l.cfg.Origin }

// RecordAccess implements bildrum.AccessRecorder: it returns nil only when
// the event's leaf is durably sequenced (fsynced) in the log and indexed
// for its person. A leaf is in a published checkpoint within about
// CheckpointInterval after that; WaitCheckpoint waits for one.
func (l *Log) RecordAccess(ctx context.Context, e bildrum.AccessEvent) error {
	_, err := l.Append(ctx, e)
	return err
}

// Append adds the event to the log and returns its leaf index, once the
// leaf is durably sequenced and indexed (see RecordAccess). An invalid event
// is an EINVALID error; a log too far behind is EUNAVAILABLE. When ctx ends
// first, Append returns its error, but the leaf may still be recorded and
// indexed: an access refused for that reason may appear in the log.
func (l *Log) Append(ctx context.Context, e bildrum.AccessEvent) (uint64, error) {
	indices, err := l.AppendAll(ctx, []bildrum.AccessEvent{e})
	if err != nil {
		return 0, err
	}
	return indices[0], nil
}

// AppendAll adds the events to the log as Append does, and returns their
// leaf indices in the order of events. They are sequenced in one round
// (and their person index written with one fsync), so one caller with a
// page of events gets the throughput of many concurrent callers: it is how
// the hub carries the nodes' outboxes. When one event is invalid, none is
// added (EINVALID, naming it). Otherwise the events are sequenced together
// but may fail apart: an error means some of them may be in the log, which
// is why the caller retries the whole page (a leaf logged twice is
// harmless; one missing is not).
func (l *Log) AppendAll(ctx context.Context, events []bildrum.AccessEvent) ([]uint64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	entries := make([]*tessera.Entry, len(events))
	tags := make([]*PersonTag, len(events))
	for i, e := range events {
		leaf, tag, err := l.leaves.make(e)
		if err != nil {
			if len(events) > 1 {
				return nil, bildrum.Errorf(bildrum.ErrorCode(err), "event %d of %d: %s", i+1, len(events), bildrum.ErrorMessage(err))
			}
			return nil, err
		}
		entries[i], tags[i] = tessera.NewEntry(leaf), tag
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, bildrum.Errorf(bildrum.EUNAVAILABLE, "the transparency log is closed")
	}
	l.inflight.Add(1)
	l.mu.Unlock()

	req := request{entries: entries, done: make(chan sequenced, 1)}
	select {
	case l.requests <- req:
	case <-ctx.Done():
		l.inflight.Done()
		return nil, fmt.Errorf("tlog: append: %w", ctx.Err())
	}
	done := make(chan sequenced, 1)
	go func() {
		// Finish sequencing and indexing even if the caller gives up, so
		// that the index never misses a leaf that is in the log.
		defer l.inflight.Done()
		r := <-req.done
		switch {
		case errors.Is(r.err, tessera.ErrPushback):
			r.err = bildrum.Errorf(bildrum.EUNAVAILABLE, "the transparency log is overloaded: try again shortly")
		case r.err != nil:
			r.err = fmt.Errorf("tlog: append: %w", r.err)
		default:
			var add []IndexEntry
			for i, tag := range tags {
				if tag != nil {
					add = append(add, IndexEntry{Tag: *tag, Index: r.indices[i]})
				}
			}
			r.err = l.addIndex(add)
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		return r.indices, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tlog: append: %w", ctx.Err())
	}
}

// request is one caller's entries waiting for the sequencer.
type request struct {
	entries []*tessera.Entry
	done    chan sequenced
}

// sequenced is what the sequencer answers a request: the entries' leaf
// indices, or the first error among them.
type sequenced struct {
	indices []uint64
	err     error
}

// sequence hands entries to tessera in rounds, one round at a time: each
// round is every request waiting when the previous round was durably
// sequenced, up to BatchMaxSize entries unless one request alone is
// larger. tessera's own queue flushes on a timer whether or not the
// previous flush is done, which at load makes many small batches each
// paying the full set of fsyncs; one round at a time keeps batches as large
// as the load.
func (l *Log) sequence() {
	defer close(l.sequencerDone)
	max := int(l.cfg.BatchMaxSize)
	batch := make([]request, 0, max)
	futures := make([]tessera.IndexFuture, 0, max)
	for {
		r, ok := <-l.requests
		if !ok {
			return
		}
		batch = append(batch, r)
		n := len(r.entries)
	fill:
		for n < max {
			select {
			case r, ok := <-l.requests:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				n += len(r.entries)
			default:
				break fill
			}
		}
		for _, r := range batch {
			for _, e := range r.entries {
				futures = append(futures, l.appender.Add(l.bg, e))
			}
		}
		k := 0
		for _, r := range batch {
			s := sequenced{indices: make([]uint64, len(r.entries))}
			for i := range r.entries {
				index, err := futures[k]()
				k++
				s.indices[i] = index.Index
				if err != nil && s.err == nil {
					s.err = err
				}
			}
			r.done <- s
		}
		clear(batch)
		clear(futures)
		batch, futures = batch[:0], futures[:0]
	}
}

// addIndex indexes sequenced leaves, and retries earlier failures.
func (l *Log) addIndex(add []IndexEntry) error {
	if len(add) > 0 {
		if err := l.index.Add(l.bg, add); err != nil {
			l.mu.Lock()
			l.retry = append(l.retry, add...)
			l.mu.Unlock()
			if len(add) == 1 {
				return fmt.Errorf("tlog: leaf %d is in the log, but its person index failed: %w", add[0].Index, err)
			}
			return fmt.Errorf("tlog: %d leaves are in the log, but their person index failed: %w", len(add), err)
		}
	}
	l.mu.Lock()
	pending := len(l.retry) > 0
	l.mu.Unlock()
	if pending {
		l.retryIndex()
	}
	return nil
}

// WaitCheckpoint waits until a published checkpoint covers the leaf at
// index, and returns that checkpoint.
func (l *Log) WaitCheckpoint(ctx context.Context, index uint64) ([]byte, error) {
	l.awaitOnce.Do(func() {
		l.awaiter = tessera.NewPublicationAwaiter(l.bg, l.reader.ReadCheckpoint, 10*time.Millisecond)
	})
	_, cp, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: index}, nil })
	if err != nil {
		return nil, fmt.Errorf("tlog: wait for a checkpoint with leaf %d: %w", index, err)
	}
	return cp, nil
}

// Checkpoint returns the latest published checkpoint, a signed note.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("tlog: read checkpoint: %w", err)
	}
	return cp, nil
}

// ParseCheckpoint verifies a checkpoint of this log with its key.
func (l *Log) ParseCheckpoint(cp []byte) (*f_log.Checkpoint, error) {
	c, _, _, err := f_log.ParseCheckpoint(cp, l.cfg.Origin, l.verifier)
	if err != nil {
		return nil, fmt.Errorf("tlog: checkpoint: %w", err)
	}
	return c, nil
}

// Size returns the number of leaves durably sequenced, which may be more
// than the latest checkpoint covers.
func (l *Log) Size(ctx context.Context) (uint64, error) {
	n, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("tlog: tree size: %w", err)
	}
	return n, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index
// in the tree of size treeSize. Proofs are ENOTFOUND for a tree larger than
// the log and EINVALID for an index outside the tree.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	if err := l.checkSize(ctx, treeSize); err != nil {
		return nil, err
	}
	if index >= treeSize {
		return nil, bildrum.Errorf(bildrum.EINVALID, "leaf %d is not in a tree of size %d", index, treeSize)
	}
	pb, err := client.NewProofBuilder(ctx, treeSize, l.tiles.readTile)
	if err != nil {
		return nil, fmt.Errorf("tlog: inclusion proof: %w", err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("tlog: inclusion proof of %d in %d: %w", index, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof from the tree of
// size old to the tree of size new.
func (l *Log) ConsistencyProof(ctx context.Context, old, new uint64) ([][]byte, error) {
	if err := l.checkSize(ctx, new); err != nil {
		return nil, err
	}
	if old > new {
		return nil, bildrum.Errorf(bildrum.EINVALID, "a consistency proof goes from a smaller tree to a larger one, not from %d to %d", old, new)
	}
	if old == 0 || old == new {
		return [][]byte{}, nil
	}
	pb, err := client.NewProofBuilder(ctx, new, l.tiles.readTile)
	if err != nil {
		return nil, fmt.Errorf("tlog: consistency proof: %w", err)
	}
	p, err := pb.ConsistencyProof(ctx, old, new)
	if err != nil {
		return nil, fmt.Errorf("tlog: consistency proof %d to %d: %w", old, new, err)
	}
	return p, nil
}

func (l *Log) checkSize(ctx context.Context, treeSize uint64) error {
	n, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if treeSize > n {
		return bildrum.Errorf(bildrum.ENOTFOUND, "the log has %d leaves, not %d", n, treeSize)
	}
	return nil
}

// Entry returns the leaf at index, as its bytes are hashed in the tree.
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, error) {
	n, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if index >= n {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "the log has %d leaves: there is no leaf %d", n, index)
	}
	bundle, err := l.bundle(ctx, index/layout.EntryBundleWidth, n)
	if err != nil {
		return nil, err
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(bundle.Entries)) {
		return nil, fmt.Errorf("tlog: entry bundle %d has %d entries, not %d", index/layout.EntryBundleWidth, len(bundle.Entries), i+1)
	}
	return bundle.Entries[i], nil
}

func (l *Log) bundle(ctx context.Context, b, treeSize uint64) (api.EntryBundle, error) {
	raw, err := l.reader.ReadEntryBundle(ctx, b, layout.PartialTileSize(0, b, treeSize))
	if err != nil {
		return api.EntryBundle{}, fmt.Errorf("tlog: read entry bundle %d: %w", b, err)
	}
	var bundle api.EntryBundle
	if err := bundle.UnmarshalText(raw); err != nil {
		return api.EntryBundle{}, fmt.Errorf("tlog: entry bundle %d: %w", b, err)
	}
	return bundle, nil
}

// PersonKey returns the person key K_p of a person, to be given to her
// after she has logged in (see PersonKey).
func (l *Log) PersonKey(id bildrum.PersonID) []byte { return PersonKey(l.leaves.key, id) }

// PersonIndices returns the indices of the person's leaves, ascending.
func (l *Log) PersonIndices(ctx context.Context, id bildrum.PersonID) ([]uint64, error) {
	l.mu.Lock()
	pending := len(l.retry) > 0
	l.mu.Unlock()
	if pending {
		// Retry failed index writes, so that no leaf stays missing.
		if err := l.retryIndex(); err != nil {
			return nil, err
		}
	}
	ix, err := l.index.Indices(ctx, PersonTagOf(l.PersonKey(id)))
	if err != nil {
		return nil, fmt.Errorf("tlog: person index: %w", err)
	}
	return ix, nil
}

// retryIndex adds the leaves whose index Add failed before. It returns
// an EUNAVAILABLE error when they still fail.
func (l *Log) retryIndex() error {
	l.mu.Lock()
	retry := l.retry
	l.retry = nil
	l.mu.Unlock()
	if len(retry) == 0 {
		return nil
	}
	err := l.index.Add(l.bg, retry)
	if err == nil {
		return nil
	}
	l.mu.Lock()
	l.retry = append(l.retry, retry...)
	l.mu.Unlock()
	l.cfg.Log.Error("transparency log: person index write failed", "leaves", len(retry), "err", err)
	return bildrum.Errorf(bildrum.EUNAVAILABLE, "the person index of the transparency log cannot be written, so a list of events could be incomplete: try again later")
}

// FindLeaves scans the leaves from index from up to the tree size and
// returns those of the person with the given key. It needs no index: it is
// how a person (or the hub, repairing its index) checks that none of her
// leaves is missing from a list.
func (l *Log) FindLeaves(ctx context.Context, personKey []byte, from uint64) ([]uint64, error) {
	n, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	var found []uint64
	for b := from / layout.EntryBundleWidth; b*layout.EntryBundleWidth < n; b++ {
		bundle, err := l.bundle(ctx, b, n)
		if err != nil {
			return nil, err
		}
		for i, e := range bundle.Entries {
			index := b*layout.EntryBundleWidth + uint64(i)
			if index < from {
				continue
			}
			leaf, err := ParseLeaf(e)
			if err != nil {
				return nil, fmt.Errorf("tlog: leaf %d: %w", index, err)
			}
			if leaf.Mine(personKey) {
				found = append(found, index)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// VerifyInclusion checks an inclusion proof of leaf at index against a tree
// root, as a client of the log does.
func VerifyInclusion(leaf []byte, index, treeSize uint64, hashes [][]byte, root []byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, treeSize, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, root)
}

// Close stops accepting events, waits until every event already accepted
// is sequenced, indexed and covered by a published checkpoint, then closes
// the log. Close after Close is a no-op.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.closeErr
	}
	l.closed = true
	l.mu.Unlock()

	l.inflight.Wait()
	if l.requests != nil {
		close(l.requests)
		<-l.sequencerDone
	}
	var errs []error
	if l.shutdown != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*l.cfg.CheckpointInterval+l.cfg.WitnessTimeout+10*time.Second)
		if err := l.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tlog: publish the last checkpoint: %w", err))
		}
		cancel()
	}
	if err := l.retryIndex(); err != nil {
		errs = append(errs, err)
	}
	l.release()
	if l.ownIndex != nil {
		if err := l.ownIndex.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	l.closeErr = errors.Join(errs...)
	l.mu.Unlock()
	return l.closeErr
}

// release stops background work and unlocks the directory.
func (l *Log) release() {
	if l.cancel != nil {
		l.cancel()
	}
	if l.unlock != nil {
		l.unlock()
		l.unlock = nil
	}
}
