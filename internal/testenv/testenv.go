// Package testenv has helpers for tests that need external programs: the
// PostgreSQL server, Chromium, and the DICOM tools that serve as test peers
// and oracles (DCMTK, Orthanc, dicom3tools, pydicom, GDCM).
//
// A test that needs something missing is skipped with a message that says how
// to get it, so that `go test ./...` runs anywhere. When the environment
// variable BILDRUM_REQUIRE_EXTERNAL is 1, as `make test` and CI set it, the
// test fails instead, so that a broken test environment cannot pass as a
// green run of skipped tests.
//
// `make test` (scripts/test.sh) installs the Debian packages, starts a private
// PostgreSQL server and sets BILDRUM_TEST_POSTGRES to its address.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvRequireExternal, when set to 1, turns a skip for a missing program
	// or server into a failure.
	EnvRequireExternal = "BILDRUM_REQUIRE_EXTERNAL"

	// EnvPostgres holds the URL of a PostgreSQL server on which the tests
	// may create and drop databases, for example
	// postgres://bildrum@127.0.0.1:54321/postgres?sslmode=disable.
	EnvPostgres = "BILDRUM_TEST_POSTGRES"
)

// BrowserTimeout bounds the life of the browser of one test that calls
// BrowserContext: a hung page then fails the test, and does not hold the
// whole suite until the go test timeout.
const BrowserTimeout = 60 * time.Second

// Required reports whether missing external programs fail tests rather than
// skip them, that is whether BILDRUM_REQUIRE_EXTERNAL is 1.
func Required() bool {
	return os.Getenv(EnvRequireExternal) == "1"
}

// Unavailable ends the test because something it needs from outside the
// module is missing: it fails when Required, and skips otherwise. The
// message says what is missing; Unavailable adds how to get it.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1, so this fails instead of skipping; `make test` run as root installs the test programs, see scripts/test.sh)", msg, EnvRequireExternal)
	}
	t.Skipf("%s; run `make test`, which installs and starts what the tests need", msg)
}

// RequireExternal returns the path of program, a name looked up in PATH or
// an absolute path. When the program is missing the test is skipped, or
// fails when Required.
//
// Names are also looked up in /usr/sbin and /sbin, which are not in the PATH
// of ordinary users on Debian but hold some of our peers (Orthanc).
func RequireExternal(t testing.TB, program string) string {
	t.Helper()
	if path, err := lookPath(program); err == nil {
		return path
	}
	Unavailable(t, "%s is not installed", program)
	return ""
}

func lookPath(program string) (string, error) {
	path, err := exec.LookPath(program)
	if err == nil || strings.ContainsRune(program, filepath.Separator) {
		return path, err
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, program)); err == nil {
			return p, nil
		}
	}
	return "", err
}

// RequirePythonModule returns the path of Debian's /usr/bin/python3 after
// checking that it can import module (such as "pydicom"). Debian's Python
// packages are installed for that interpreter only, not for a python3 that
// comes first in PATH (pyenv, a virtualenv).
func RequirePythonModule(t testing.TB, module string) string {
	t.Helper()
	python := RequireExternal(t, "/usr/bin/python3")
	out, err := exec.Command(python, "-c", "import "+module).CombinedOutput()
	if err != nil {
		Unavailable(t, "python module %s is not installed for %s: %v\n%s", module, python, err, out)
	}
	return python
}

// Chromium returns the path of a Chromium or Chrome binary.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	Unavailable(t, "chromium is not installed")
	return ""
}

// Postgres creates a database of its own for the test on the server named by
// BILDRUM_TEST_POSTGRES, drops it when the test ends, and returns its URL.
// Without BILDRUM_TEST_POSTGRES the test is skipped, or fails when Required.
// A server that is named but cannot be reached always fails the test.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		Unavailable(t, "%s is not set, so there is no PostgreSQL server to test against", EnvPostgres)
		return ""
	}
	name := databaseName(t.Name())
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s on %s: %v", name, redact(admin), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the connections a test left open (a pool not
		// closed), which would otherwise block the drop.
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return dsn
}

// adminExec runs one statement on a connection of its own. CREATE and DROP
// DATABASE cannot run inside a transaction, and a single Exec without
// arguments is sent as a simple query, which does not open one.
func adminExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// by the server, which could make two tests share a database.
const maxIdentifier = 63

// databaseName returns a fresh database name for the test: its name in lower
// case with anything but letters and digits turned into _, cut to fit, and a
// random suffix.
func databaseName(testName string) string {
	var suffix [5]byte
	rand.Read(suffix[:])
	tail := "_" + hex.EncodeToString(suffix[:])
	var b strings.Builder
	b.WriteString("t_")
	underscore := true // no leading or doubled _
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			underscore = false
		} else if !underscore {
			b.WriteByte('_')
			underscore = true
		}
	}
	base := strings.TrimRight(b.String(), "_")
	if max := maxIdentifier - len(tail); len(base) > max {
		base = strings.TrimRight(base[:max], "_")
	}
	return base + tail
}

// withDatabase returns dsn with its database replaced by name. It accepts
// both forms that pgx and libpq accept: a URL and keyword=value pairs.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// A later keyword overrides an earlier one.
	return dsn + " dbname=" + name, nil
}

// redact hides a password in a URL for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// BrowserContext starts a headless Chromium for the test and returns a
// chromedp context for a tab in it. The browser is stopped, and its profile
// deleted, when the test ends, or after BrowserTimeout, whichever comes first.
//
// Messages that the page logs as errors, and uncaught exceptions, are written
// to the test log. A test that must not see any should check them itself with
// chromedp.Console.
func BrowserContext(t testing.TB) context.Context {
	t.Helper()
	execPath := Chromium(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		// Tests run as root in CI, and Chromium refuses to start as root
		// with its sandbox on.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// /dev/shm is small in containers.
		chromedp.Flag("disable-dev-shm-usage", true),
		// The test network is closed: no update checks, sync, or QUIC
		// probes that wait for answers that never come.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(1280, 1024),
	)
	var output LockedBuffer
	opts = append(opts, chromedp.CombinedOutput(&output))

	ctx, cancelTimeout := context.WithTimeout(context.Background(), BrowserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx,
		chromedp.WithErrorf(func(format string, args ...any) {
			t.Logf("chromedp: "+format, args...)
		}))

	var logging sync.WaitGroup
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		logging.Wait() // no t.Logf after the test has ended
	})

	// Start the browser now, so that a browser that cannot start fails
	// here, with its output, and not in the first action of the test.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v\nbrowser output:\n%s", execPath, err, output.String())
	}

	messages := chromedp.Console(browserCtx)
	logging.Go(func() {
		for m, err := range messages {
			if err != nil {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					t.Logf("browser console: %v", err)
				}
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				t.Logf("browser console %s", consoleLine(m))
			}
		}
	})
	return browserCtx
}

func consoleLine(m chromedp.ConsoleMessage) string {
	if m.URL == "" {
		return m.String()
	}
	// Lines count from 0 in the protocol, from 1 for people.
	return fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1)
}

// LockedBuffer collects the output of a process that tests start (a
// browser, a server), which is written from another goroutine while the
// test may read it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
