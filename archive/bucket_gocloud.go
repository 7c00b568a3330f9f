//go:build gocloud

package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bildrum/bildrum"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/memblob" // mem://, for tests
	_ "gocloud.dev/blob/s3blob"  // s3://bucket?region=…&endpoint=…
	"gocloud.dev/gcerrors"
)

// openBucket opens object storage through gocloud.dev/blob. Objects are
// received into local spool files and uploaded whole; an upload that
// returns without error is acknowledged by the service, which is what makes
// it durable there.
func openBucket(ctx context.Context, rawURL string) (BlobStore, error) {
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "cannot open blob store %s: %v", rawURL, err)
	}
	spool, err := os.MkdirTemp("", "bildrum-spool-")
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("blob spool: %w", err)
	}
	return &bucketBlobs{b: b, spool: spool}, nil
}

// bucketBlobs is a BlobStore on a gocloud.dev bucket.
type bucketBlobs struct {
	b     *blob.Bucket
	spool string
}

func (s *bucketBlobs) Spool() (*os.File, error) {
	return os.CreateTemp(s.spool, "rx-*")
}

func (s *bucketBlobs) Ingest(ctx context.Context, key string, f *os.File) error {
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	if err := s.b.Upload(ctx, key, f, &blob.WriterOptions{ContentType: "application/dicom"}); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	return nil
}

func (s *bucketBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.OpenRange(ctx, key, 0, -1)
}

func (s *bucketBlobs) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	r, err := s.b.NewRangeReader(ctx, key, off, n, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "the object %s of an indexed instance is missing from the blob store", key)
	} else if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	return r, nil
}

func (s *bucketBlobs) Delete(ctx context.Context, key string) error {
	if err := s.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

func (s *bucketBlobs) Walk(ctx context.Context, fn func(key, spool string, modTime time.Time) error) error {
	it := s.b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		if err := fn(obj.Key, "", obj.ModTime); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.spool)
	if err != nil {
		return fmt.Errorf("list spool: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			if err := fn("", filepath.Join(s.spool, e.Name()), info.ModTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *bucketBlobs) Close() error {
	os.RemoveAll(s.spool)
	return s.b.Close()
}
