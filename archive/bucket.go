package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/bildrum/bildrum"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob" // s3://bucket?region=…&endpoint=…
	"gocloud.dev/gcerrors"
)

// s3Params are the query parameters of an s3:// URL that gocloud.dev v0.47.0
// understands (gocloud.dev/aws.V2ConfigFromURLParams, s3blob.URLOpener, and
// blob's own prefix), listed in the message for an unknown one. blob's key
// parameter, which would put every object under one key, is refused.
const s3Params = "region, endpoint, use_path_style (or s3ForcePathStyle), disable_https, hostname_immutable, " +
	"profile, anonymous, role, fips, dualstack, accelerate, ssetype, kmskeyid, rate_limiter_capacity, " +
	"request_checksum_calculation, response_checksum_validation, prefix"

// bucketCheckTimeout bounds the check, when a bucket is opened, that it
// exists and takes the credentials: a service that does not answer then
// fails the start with a message, rather than the first store request.
const bucketCheckTimeout = 30 * time.Second

// BucketBlobs is a BlobStore in object storage (s3://), through
// gocloud.dev/blob. Objects are received into files in a local spool
// directory and uploaded whole by Ingest; an upload that returns without
// error has been acknowledged by the service, which is what makes it
// durable there. A failed upload leaves no object: S3 makes an object
// visible only when its upload completed.
type BucketBlobs struct {
	b       *blob.Bucket
	url     string // for messages, without credentials
	spool   string
	ownTemp bool // spool is a temporary directory of this process, removed by Close
}

// openBucket opens object storage for OpenBlobs, which has no local
// directory to give: the spool is a temporary directory of the process.
func openBucket(ctx context.Context, rawURL string) (BlobStore, error) {
	return OpenBucketBlobs(ctx, rawURL, "")
}

