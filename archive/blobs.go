package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bildrum/bildrum"
)

// BlobStore keeps the bytes of the archive's instances under
// content-addressed keys.
//
// Spool returns a new local file to receive an object into; Ingest makes
// the complete file durable under key and consumes it (it is linked,
// renamed or removed, whatever the outcome). When Ingest returns nil the
// object is durable (on a file system: written, named key, and both the
// file and its directory fsync'd; in object storage: the upload
// acknowledged). Ingesting a key that exists replaces the object, which
// under content addressing holds the same bytes; a failed Ingest may leave
// an incomplete object under key, which no index entry refers to. Open
// returns the whole object, OpenRange n bytes from off; both return an
// ENOTFOUND error for a missing key. Walk calls fn for every
// object and for leftover spool files (with an empty key and their path in
// spool), with the time each was last written. Implementations are safe for
// concurrent use.
type BlobStore interface {
	Spool() (*os.File, error)
	Ingest(ctx context.Context, key string, f *os.File) error
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
	Walk(ctx context.Context, fn func(key, spool string, modTime time.Time) error) error
	Close() error
}

// objectWriter is a BlobStore that can also take a whole object from
// memory, more cheaply than through a spool file, and make it durable
// later. Write writes data under key and returns sync, which makes it
// durable; when sync returns nil the object is durable, with the contract of
// Ingest: a key that exists is replaced by the same bytes, and a failed
// Write or sync may leave an incomplete object under key, which no index
// entry refers to. sync must be called exactly once, from any goroutine;
// nothing may refer to key before it returned nil. The archive stores
// objects smaller than a receive buffer through Write when its blob store
// has it, running sync while it indexes them (see Batch.Add), and through
// Spool and Ingest when not.
type objectWriter interface {
	Write(ctx context.Context, key string, data []byte) (sync func() error, err error)
}

var (
	_ objectWriter = (*FileBlobs)(nil)
	_ objectWriter = (*BucketBlobs)(nil)
)

// OpenBlobs opens the blob store named by a URL: file:///path (or a plain
// path) for a directory on a local file system, the default, or
// s3://bucket?region=… for S3-compatible object storage through
// gocloud.dev/blob (OpenBucketBlobs, with a spool directory of the process).
func OpenBlobs(ctx context.Context, rawURL string) (BlobStore, error) {
	if strings.Contains(rawURL, "://") && !strings.HasPrefix(rawURL, "file://") {
		return openBucket(ctx, rawURL) // which checks the URL
	}
	b, err := OpenFileBlobsURL(rawURL)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// OpenFileBlobsURL opens the directory named by a plain path or a
// file:///path URL, as OpenBlobs does for them.
func OpenFileBlobsURL(rawURL string) (*FileBlobs, error) {
	if !strings.Contains(rawURL, "://") {
		return OpenFileBlobs(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "file" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store URL %q: write a directory, or file:///path/to/dir", rawURL)
	}
	return OpenFileBlobs(filepath.FromSlash(u.Path))
}

// FileBlobs is a BlobStore in a directory of a local file system: objects
// under their keys, spool files in tmp/, on the same file system so that
// ingesting is a link or a rename. It fsyncs what it writes, which gocloud.dev's
// fileblob does not, so that an acknowledged instance survives a power
// failure.
type FileBlobs struct {
	dir string

	// mu guards made: the shard directories known to exist durably, so
	// that ingesting into them needs no check.
	mu   sync.Mutex
	made map[string]bool
}

// OpenFileBlobs opens (creating) a FileBlobs in dir.
func OpenFileBlobs(dir string) (*FileBlobs, error) {
	if dir == "" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "empty blob directory: give a directory for the archive's objects")
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "cannot create blob directory %s (%v): choose another", dir, errors.Unwrap(err))
	}
	b := &FileBlobs{dir: filepath.Clean(dir), made: map[string]bool{}}
	if err := b.makeShards(); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "cannot create the object directories of blob directory %s (%v): check that it is writable", dir, errors.Unwrap(err))
	}
	return b, nil
}

