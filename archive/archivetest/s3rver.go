package archivetest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum/internal/testenv"
)

// S3rverDir is the npm folder of s3rver, from the module's root: npm ci
// there (as scripts/test.sh does) installs the locked version.
const S3rverDir = "archive/testdata/s3rver"

// S3rverStartTimeout bounds how long S3rver waits for the server to listen.
const S3rverStartTimeout = 60 * time.Second

// S3Server is an S3-compatible server started for one test.
type S3Server struct {
	// URL is the s3:// URL of the test's bucket, for archive.OpenBlobs.
	URL string
	// Endpoint is the server's http:// address.
	Endpoint string
	// Dir is the server's data directory.
	Dir string

	stop func()
}

// Stop ends the server before the test does, as an outage would.
func (s *S3Server) Stop() { s.stop() }

// BucketURL returns the s3:// URL of another bucket on the server, with the
// same endpoint parameters as URL.
func (s *S3Server) BucketURL(bucket string) string {
	return "s3://" + bucket + "?endpoint=" + s.Endpoint + "&use_path_style=true&region=us-east-1"
}

// S3rver starts s3rver (the npm package in S3rverDir) on a free loopback
// port, with its data in a temporary directory of the test and an empty
// bucket of the given name, and stops it when the test ends. Without node
// or without the npm package the test is skipped, or fails when
// BILDRUM_REQUIRE_EXTERNAL=1.
//
// It sets the test's environment (t.Setenv, so the test must not be
// parallel) so that the AWS SDK signs with s3rver's fixed credentials and
// reaches nothing but the server: no EC2 or container metadata service, no
// shared config files of the user who runs the tests, no endpoint from the
// environment.
func S3rver(t testing.TB, bucket string) *S3Server {
	t.Helper()
	node := testenv.RequireExternal(t, "node")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	program := filepath.Join(root, S3rverDir, "node_modules", "s3rver", "bin", "s3rver.js")
	if _, err := os.Stat(program); err != nil {
		testenv.Unavailable(t, "the npm package s3rver is not installed in %s (npm ci there, as scripts/test.sh does)", S3rverDir)
	}
	IsolateAWS(t)

	s := &S3Server{Dir: t.TempDir()}
	// --port 0: s3rver picks a free port and says which, so no other process
	// can take the port between a check and the start.
	// --openssl-legacy-provider: s3rver 3.7.1 makes list continuation
	// tokens with DES, which OpenSSL 3 (Node.js 17 and later) only has in
	// its legacy provider; without it, listing a bucket page by page fails.
	cmd := exec.Command(node, "--openssl-legacy-provider", program, "--directory", s.Dir, "--address", "127.0.0.1", "--port", "0",
		"--no-vhost-buckets", "--configure-bucket", bucket)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var output testenv.LockedBuffer // s3rver's log of requests and errors
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s3rver: %v", err)
	}
	var reading sync.WaitGroup
	s.stop = sync.OnceFunc(func() {
		cmd.Process.Kill()
		reading.Wait()
		cmd.Wait()
	})
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("s3rver output:\n%s", output.String())
		}
	})

	// s3rver prints "S3rver listening on 127.0.0.1:PORT" once it accepts
	// connections, and its bucket exists.
	addr := make(chan string, 1)
	reading.Go(func() {
		sc := bufio.NewScanner(stdout)
		listening := false
		for sc.Scan() { // to the end, so that s3rver never blocks on a full pipe
			output.Write([]byte(sc.Text() + "\n"))
			if a, ok := strings.CutPrefix(sc.Text(), "S3rver listening on "); ok && !listening {
				listening = true
				addr <- strings.TrimSpace(a)
			}
		}
		close(addr)
	})
	timer := time.NewTimer(S3rverStartTimeout)
	defer timer.Stop()
	select {
	case a, ok := <-addr:
		if !ok {
			s.stop()
			t.Fatalf("s3rver ended before it listened: %v\n%s", cmd.ProcessState, output.String())
		}
		s.Endpoint = "http://" + a
	case <-timer.C:
		t.Fatalf("s3rver did not listen within %v\n%s", S3rverStartTimeout, output.String())
	}
	s.URL = s.BucketURL(bucket)
	return s
}

// IsolateAWS sets the test's environment so that the AWS SDK finds
// s3rver's credentials (S3RVER, S3RVER) and nothing else: the EC2 and
// container metadata services are off, the shared config and credentials
// files are ones that do not exist, and profile, role, web identity and
// endpoint settings from the environment of whoever runs the tests are
// cleared.
func IsolateAWS(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "no-aws-config")
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ACCESS_KEY_ID":                      "S3RVER",
		"AWS_SECRET_ACCESS_KEY":                  "S3RVER",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_CONFIG_FILE":                        none,
		"AWS_SHARED_CREDENTIALS_FILE":            none,
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ROLE_ARN":                           "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_S3":                    "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":    "true",
	} {
		t.Setenv(k, v)
	}
}

// moduleRoot returns the directory of the module's go.mod, above the
// working directory of the test (its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}
