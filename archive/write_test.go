package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/sqlstore"
)

// The node's index commits the archive's rounds through PutInstancesGated.
var _ gatingIndex = (*sqlstore.DB)(nil)

// spoolCounter is a BlobStore that counts its spool files, and hides any
// Write of the store it wraps: the archive then stores small objects
// through Spool and Ingest.
type spoolCounter struct {
	BlobStore
	spools atomic.Int64
}

func (s *spoolCounter) Spool() (*os.File, error) {
	s.spools.Add(1)
	return s.BlobStore.Spool()
}

// spoolCountingWriter is a spoolCounter that keeps the wrapped store's Write.
type spoolCountingWriter struct {
	*spoolCounter
	w objectWriter
}

func (s spoolCountingWriter) Write(ctx context.Context, key string, data []byte) (func() error, error) {
	return s.w.Write(ctx, key, data)
}

// fileOfSize returns mammogram n, of exactly size bytes.
func fileOfSize(t *testing.T, n int, size int) []byte {
	img := func(rows, cols int) []byte {
		uid := fmt.Sprintf("2.25.%d", 1000000+n)
		return archivetest.Mammogram(&archivetest.Image{Rows: rows, Columns: cols, StudyUID: uid + ".1", SeriesUID: uid + ".2", SOPInstanceUID: uid + ".3", Seed: uint64(n)})
	}
	header := len(img(2, 2)) - 8
	pixels := size - header
	if pixels < 8 {
		t.Fatalf("no mammogram of %d bytes: the header alone has %d", size, header)
	}
	for rows := 2; rows <= 65535; rows++ {
		if pixels%(2*rows) == 0 && pixels/(2*rows) <= 65535 {
			if f := img(rows, pixels/(2*rows)); len(f) == size {
				return f
			}
		}
	}
	t.Fatalf("no mammogram of %d bytes", size)
	return nil
}

// TestAddSizes stores files smaller than, as large as and larger than a
// receive buffer, in an order that makes each reuse a buffer filled by a
// larger one before, into a blob store that takes small objects from
// memory and into one that does not. Every object must hold exactly the
// bytes received; small objects must not be spooled where the store
// takes them from memory; no spool file may remain.
func TestAddSizes(t *testing.T) {
	sizes := []int{copyBuffer + 2, 8 << 10, copyBuffer, copyBuffer - 2, 1 << 20, 4 << 10, copyBuffer + 4096, 8<<10 + 2}
	for _, writer := range []bool{true, false} {
		t.Run(fmt.Sprintf("objectWriter=%v", writer), func(t *testing.T) {
			ctx := context.Background()
			fb, err := OpenFileBlobs(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			counter := &spoolCounter{BlobStore: fb}
			var blobs BlobStore = counter
			if writer {
				blobs = spoolCountingWriter{counter, fb}
			}
			a := New(newMemIndex(""), blobs)
			for i, size := range sizes {
				file := fileOfSize(t, i, size)
				before := counter.spools.Load()
				in, err := a.Store(ctx, bytes.NewReader(file))
				if err != nil {
					t.Fatalf("Store(%d bytes): %v", size, err)
				}
				spooled := counter.spools.Load() > before
				if small := size < copyBuffer; writer && small && spooled {
					t.Errorf("Store(%d bytes) spooled an object smaller than a receive buffer", size)
				} else if !small && !spooled {
					t.Errorf("Store(%d bytes) did not spool an object as large as a receive buffer", size)
				}
				sum := sha256.Sum256(file)
				if in.Object.Size != int64(size) || in.Object.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("Store(%d bytes) = object of %d bytes, SHA-256 %s; want %d, %x", size, in.Object.Size, in.Object.SHA256, size, sum)
				}
				rc, err := a.Open(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, file) {
					t.Errorf("Store(%d bytes): the object holds %d other bytes", size, len(got))
				}
			}
			objects := 0
			fb.Walk(ctx, func(key, spool string, _ time.Time) error {
				if spool != "" {
					t.Errorf("spool file %s left", spool)
				} else {
					objects++
				}
				return nil
			})
			if objects != len(sizes) {
				t.Errorf("%d objects stored, want %d", objects, len(sizes))
			}
		})
	}
}