// OpenBucketBlobs opens the object storage named by rawURL, an s3:// URL
// with the query parameters of gocloud.dev's s3blob (docs/deploy.md), and
// checks that the bucket exists and takes the credentials, so that a bad
// configuration fails here with a message saying what to change.
// Credentials come from the AWS SDK's usual sources: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, web
// identity, and (unless AWS_EC2_METADATA_DISABLED=true) the EC2 instance
// role.
//
// spool is the local directory that receives objects before their upload
// (created if missing). It should be on the node's own disk, not in /tmp:
// files left there by a crash are found again by Walk and removed by
// Archive.Sweep at the next start. An empty spool means a temporary
// directory of this process, removed by Close.
func OpenBucketBlobs(ctx context.Context, rawURL, spool string) (*BucketBlobs, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store URL %q: %v: write a directory, file:///path/to/dir or s3://bucket?region=…", rawURL, err)
	}
	name := rawURL
	if _, secret := u.User.Password(); secret {
		name = u.Redacted()
	}
	switch {
	case u.Scheme != s3blob.Scheme:
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: bildrum keeps objects in a directory (file:///path/to/dir) or in S3-compatible object storage (s3://bucket?region=…), not %s://", name, u.Scheme)
	case u.Host == "":
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: no bucket: write s3://BUCKET?region=…", name)
	case u.User != nil:
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, in the environment", name)
	case u.Path != "" && u.Path != "/":
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: an s3:// URL names a bucket, not a path in it: write s3://%s?prefix=%s/ to keep the objects under a prefix", name, u.Host, strings.Trim(u.Path, "/"))
	case u.Query().Has("key"):
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: the key parameter would keep every object under one key: remove it (prefix=dir/ keeps the objects under a prefix)", name)
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		msg := strings.TrimPrefix(sdkCause(err).Error(), "open bucket "+u.String()+": ")
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: %s (the parameters of s3:// URLs are %s)", name, msg, s3Params)
	}
	// Without a region the SDK signs for none, which an S3-compatible
	// service behind an endpoint may take but AWS refuses.
	var client *s3.Client
	if b.As(&client) && client.Options().Region == "" {
		b.Close()
		return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %s: no region: add region=… to the URL (e.g. region=eu-north-1, or us-east-1 for most S3-compatible services), or set AWS_REGION", name)
	}
	checkCtx, cancel := context.WithTimeout(ctx, bucketCheckTimeout)
	ok, err := b.IsAccessible(checkCtx)
	cancel()
	if err == nil && !ok {
		err = bildrum.Errorf(bildrum.EINVALID, "blob store %s: the bucket %s does not exist at %s: create it (aws s3 mb s3://%s), or correct the bucket's name or the endpoint", name, u.Host, endpointOf(u), u.Host)
	} else if err != nil {
		err = bucketError(name, u, err)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	s := &BucketBlobs{b: b, url: name, spool: spool}
	if spool == "" {
		s.ownTemp = true
		s.spool, err = os.MkdirTemp("", "bildrum-spool-")
	} else {
		err = os.MkdirAll(spool, 0o700)
	}
	if err != nil {
		b.Close()
		return nil, bildrum.Errorf(bildrum.EINVALID, "cannot create the blob spool directory %s (%v): choose another", spool, errors.Unwrap(err))
	}
	return s, nil
}

// bucketError turns an error of the object storage service into one that
// says what was wrong and what to do about it.
func bucketError(name string, u *url.URL, err error) error {
	var api interface {
		ErrorCode() string
		ErrorMessage() string
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &api):
		switch code := api.ErrorCode(); code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "ExpiredToken",
			"InvalidToken", "TokenRefreshRequired", "AllAccessDisabled":
			return bildrum.Errorf(bildrum.EINVALID, "blob store %s: %s refused the credentials (%s: %s): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to an identity that may list, read, write and delete objects in the bucket %s", name, endpointOf(u), code, api.ErrorMessage(), u.Host)
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			return bildrum.Errorf(bildrum.EINVALID, "blob store %s: the bucket %s is in another region (%s: %s): set region= to the bucket's region", name, u.Host, code, api.ErrorMessage())
		default:
			return bildrum.Errorf(bildrum.EUNAVAILABLE, "blob store %s: %s answered %s: %s", name, endpointOf(u), code, api.ErrorMessage())
		}
	case gcerrors.Code(err) == gcerrors.PermissionDenied:
		return bildrum.Errorf(bildrum.EINVALID, "blob store %s: %s refused the credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to an identity that may list, read, write and delete objects in the bucket %s", name, endpointOf(u), u.Host)
	case strings.Contains(err.Error(), "get identity") || strings.Contains(err.Error(), "retrieve credentials"):
		// The SDK's credential chain found nothing (before the network
		// cases: its last source is the EC2 metadata service, whose dial
		// errors are not the endpoint's). Its error types are internal,
		// so the message is all there is to go on.
		return bildrum.Errorf(bildrum.EINVALID, "blob store %s: no credentials for the object storage (%v): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared config file, or add anonymous=true for a public bucket", name, sdkCause(err))
	case errors.As(err, &dns):
		return bildrum.Errorf(bildrum.EUNAVAILABLE, "blob store %s: cannot reach %s (%v): check the endpoint parameter and the name service", name, endpointOf(u), dns)
	case errors.As(err, &op):
		return bildrum.Errorf(bildrum.EUNAVAILABLE, "blob store %s: cannot reach %s (%v): check the endpoint parameter and that the service is up and reachable from this machine", name, endpointOf(u), op)
	case errors.Is(err, context.DeadlineExceeded):
		return bildrum.Errorf(bildrum.EUNAVAILABLE, "blob store %s: %s did not answer within %v: check the endpoint parameter and that the service is up and reachable from this machine", name, endpointOf(u), bucketCheckTimeout)
	}
	return bildrum.Errorf(bildrum.EUNAVAILABLE, "blob store %s: %v", name, sdkCause(err))
}

// endpointOf names the service a URL goes to, for messages.
func endpointOf(u *url.URL) string {
	if e := u.Query().Get("endpoint"); e != "" {
		return e
	}
	return "Amazon S3"
}

