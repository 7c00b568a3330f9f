package archive_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/sqlstore"
)

// ingestBytes spools data into s and ingests it under the key of its SHA-256,
// which it returns.
func ingestBytes(t *testing.T, s archive.BlobStore, data []byte) string {
	t.Helper()
	f, err := s.Spool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	key := archive.ObjectKey(sum(data))
	if err := s.Ingest(context.Background(), key, f); err != nil {
		t.Fatalf("Ingest(%s, %d bytes) = %v", key, len(data), err)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("Ingest(%s) left its spool file %s (stat: %v)", key, f.Name(), err)
	}
	return key
}

// readBlob reads and closes what an Open returns.
func readBlob(rc io.ReadCloser, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestS3BlobStore runs the BlobStore contract on s3:// against s3rver:
// objects of every size (an empty one, a small one, and one above the SDK's
// multipart threshold of 16 MiB) come back byte for byte, whole and in
// ranges; Walk lists exactly the archive's objects and the spool's leftover
// files, and nothing outside the archive's key space; a deleted or missing
// object is ENOTFOUND.
func TestS3BlobStore(t *testing.T) {
	srv := archivetest.S3rver(t, "bildrum-test")
	ctx := context.Background()
	spool := filepath.Join(t.TempDir(), "node-12.spool")
	s, err := archive.OpenBucketBlobs(ctx, srv.URL, spool)
	if err != nil {
		t.Fatalf("OpenBucketBlobs(%s) = %v", srv.URL, err)
	}
	defer s.Close()

	big := make([]byte, 17<<20+12345)
	rand.Read(big)
	objects := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("DICM and a few bytes")},
		{"multipart", big},
	}
	var keys []string
	for _, o := range objects {
		t.Run(o.name, func(t *testing.T) {
			key := ingestBytes(t, s, o.data)
			keys = append(keys, key)
			if got, err := readBlob(s.Open(ctx, key)); err != nil || !bytes.Equal(got, o.data) {
				t.Fatalf("Open(%s) = %d bytes (sha256 %s), %v; want the %d bytes ingested (sha256 %s)", key, len(got), sum(got), err, len(o.data), sum(o.data))
			}
			n := int64(len(o.data))
			for _, r := range []struct{ off, n int64 }{{0, n}, {0, 1}, {n / 3, n / 2}, {n - 1, 1}, {n / 2, -1}} {
				if n == 0 || r.off >= n {
					continue
				}
				want := o.data[r.off:]
				if r.n >= 0 {
					want = want[:r.n]
				}
				if got, err := readBlob(s.OpenRange(ctx, key, r.off, r.n)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("OpenRange(%s, %d, %d) = %d bytes, %v; want the %d bytes there", key, r.off, r.n, len(got), err, len(want))
				}
			}
		})
	}
	// Ingesting a key again (a second copy of the same instance) replaces
	// the object with the same bytes.
	ingestBytes(t, s, objects[1].data)

	// A small object taken from memory: uploaded by its sync, from a copy.
	small := []byte("DICM from memory")
	smallKey := archive.ObjectKey(sum(small))
	sync, err := s.Write(ctx, smallKey, small)
	if err != nil {
		t.Fatalf("Write(%s) = %v", smallKey, err)
	}
	want := bytes.Clone(small)
	copy(small, "XXXX") // the caller reuses its buffer
	if _, err := s.Open(ctx, smallKey); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
		t.Errorf("Open(%s) before sync = %v, want %s: nothing is sent before sync", smallKey, err, bildrum.ENOTFOUND)
	}
	if err := sync(); err != nil {
		t.Fatalf("sync of Write(%s) = %v", smallKey, err)
	}
	if got, err := readBlob(s.Open(ctx, smallKey)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Open(%s) after Write = %q, %v; want %q", smallKey, got, err, want)
	}
	keys = append(keys, smallKey)

	// An object outside the archive's key space, as another user of a
	// shared bucket keeps, and a spool file a crash left behind.
	foreign, err := s.Spool()
	if err != nil {
		t.Fatal(err)
	}
	foreign.WriteString("not the archive's")
	if err := s.Ingest(ctx, "reports/2024.csv", foreign); err != nil {
		t.Fatal(err)
	}
	leftover, err := s.Spool()
	if err != nil {
		t.Fatal(err)
	}
	leftover.WriteString("half an instance")
	leftover.Close()
	if filepath.Dir(leftover.Name()) != spool {
		t.Errorf("Spool() = %s, want a file in the spool directory %s", leftover.Name(), spool)
	}

	var walked, spooled []string
	err = s.Walk(ctx, func(key, spoolFile string, mod time.Time) error {
		if mod.IsZero() {
			t.Errorf("Walk: %q%q has no modification time", key, spoolFile)
		}
		if key != "" {
			walked = append(walked, key)
		} else {
			spooled = append(spooled, spoolFile)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk = %v", err)
	}
	slices.Sort(walked)
	slices.Sort(keys)
	if !slices.Equal(walked, keys) {
		t.Errorf("Walk found objects %q, want %q (the archive's, not reports/2024.csv)", walked, keys)
	}
	if !slices.Equal(spooled, []string{leftover.Name()}) {
		t.Errorf("Walk found spool files %q, want [%s]", spooled, leftover.Name())
	}

	for _, key := range keys {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%s) = %v", key, err)
		}
		if _, err := s.Open(ctx, key); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("Open(%s) after Delete = %v, want a %s error", key, err, bildrum.ENOTFOUND)
		}
	}
	missing := archive.ObjectKey(sum([]byte("never stored")))
	if _, err := s.OpenRange(ctx, missing, 10, 10); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
		t.Errorf("OpenRange(%s) of a missing object = %v, want a %s error", missing, err, bildrum.ENOTFOUND)
	}
	if err := s.Delete(ctx, missing); err != nil {
		t.Errorf("Delete(%s) of a missing object = %v, want nil", missing, err)
	}
}