// makeShards makes sure that the 256 directories of the archive's keys
// (sha256/00 … sha256/ff, see ObjectKey) exist durably, creating those
// missing, so that storing an object never waits for a new directory and
// its parents' fsyncs: on a new store, most of the first few hundred
// objects would.
func (b *FileBlobs) makeShards() error {
	top := filepath.Join(b.dir, "sha256")
	if err := mkdirSynced(top); err != nil {
		return err
	}
	spreadSubdirs(top)
	shards := make([]string, 256)
	for i := range shards {
		shards[i] = filepath.Join(top, fmt.Sprintf("%02x", i))
		if err := os.Mkdir(shards[i], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// As mkdir does the first time in a process: even when nothing was
	// created now, a process killed after creating them may not have synced.
	for _, d := range []string{top, b.dir} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range append(shards, top, b.dir) {
		b.made[d] = true
	}
	return nil
}

// Dir returns the directory of the store.
func (b *FileBlobs) Dir() string { return b.dir }

// path returns the file of key, refusing keys that would leave the directory.
func (b *FileBlobs) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "tmp/") || !fs.ValidPath(key) {
		return "", bildrum.Errorf(bildrum.EINVALID, "invalid blob key %q", key)
	}
	return filepath.Join(b.dir, filepath.FromSlash(key)), nil
}

// Spool returns a new file in the store's tmp directory.
func (b *FileBlobs) Spool() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "rx-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// Ingest makes f durable under key. The fast way, for a key that does not
// exist yet, links f to key and then fsyncs the file and the key's
// directory at the same time, where fsync-then-rename must wait for one
// before starting the other. That is safe because nothing refers to key
// before Ingest returns (the index entry comes after): a crash before the
// fsyncs leaves at worst an incomplete object that no index entry names,
// which Sweep removes, and as the link fails on an existing key it never
// replaces a complete object by an incomplete one. Where key exists (an
// earlier copy, possibly such an incomplete one, or one another request is
// ingesting right now) or the file system has no hard links, Ingest fsyncs
// f and renames it over key, so that the name only ever changes to
// complete bytes, and fsyncs the directory.
//
// The directory's fsync is not left to the archive's group commit, to be
// shared by the objects of a round: run beside the file's own fsync it adds
// no wait, while a step of its own in every round would (measured on ext4,
// docs/benchmarks.md).
func (b *FileBlobs) Ingest(ctx context.Context, key string, f *os.File) error {
	defer os.Remove(f.Name()) // the spool name, once linked or renamed
	defer f.Close()
	p, err := b.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := b.mkdir(dir); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	if err := os.Link(f.Name(), p); err == nil {
		if err := syncFileAndDir(f, dir); err != nil {
			return fmt.Errorf("ingest %s: %w", key, err)
		}
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ingest %s: sync: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	return nil
}

// Write writes data under key, for objects small enough to be held in
// memory, and returns sync, which makes the object durable (see
// objectWriter). Where key does not exist yet, Write creates the object's
// file under its final name (O_EXCL, so never over another file) and writes
// data in one write; sync fsyncs the file and its directory at the same
// time: one file created and nothing renamed or removed, where a spool file
// costs a creation, a link and a removal. As with Ingest's link, writing
// under the final name before the bytes are durable is safe because nothing
// refers to key before sync returns: a crash leaves at worst an incomplete
// object that no index entry names, which Sweep removes. Where key exists
// (an earlier copy, possibly such an incomplete one, or one another request
// is writing right now), Write puts the bytes in a spool file that Ingest
// renames over key, so that the name only ever changes to complete bytes;
// the object is then durable when Write returns.
func (b *FileBlobs) Write(ctx context.Context, key string, data []byte) (func() error, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(p)
	if err := b.mkdir(dir); err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err := b.putSpooled(ctx, key, data); err != nil {
			return nil, err
		}
		return func() error { return nil }, nil
	} else if err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	// A failed write leaves the incomplete file: removing it could remove
	// the complete object that a concurrent Write of the same bytes has
	// renamed over it meanwhile.
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	return func() error {
		defer f.Close()
		if err := syncFileAndDir(f, dir); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		return nil
	}, nil
}

