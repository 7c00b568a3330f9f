package dicomweb_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/dicomweb"
)

// withBucket makes a test node's archive keep its objects in the object
// storage of rawURL instead of its blob directory, with its spool in dir,
// and returns the store.
func withBucket(t *testing.T, rawURL, spool string, store *archive.BlobStore) nodeOption {
	return func(cfg *dicomweb.Config) {
		b, err := archive.OpenBucketBlobs(context.Background(), rawURL, spool)
		if err != nil {
			t.Fatalf("OpenBucketBlobs(%s) = %v", rawURL, err)
		}
		t.Cleanup(func() { b.Close() })
		*store = b
		cfg.Archive = archive.New(cfg.Archive.Index(), b)
	}
}

// objectKeys returns the keys of a blob store's objects, sorted.
func objectKeys(t *testing.T, s archive.BlobStore) []string {
	t.Helper()
	var keys []string
	err := s.Walk(context.Background(), func(key, spool string, _ time.Time) error {
		if key != "" {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk = %v", err)
	}
	slices.Sort(keys)
	return keys
}

// TestS3StowQidoWado stores a study through DICOMweb in a node whose
// archive is on s3:// (s3rver), finds it with QIDO-RS and retrieves it
// with WADO-RS byte for byte; the objects are in the bucket under their
// SHA-256, and none in the node's blob directory. An object missing from
// the bucket is an error, never other bytes; while the object storage is
// down, STOW-RS refuses every instance and indexes none.
func TestS3StowQidoWado(t *testing.T) {
	srv := archivetest.S3rver(t, "bildrum-node-12")
	ctx := context.Background()
	var store archive.BlobStore
	n := newNode(t, "", withBucket(t, srv.URL, filepath.Join(t.TempDir(), "node.spool"), &store))

	files := study(anna, 128, 96)
	res, err := n.client.Store(ctx, "", files...)
	if err != nil || res.Status != http.StatusOK || len(res.Referenced) != 4 || len(res.Failed) != 0 {
		t.Fatalf("Store = %+v, %v; want 200 and 4 stored", res, err)
	}
	var want []string
	for _, f := range files {
		want = append(want, archive.ObjectKey(sha(f)))
	}
	slices.Sort(want)
	if got := objectKeys(t, store); !slices.Equal(got, want) {
		t.Errorf("bucket holds %q, want the 4 instances' keys %q", got, want)
	}
	if got := objectKeys(t, n.blobs); len(got) != 0 {
		t.Errorf("the node's blob directory holds %q, want nothing: the archive is on s3://", got)
	}

	studyUID, seriesUID, sop0 := uidOf(t, files[0])
	studies, err := n.client.Search(ctx, "studies", url.Values{"PatientID": {anna}})
	if err != nil || len(studies) != 1 || studies[0]["0020000D"].Value[0] != studyUID || studies[0]["00201208"].Value[0] != float64(4) {
		t.Fatalf("Search(studies, PatientID=%s) = %v, %v; want study %s with 4 instances", anna, studies, err, studyUID)
	}
	parts, err := n.client.Retrieve(ctx, "studies/"+studyUID)
	if err != nil || len(parts) != 4 {
		t.Fatalf("Retrieve(study) = %d parts, %v; want 4", len(parts), err)
	}
	for i := range files {
		if !bytes.Equal(parts[i], files[i]) {
			t.Errorf("Retrieve(study) part %d: SHA-256 %s, want %s (the bytes stored)", i, sha(parts[i]), sha(files[i]))
		}
	}
	inst := "studies/" + studyUID + "/series/" + seriesUID + "/instances/" + sop0
	frames, err := n.client.RetrieveFrames(ctx, inst+"/frames/1")
	if wantFrame := files[0][len(files[0])-128*96*2:]; err != nil || len(frames) != 1 || !bytes.Equal(frames[0], wantFrame) {
		t.Errorf("RetrieveFrames(%s/frames/1) = %d frames, %v; want the %d bytes of pixel data stored", inst, len(frames), err, len(wantFrame))
	}
	if md, err := n.client.Metadata(ctx, inst); err != nil || len(md) != 1 || md[0]["00080018"].Value[0] != sop0 {
		t.Errorf("Metadata(%s) = %v, %v; want the instance's", inst, md, err)
	}

	// An indexed instance whose object is gone from the bucket.
	if err := store.Delete(ctx, archive.ObjectKey(sha(files[0]))); err != nil {
		t.Fatal(err)
	}
	resp := n.request("GET", "/"+inst, "radiologist", http.Header{"Accept": {`multipart/related; type="application/dicom"`}}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s without its object: status %d, want 404", inst, resp.StatusCode)
	}

	// The object storage goes down: nothing can be made durable, so
	// nothing is acknowledged or indexed.
	srv.Stop()
	before := n.countInstances()
	// One instance: the SDK retries each upload a few times, with backoff.
	more := study(anna, 32, 24)[:1]
	res, err = n.client.Store(ctx, "", more...)
	if err != nil {
		t.Fatalf("Store with the object storage down = %v, want a DICOM answer", err)
	}
	if res.Status != http.StatusConflict || len(res.Referenced) != 0 || len(res.Failed) != 1 {
		t.Errorf("Store with the object storage down = status %d, %d referenced, failed %v; want 409 and the instance failed", res.Status, len(res.Referenced), res.Failed)
	}
	for sop, reason := range res.Failed {
		if reason != dicomweb.FailureOutOfResources {
			t.Errorf("instance %s failed with %#x, want %#x (out of resources)", sop, reason, dicomweb.FailureOutOfResources)
		}
	}
	if got := n.countInstances(); got != before {
		t.Errorf("index holds %d instances after the failed store, want %d", got, before)
	}
}
