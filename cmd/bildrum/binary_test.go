package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this test binary as the bildrum command itself,
// so the binary is tested as a user runs it without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("BILDRUM_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// bildrumCommand returns the bildrum command line, run as a process.
func bildrumCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BILDRUM_TEST_RUN_MAIN=1")
	return cmd
}

// TestBinaryDemoServesAndStopsOnSignal runs `bildrum demo` as a process,
// waits until it says where it listens, loads the first page, and stops it
// with SIGINT and then SIGTERM: each must end it cleanly, exit code 0.
func TestBinaryDemoServesAndStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := bildrumCommand(t, "demo", "-images", "2", "-data", dir, "-addr", "127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			// The demo prints its endpoints once everything listens.
			sc := bufio.NewScanner(stdout)
			ready := false
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
					ready = true
					break
				}
			}
			if !ready {
				cmd.Wait()
				t.Fatalf("demo never said it was ready; stderr:\n%s", stderr.String())
			}
			go func() {
				for sc.Scan() {
				}
			}()
			var e Endpoints
			raw, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
			if err != nil || json.Unmarshal(raw, &e) != nil {
				t.Fatalf("endpoints.json: %v", err)
			}
			resp, err := http.Get(e.Hub.Web + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET / = %d, want 200", resp.StatusCode)
			}

			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("demo after %v: %v; stderr:\n%s", sig, err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("demo did not stop within 30s of %v", sig)
			}
			if _, err := http.Get(e.Hub.Web + "/"); err == nil {
				t.Errorf("hub still answers after the demo stopped")
			}
			// The databases were closed cleanly: no WAL left to recover.
			if wal, _ := filepath.Glob(filepath.Join(dir, "*.db-wal")); len(wal) > 0 {
				if fi, err := os.Stat(wal[0]); err == nil && fi.Size() > 0 {
					t.Errorf("%s left with %d bytes: databases not closed cleanly", wal[0], fi.Size())
				}
			}
		})
	}
}