// sdkCause strips the layers gocloud.dev and the AWS SDK put around an
// error, "blob (code=Unknown)" and "operation error S3: ListObjectsV2",
// leaving the SDK's own account of what went wrong.
func sdkCause(err error) error {
	for {
		switch e := err.(type) {
		case interface{ Unwrap() []error }: // gocloud.dev's: the error it wraps comes first
			if errs := e.Unwrap(); len(errs) > 0 && errs[0] != nil {
				err = errs[0]
				continue
			}
		case interface {
			Service() string
			Operation() string
			Unwrap() error
		}: // smithy.OperationError
			if next := e.Unwrap(); next != nil {
				err = next
				continue
			}
		}
		return err
	}
}

// Spool returns a new file in the spool directory.
func (s *BucketBlobs) Spool() (*os.File, error) {
	f, err := os.CreateTemp(s.spool, "rx-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// Ingest uploads f under key and removes it. It returns nil only when the
// service has acknowledged the whole object.
func (s *BucketBlobs) Ingest(ctx context.Context, key string, f *os.File) error {
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	if err := s.b.Upload(ctx, key, f, &blob.WriterOptions{ContentType: "application/dicom"}); err != nil {
		return fmt.Errorf("ingest %s into %s: %w", key, s.url, err)
	}
	return nil
}

// Write takes a small object from memory (objectWriter): sync uploads a
// copy of data under key, so that an instance's upload runs while its
// index entry is prepared, without a spool file, and returns nil only when
// the service has acknowledged the whole object. Nothing is sent before
// sync; the caller may reuse data once Write has returned.
func (s *BucketBlobs) Write(ctx context.Context, key string, data []byte) (func() error, error) {
	data = bytes.Clone(data)
	return func() error {
		if err := s.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/dicom"}); err != nil {
			return fmt.Errorf("write %s into %s: %w", key, s.url, err)
		}
		return nil
	}, nil
}

// Open returns the whole object of key.
func (s *BucketBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.OpenRange(ctx, key, 0, -1)
}

// OpenRange returns n bytes of the object from off (n < 0: to its end).
// It checks the range the service answers with and returns no more than
// asked for: HTTP lets a server ignore a range (RFC 9110 §14.2), and
// returning the object's first bytes for a frame further in would be wrong
// pixel data, not an error.
func (s *BucketBlobs) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	r, err := s.b.NewRangeReader(ctx, key, off, n, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "the object %s of an indexed instance is missing from the blob store", key)
	} else if err != nil {
		return nil, fmt.Errorf("open blob %s in %s: %w", key, s.url, err)
	}
	if n == 0 || (off == 0 && n < 0) { // nothing to check: no bytes, or all of them
		return r, nil
	}
	var out s3.GetObjectOutput
	if off > 0 && r.As(&out) {
		if start, ok := contentRangeStart(aws.ToString(out.ContentRange)); !ok || start != off {
			r.Close()
			return nil, fmt.Errorf("open blob %s in %s: asked for the bytes from %d, the service answered with Content-Range %q", key, s.url, off, aws.ToString(out.ContentRange))
		}
	}
	if n < 0 {
		return r, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(r, n), r}, nil
}

// contentRangeStart returns the first byte position of a Content-Range
// header's value, "bytes FIRST-LAST/LENGTH" (RFC 9110 §14.4).
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	return start, err == nil
}

// Delete removes the object of key; a missing object is no error.
func (s *BucketBlobs) Delete(ctx context.Context, key string) error {
	if err := s.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete blob %s in %s: %w", key, s.url, err)
	}
	return nil
}

// Walk calls fn for every object of the archive's key space (sha256/…) and
// for every spool file. Objects under other keys are not the archive's and
// are left out, so that Sweep never deletes what others keep in a shared
// bucket.
func (s *BucketBlobs) Walk(ctx context.Context, fn func(key, spool string, modTime time.Time) error) error {
	it := s.b.List(&blob.ListOptions{Prefix: "sha256/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("list blobs in %s: %w", s.url, err)
		}
		if obj.IsDir {
			continue
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
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // ingested meanwhile
		} else if err != nil {
			return fmt.Errorf("list spool: %w", err)
		}
		if err := fn("", filepath.Join(s.spool, e.Name()), info.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the bucket, and removes the spool directory when it is a
// temporary one of this process.
func (s *BucketBlobs) Close() error {
	if s.ownTemp {
		os.RemoveAll(s.spool)
	}
	return s.b.Close()
}
