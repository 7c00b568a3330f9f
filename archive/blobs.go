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

// OpenBlobs opens the blob store named by a URL: file:///path (or a plain
// path) for a directory on a local file system, the default; other schemes
// (s3://bucket?region=…, gs://, azblob://) open object storage through
// gocloud.dev/blob where the binary is built with it.
func OpenBlobs(ctx context.Context, rawURL string) (BlobStore, error) {
	if !strings.Contains(rawURL, "://") {
		return OpenFileBlobs(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store URL %q: %v: write file:///path/to/dir or s3://bucket?region=…", rawURL, err)
	}
	if u.Scheme == "file" {
		return OpenFileBlobs(filepath.FromSlash(u.Path))
	}
	return openBucket(ctx, rawURL)
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
	return &FileBlobs{dir: filepath.Clean(dir), made: map[string]bool{}}, nil
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
		var dirErr error
		var wg sync.WaitGroup
		wg.Go(func() { dirErr = syncDir(dir) })
		err := f.Sync()
		wg.Wait()
		if err != nil {
			return fmt.Errorf("ingest %s: sync: %w", key, err)
		}
		if dirErr != nil {
			return fmt.Errorf("ingest %s: %w", key, dirErr)
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

// mkdir makes sure that dir, inside the store, exists durably, remembering
// it once it does. The first time in a process it fsyncs every parent up to
// the store's directory even when dir existed: a process killed after
// creating it may not have.
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
		if d == b.dir {
			break
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
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
