package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/sqlstore"
)

// brokenIndex is the node's index, except that a transaction holding the
// SOP Instance UID poison fails as a whole and indexes nothing, as a
// database failing mid-transaction would.
type brokenIndex struct {
	bildrum.ImageIndex
	poison string
}

func (b brokenIndex) PutInstances(ctx context.Context, instances []bildrum.Instance) ([]error, error) {
	for _, in := range instances {
		if in.SOPInstanceUID == b.poison {
			return nil, errors.New("database is locked")
		}
	}
	return b.ImageIndex.PutInstances(ctx, instances)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestConcurrentStores stores batches from many goroutines at once, so
// that their commits share transactions, with bad instances among them: a
// file that is not DICOM, two versions of one SOP Instance UID in different
// batches, and a batch whose transaction fails. Every instance
// acknowledged must be indexed with the bytes acknowledged and have its
// object; every other must not be indexed; nothing of a failure may fail
// another batch's instances.
func TestConcurrentStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := archive.OpenFileBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	poison := archivetest.NewUID()
	a := archive.New(brokenIndex{db, poison}, blobs)

	mammogram := func(sop string, seed uint64) []byte {
		return archivetest.Mammogram(&archivetest.Image{Rows: 16, Columns: 16, SOPInstanceUID: sop, Seed: seed})
	}
	contested := archivetest.NewUID() // stored by two batches with other bytes
	const workers, batches = 8, 6
	type outcome struct {
		file  []byte
		acked bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	failedBatches := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range batches {
				files := [][]byte{mammogram("", uint64(i)), mammogram("", uint64(i+1)), []byte("not a DICOM file")}
				switch {
				case i == 0 && w < 2:
					files = append(files, mammogram(contested, uint64(w)))
				case i == 1 && w == 3:
					files = append(files, mammogram(poison, 0))
				}
				b := a.NewBatch()
				var added [][]byte
				for _, f := range files {
					_, err := b.Add(ctx, bytes.NewReader(f))
					switch code := bildrum.ErrorCode(err); {
					case err == nil:
						added = append(added, f)
					case code == bildrum.ECONFLICT: // the contested instance, indexed already
					case code != bildrum.EINVALID:
						t.Errorf("Add: %v", err)
					}
				}
				errs, err := b.Commit(ctx)
				mu.Lock()
				if err != nil {
					failedBatches++
				}
				for j, f := range added {
					outcomes = append(outcomes, outcome{f, err == nil && errs[j] == nil})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if failedBatches != 1 {
		t.Errorf("%d batches failed as a whole, want 1 (the one with the failing transaction)", failedBatches)
	}
	acked, contestedAcked := 0, 0
	for _, o := range outcomes {
		h, err := archive.ReadHeader(bytes.NewReader(o.file), int64(len(o.file)))
		if err != nil {
			t.Fatal(err)
		}
		in, err := h.Instance()
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Instance(ctx, in.SOPInstanceUID)
		switch {
		case o.acked:
			acked++
			if in.SOPInstanceUID == contested {
				contestedAcked++
			}
			if err != nil || got.Object.SHA256 != sum(o.file) {
				t.Errorf("acknowledged instance %s: index has %v, %v; want SHA-256 %s", in.SOPInstanceUID, got.Object, err, sum(o.file))
				continue
			}
			rc, err := a.Open(ctx, got)
			if err != nil {
				t.Errorf("acknowledged instance %s: %v", in.SOPInstanceUID, err)
				continue
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(data, o.file) {
				t.Errorf("acknowledged instance %s: the object holds %d other bytes", in.SOPInstanceUID, len(data))
			}
		case err == nil && got.Object.SHA256 == sum(o.file):
			t.Errorf("instance %s was refused but is indexed", in.SOPInstanceUID)
		}
	}
	// Each worker's good instances, but for the failed batch's two, and
	// one version of the contested instance.
	if want := workers*batches*2 - 2 + 1; acked != want || contestedAcked != 1 {
		t.Errorf("%d instances acknowledged (%d of the contested one), want %d (1)", acked, contestedAcked, want)
	}
	// Unreferenced: the failed batch's three objects, and the refused
	// version of the contested instance unless Add refused it before
	// writing it.
	if n, err := a.Sweep(ctx, -time.Hour); err != nil || n < 3 || n > 4 {
		t.Errorf("Sweep = %d, %v; want 3 or 4 objects removed", n, err)
	}
	all, _, err := db.SearchInstances(ctx, bildrum.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != acked {
		t.Errorf("the index holds %d instances, %d were acknowledged", len(all), acked)
	}
	for _, in := range all {
		if _, err := os.Stat(filepath.Join(blobs.Dir(), in.Object.Key)); err != nil {
			t.Errorf("after Sweep, indexed instance %s has no object: %v", in.SOPInstanceUID, err)
		}
	}
}

// TestPutObject checks the ways FileBlobs names an object, through a spool
// file and Ingest or from memory through Write and its sync: a new key, a
// key holding an incomplete object a crash left, a key holding the same
// bytes. Each time the key must then hold the bytes and no spool file may
// remain.
func TestPutObject(t *testing.T) {
	want := []byte("the complete object")
	puts := []struct {
		name string
		put  func(ctx context.Context, b *archive.FileBlobs, key string) error
	}{
		{"Ingest", func(ctx context.Context, b *archive.FileBlobs, key string) error {
			f, err := b.Spool()
			if err != nil {
				return err
			}
			f.Write(want)
			return b.Ingest(ctx, key, f)
		}},
		{"Write", func(ctx context.Context, b *archive.FileBlobs, key string) error {
			sync, err := b.Write(ctx, key, want)
			if err != nil {
				return err
			}
			return sync()
		}},
	}
	tests := []struct {
		name   string
		before []byte // the key's content before; nil for none
	}{
		{"new key", nil},
		{"incomplete object left by a crash", want[:5]},
		{"same bytes", want},
	}
	for _, put := range puts {
		for _, tt := range tests {
			t.Run(put.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				b, err := archive.OpenFileBlobs(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				key := archive.ObjectKey(sum(want))
				if tt.before != nil {
					p := filepath.Join(b.Dir(), key)
					os.MkdirAll(filepath.Dir(p), 0o700)
					if err := os.WriteFile(p, tt.before, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if err := put.put(ctx, b, key); err != nil {
					t.Fatalf("%s: %v", put.name, err)
				}
				rc, err := b.Open(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, want) {
					t.Errorf("after %s the key holds %q, want %q", put.name, got, want)
				}
				b.Walk(ctx, func(k, spool string, _ time.Time) error {
					if spool != "" {
						t.Errorf("spool file %s left after %s", spool, put.name)
					}
					return nil
				})
			})
		}
	}
}

// TestOpenFileBlobsURL checks the names of a blob directory: a plain path
// and a file:// URL open the same directory, anything else is refused.
func TestOpenFileBlobsURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node-12.blobs")
	for _, name := range []string{dir, "file://" + filepath.ToSlash(dir)} {
		b, err := archive.OpenFileBlobsURL(name)
		if err != nil {
			t.Fatalf("OpenFileBlobsURL(%q): %v", name, err)
		}
		if b.Dir() != dir {
			t.Errorf("OpenFileBlobsURL(%q).Dir() = %q, want %q", name, b.Dir(), dir)
		}
	}
	if _, err := archive.OpenFileBlobsURL("s3://bucket"); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("OpenFileBlobsURL(s3://bucket) error = %v, want EINVALID", err)
	}
}
