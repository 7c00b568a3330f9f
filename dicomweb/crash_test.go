package dicomweb_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/dicomweb"
)

// envCrashChild names the data directory of the node that the child
// process of TestStowSurvivesKill serves until it is killed.
const envCrashChild = "BILDRUM_CRASH_CHILD"

// serveUntilKilled is the node process of TestStowSurvivesKill: the same
// test binary, started again with envCrashChild set.
func serveUntilKilled(t *testing.T, dir string) {
	n := newNode(t, dir)
	fmt.Printf("READY %s %s\n", n.base, n.tokens["staff-12"])
	select {} // until SIGKILL
}

// TestStowSurvivesKill stores instances into a node in another process
// from four clients at once, kills that process with SIGKILL in the middle
// of it, and then checks on the same files that every instance the node
// acknowledged is there byte for byte, that nothing half-stored is indexed,
// and that sweeping removes only what no index entry refers to.
func TestStowSurvivesKill(t *testing.T) {
	if dir := os.Getenv(envCrashChild); dir != "" {
		serveUntilKilled(t, dir)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStowSurvivesKill$", "-test.v=false")
	cmd.Env = append(os.Environ(), envCrashChild+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 3 || fields[0] != "READY" {
		t.Fatalf("child said %q, %v; want READY URL TOKEN", line, err)
	}
	go io.Copy(io.Discard, stdout)
	client := &dicomweb.Client{BaseURL: fields[1], Token: fields[2], HTTP: &http.Client{Timeout: time.Minute}}

	var mu sync.Mutex
	acked := map[string]string{} // SOP Instance UID → SHA-256 of what was acknowledged
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				files := study(anna, 192+w*8, 160)
				res, err := client.Store(context.Background(), "", files...)
				if err != nil {
					return // the node is gone
				}
				mu.Lock()
				for _, f := range files {
					_, _, sop := uidOf(t, f)
					for _, r := range res.Referenced {
						if r == sop {
							acked[sop] = sha(f)
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	// Kill once a good number of instances are acknowledged, while the
	// clients are sending more.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling progress, not synchronising
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 4 {
		t.Fatalf("only %d instances were acknowledged before the kill", len(acked))
	}

	// Reopen the node's files in this process.
	n := newNode(t, dir)
	ctx := context.Background()
	for sop, want := range acked {
		in, err := n.db.Instance(ctx, sop)
		if err != nil {
			t.Errorf("acknowledged instance %s lost: %v", sop, err)
			continue
		}
		if got := n.objectSHA(t, in); got != want || in.Object.SHA256 != want {
			t.Errorf("acknowledged instance %s: stored SHA-256 %s (index %s), want %s", sop, got, in.Object.SHA256, want)
		}
	}
	all, _, err := n.db.SearchInstances(ctx, bildrum.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if got := n.objectSHA(t, in); got != in.Object.SHA256 {
			t.Errorf("indexed instance %s has no whole object: SHA-256 %s, want %s", in.SOPInstanceUID, got, in.Object.SHA256)
		}
	}
	removed, err := n.arch.Sweep(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if got := n.objectSHA(t, in); got != in.Object.SHA256 {
			t.Errorf("after Sweep, indexed instance %s lost its object", in.SOPInstanceUID)
		}
	}
	objects := 0
	n.blobs.Walk(ctx, func(key, spool string, _ time.Time) error {
		objects++
		return nil
	})
	if objects != len(all) {
		t.Errorf("after Sweep the blob store holds %d files for %d indexed instances", objects, len(all))
	}
	t.Logf("%d acknowledged, %d indexed after the kill, %d held objects moved at the restart, %d unreferenced files swept", len(acked), len(all), n.recovered, removed)
}

// objectSHA returns the SHA-256 of an instance's stored object, or "".
func (n *node) objectSHA(t testing.TB, in bildrum.Instance) string {
	rc, err := n.arch.Open(context.Background(), in)
	if err != nil {
		return ""
	}
	defer rc.Close()
	h := sha256.New()
	io.Copy(h, rc)
	return hex.EncodeToString(h.Sum(nil))
}