// TestAddTruncated: a body that fails before its end, small or large,
// stores nothing and says why.
func TestAddTruncated(t *testing.T) {
	for _, size := range []int{8 << 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := context.Background()
			fb, err := OpenFileBlobs(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := New(newMemIndex(""), fb)
			file := fileOfSize(t, 1, size)
			r := io.MultiReader(bytes.NewReader(file[:size-100]), iotest.ErrReader(io.ErrUnexpectedEOF))
			if _, err := a.Store(ctx, r); !errors.Is(err, ErrReceive) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Store(truncated %d bytes) = %v, want ErrReceive wrapping io.ErrUnexpectedEOF", size, err)
			}
			fb.Walk(ctx, func(key, spool string, _ time.Time) error {
				t.Errorf("Store(truncated) left %q%q", key, spool)
				return nil
			})
		})
	}
}

// failingSync is a FileBlobs whose objects' syncs fail, as on a disk that
// fails its writes back.
type failingSync struct{ *FileBlobs }

func (f failingSync) Write(ctx context.Context, key string, data []byte) (func() error, error) {
	sync, err := f.FileBlobs.Write(ctx, key, data)
	if err != nil {
		return nil, err
	}
	return func() error {
		sync()
		return errors.New("input/output error")
	}, nil
}

// TestAddSyncFails: an instance whose bytes could not be made durable is
// not indexed, and Commit says so for that instance alone.
func TestAddSyncFails(t *testing.T) {
	ctx := context.Background()
	fb, err := OpenFileBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	idx := newMemIndex("")
	a := New(idx, failingSync{fb})
	b := a.NewBatch()
	defer b.Close()
	small := fileOfSize(t, 1, 8<<10)
	large := fileOfSize(t, 2, copyBuffer+2) // spooled and ingested: not Write's
	for _, f := range [][]byte{small, large} {
		if _, err := b.Add(ctx, bytes.NewReader(f)); err != nil {
			t.Fatal(err)
		}
	}
	uids := []string{b.Instances()[0].SOPInstanceUID, b.Instances()[1].SOPInstanceUID}
	errs, err := b.Commit(ctx)
	if err != nil || len(errs) != 2 {
		t.Fatalf("Commit = %v, %v; want two results", errs, err)
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "input/output error") || errs[1] != nil {
		t.Errorf("Commit = %v; want the sync's error for the small instance and nil for the large", errs)
	}
	if _, err := idx.Instance(ctx, uids[0]); err == nil {
		t.Errorf("the instance whose object failed to sync is indexed")
	}
	if _, err := idx.Instance(ctx, uids[1]); err != nil {
		t.Errorf("the other instance is not indexed: %v", err)
	}
	if len(a.pins) != 0 {
		t.Errorf("pins left: %v", a.pins)
	}
}

// TestReadHeaderInMemory checks that a header read from bytes in memory,
// as Add reads small files, is the header read through a reader, for whole,
// cut and damaged files.
func TestReadHeaderInMemory(t *testing.T) {
	good := archivetest.Mammogram(&archivetest.Image{Rows: 16, Columns: 16})
	damaged := bytes.Clone(good)
	damaged[140] ^= 0xff
	for name, data := range map[string][]byte{"whole": good, "cut": good[:len(good)/2], "damaged": damaged, "empty": nil} {
		want, wantErr := ReadHeader(bytes.NewReader(data), int64(len(data)))
		got, err := ReadHeader(bytesReaderAt(data), int64(len(data)))
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Errorf("%s: ReadHeader in memory: %v; through a reader: %v", name, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if fmt.Sprint(got.Pixel, got.TransferSyntaxUID, len(got.Dataset.Elements)) != fmt.Sprint(want.Pixel, want.TransferSyntaxUID, len(want.Dataset.Elements)) {
			t.Errorf("%s: ReadHeader in memory = %v %s %d elements; through a reader %v %s %d", name, got.Pixel, got.TransferSyntaxUID, len(got.Dataset.Elements), want.Pixel, want.TransferSyntaxUID, len(want.Dataset.Elements))
		}
	}
}

// TestShards checks that a new FileBlobs has its 256 shard directories,
// and, where the file system has the flag, that their parent is marked as
// the top of a hierarchy, so that they are spread over the disk.
func TestShards(t *testing.T) {
	b, err := OpenFileBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		if fi, err := os.Stat(filepath.Join(b.Dir(), "sha256", fmt.Sprintf("%02x", i))); err != nil || !fi.IsDir() {
			t.Fatalf("shard %02x: %v", i, err)
		}
	}
	if top, known := topOfHierarchy(filepath.Join(b.Dir(), "sha256")); known && !top {
		t.Errorf("sha256/ is not marked as the top of a hierarchy (chattr +T)")
	}
	// Reopening a store finds them and changes nothing.
	if _, err := OpenFileBlobs(b.Dir()); err != nil {
		t.Fatal(err)
	}
}