// WriteMany writes objects from memory under their keys and makes them all
// durable together: it writes each object's file under its final name (or,
// where the key exists, a spool file that it renames over it) and then
// syncs the file system once, which costs about as much as one object's
// sync in Write and serves them all. Where the file system cannot be
// synced at once, WriteMany syncs the objects one by one. When it returns
// an error, some objects may be incomplete under their keys. The archive
// moves the small objects its index held into the store this way, which
// keeps their bytes until WriteMany has returned (see Archive.Recover).
func (b *FileBlobs) WriteMany(ctx context.Context, keys []string, data [][]byte) error {
	for i, key := range keys {
		if err := b.writeUnsynced(key, data[i]); err != nil {
			return err
		}
	}
	err := syncFileSystem(b.dir)
	if !errors.Is(err, errors.ErrUnsupported) {
		if err != nil {
			return fmt.Errorf("write %d objects: %w", len(keys), err)
		}
		return nil
	}
	for i, key := range keys {
		if err := b.putSpooled(ctx, key, data[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeUnsynced writes data under key without syncing it: into a new file
// under key, or into a spool file renamed over key where key exists, so
// that an existing name only ever changes to complete bytes.
func (b *FileBlobs) writeUnsynced(key string, data []byte) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := b.mkdir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if f, err = b.Spool(); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), p)
		}
		if err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("write %s: %w", key, err)
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// putSpooled makes data durable under an existing key through a spool
// file and Ingest.
func (b *FileBlobs) putSpooled(ctx context.Context, key string, data []byte) error {
	f, err := b.Spool()
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: spool: %w", key, err)
	}
	return b.Ingest(ctx, key, f)
}

// syncFileAndDir fsyncs f and the directory dir at the same time: the
// directory's fsync beside the file's own adds no wait (docs/benchmarks.md).
func syncFileAndDir(f *os.File, dir string) error {
	var dirErr error
	var wg sync.WaitGroup
	wg.Go(func() { dirErr = syncDir(dir) })
	err := f.Sync()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return dirErr
}

// mkdir makes sure that dir, inside the store, exists durably, remembering
// it once it does. The first time in a process it fsyncs every parent up to
// the store's directory, or to one known durable, even when dir existed: a
// process killed after creating it may not have.
func (b *FileBlobs) mkdir(dir string) error {
	b.mu.Lock()
	made := b.made[dir]
	b.mu.Unlock()
	if made {
		return nil
	}
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	for d := filepath.Dir(dir); len(d) >= len(b.dir); d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return err
		}
		b.mu.Lock()
		made := b.made[d]
		b.mu.Unlock()
		if made || d == b.dir {
			break // d's own entry, and its parents', are durable already
		}
	}
	b.mu.Lock()
	b.made[dir] = true
	b.mu.Unlock()
	return nil
}

// mkdirSynced creates dir and its parents as needed, fsyncing each parent
// that got a new entry, so that a new directory survives a crash.
func mkdirSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirSynced(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// openFile is os.OpenFile for files that are only written and synced, or
// directories only synced: it does not offer the file to the runtime's
// network poller, which for a regular file or directory costs system calls
// (a non-blocking flag set and cleared, a failed epoll registration) that
// are many beside the few the store makes for a small object.
func openFile(name string, flag int, perm uint32) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, perm)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// Open returns the object's file: an *os.File, which net/http sends with
// sendfile.
func (b *FileBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "the object %s of an indexed instance is missing from the blob store", key)
	} else if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	return f, nil
}

// OpenRange returns n bytes of the object from off.
func (b *FileBlobs) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	f := rc.(*os.File)
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

// Delete removes the object of key; a missing object is no error.
func (b *FileBlobs) Delete(ctx context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// Walk calls fn for every object and spool file of the store.
func (b *FileBlobs) Walk(ctx context.Context, fn func(key, spool string, modTime time.Time) error) error {
	return filepath.WalkDir(b.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "tmp/") {
			return fn("", p, info.ModTime())
		}
		return fn(rel, "", info.ModTime())
	})
}

// Close releases nothing: files are opened per call.
func (b *FileBlobs) Close() error { return nil }