// TestS3ArchiveSweep stores an instance in an archive on s3:// and reads it
// back byte for byte, then reopens the store over the same spool directory
// as a node restarted after a crash does: Sweep removes the spool file the
// crash left and an object no index entry names, and keeps the instance.
func TestS3ArchiveSweep(t *testing.T) {
	srv := archivetest.S3rver(t, "bildrum-sweep")
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spool := filepath.Join(dir, "node.spool")
	blobs, err := archive.OpenBucketBlobs(ctx, srv.URL, spool)
	if err != nil {
		t.Fatal(err)
	}
	a := archive.New(db, blobs)
	file := archivetest.Mammogram(&archivetest.Image{Rows: 64, Columns: 48})
	in, err := a.Store(ctx, bytes.NewReader(file))
	if err != nil {
		t.Fatalf("Store = %v", err)
	}
	if got, err := readBlob(a.Open(ctx, in)); err != nil || !bytes.Equal(got, file) {
		t.Fatalf("Open(stored instance) = %d bytes, %v; want the %d stored", len(got), err, len(file))
	}
	orphan := ingestBytes(t, blobs, []byte("an object whose index entry never committed"))
	crashed, err := blobs.Spool()
	if err != nil {
		t.Fatal(err)
	}
	crashed.Close()
	blobs.Close()
	if _, err := os.Stat(crashed.Name()); err != nil {
		t.Fatalf("Close removed the spool directory's files (%v): a node's spool must outlive the process", err)
	}

	blobs, err = archive.OpenBucketBlobs(ctx, srv.URL, spool)
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	a = archive.New(db, blobs)
	a.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	removed, err := a.Sweep(ctx, time.Hour)
	if err != nil || removed != 2 {
		t.Errorf("Sweep = %d, %v; want 2 removed (the orphan object and the spool file)", removed, err)
	}
	if _, err := os.Stat(crashed.Name()); !os.IsNotExist(err) {
		t.Errorf("spool file %s after Sweep: %v, want it removed", crashed.Name(), err)
	}
	if _, err := blobs.Open(ctx, orphan); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
		t.Errorf("Open(orphan) after Sweep = %v, want %s", err, bildrum.ENOTFOUND)
	}
	if got, err := readBlob(a.Open(ctx, in)); err != nil || !bytes.Equal(got, file) {
		t.Errorf("Open(stored instance) after Sweep = %d bytes, %v; want the %d stored", len(got), err, len(file))
	}
}

// TestS3OpenErrors checks that a blob store URL that cannot work fails
// when the store is opened, with a message that says what to change.
func TestS3OpenErrors(t *testing.T) {
	srv := archivetest.S3rver(t, "bildrum-errors")
	// A loopback port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name  string
		url   string
		env   map[string]string
		code  string
		words []string // the message must say these
	}{
		{"unknown scheme", "gs://bucket", nil, bildrum.EINVALID, []string{"not gs://", "s3://bucket?region="}},
		{"no bucket", "s3://?region=us-east-1", nil, bildrum.EINVALID, []string{"no bucket", "s3://BUCKET"}},
		{"path in URL", "s3://bucket/dir?region=us-east-1", nil, bildrum.EINVALID, []string{"prefix=dir/"}},
		{"one key", srv.URL + "&key=x", nil, bildrum.EINVALID, []string{"key parameter"}},
		{"unknown parameter", srv.URL + "&endpoint_url=x", nil, bildrum.EINVALID, []string{`"endpoint_url"`, "use_path_style"}},
		{"bad boolean", srv.URL + "&disable_https=maybe", nil, bildrum.EINVALID, []string{"disable_https"}},
		{"missing bucket", srv.BucketURL("no-such-bucket"), nil, bildrum.EINVALID, []string{"no-such-bucket does not exist", srv.Endpoint, "create it"}},
		// s3rver checks the access key's id but not V4 signatures, so a
		// wrong secret cannot be tested against it; an unknown id is the
		// refusal (InvalidAccessKeyId) AWS gives as well.
		{"unknown key id", srv.URL, map[string]string{"AWS_ACCESS_KEY_ID": "NOBODY"}, bildrum.EINVALID, []string{"refused the credentials", "InvalidAccessKeyId"}},
		{"no credentials", srv.URL, map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, bildrum.EINVALID, []string{"no credentials", "AWS_ACCESS_KEY_ID"}},
		{"no region", strings.Replace(srv.URL, "&region=us-east-1", "", 1), nil, bildrum.EINVALID, []string{"no region", "region="}},
		{"unreachable", "s3://bildrum-errors?endpoint=" + closed + "&use_path_style=true&region=us-east-1", nil, bildrum.EUNAVAILABLE, []string{"cannot reach " + closed, "endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := archive.OpenBlobs(context.Background(), tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("OpenBlobs(%q) = nil error, want %s", tt.url, tt.code)
			}
			msg := bildrum.ErrorMessage(err)
			t.Logf("OpenBlobs(%q) says: %s", tt.url, msg)
			if code := bildrum.ErrorCode(err); code != tt.code {
				t.Errorf("OpenBlobs(%q) = %v, want code %s", tt.url, err, tt.code)
			}
			for _, w := range tt.words {
				if !strings.Contains(msg, w) {
					t.Errorf("OpenBlobs(%q) says %q, want it to say %q", tt.url, msg, w)
				}
			}
			if strings.Contains(msg, "S3RVER") {
				t.Errorf("OpenBlobs(%q) says %q: it must not show credentials", tt.url, msg)
			}
		})
	}
}

// TestS3RangeIgnored checks OpenRange against a fake S3 service that
// answers range requests with the whole object, as HTTP allows a server
// to: reading from the start it must cut the object to the bytes asked
// for, and reading from further in it must fail, never return the
// object's first bytes as if they were the range.
func TestS3RangeIgnored(t *testing.T) {
	archivetest.IsolateAWS(t)
	object := []byte("0123456789abcdefghij")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/bucket" && r.URL.Query().Get("list-type") == "2":
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/bucket/"):
			w.Write(object) // 200 and the whole object, whatever the Range
		default:
			http.Error(w, "not in this fake", http.StatusNotImplemented)
		}
	}))
	defer srv.Close()
	s, err := archive.OpenBucketBlobs(context.Background(), "s3://bucket?endpoint="+srv.URL+"&use_path_style=true&region=us-east-1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := archive.ObjectKey(sum(object))
	tests := []struct {
		off, n int64
		want   string // "" for an error
	}{
		{0, -1, string(object)},
		{0, 4, "0123"},
		{5, 3, ""},
		{5, -1, ""},
	}
	for _, tt := range tests {
		got, err := readBlob(s.OpenRange(context.Background(), key, tt.off, tt.n))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("OpenRange(%d, %d) = %q, want an error: the service sent the object from its start", tt.off, tt.n, got)
		case tt.want != "" && (err != nil || string(got) != tt.want):
			t.Errorf("OpenRange(%d, %d) = %q, %v; want %q", tt.off, tt.n, got, err, tt.want)
		}
	}
}
