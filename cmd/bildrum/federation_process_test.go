package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

// freeBase finds a port P such that P to P+span are all free on loopback.
func freeBase(t *testing.T, span int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+span > 65535 {
			continue
		}
		ok := true
		for p := base; p <= base+span && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free range of ports on loopback")
	return 0
}

// process is a bildrum part running as its own process.
type process struct {
	t   *testing.T
	cmd *exec.Cmd
	err strings.Builder
}

// startPart starts `bildrum args…` and waits until it prints a line
// starting with ready.
func startPart(t *testing.T, ready string, args ...string) *process {
	t.Helper()
	p := &process{t: t, cmd: bildrumCommand(t, args...)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ready) {
			go io.Copy(io.Discard, out)
			return p
		}
	}
	p.cmd.Wait()
	t.Fatalf("bildrum %v never printed %q; stderr:\n%s", args, ready, p.err.String())
	return nil
}

func overview(t *testing.T, e Endpoints) (bildrum.FederationOverview, time.Duration) {
	t.Helper()
	var ov bildrum.FederationOverview
	start := time.Now()
	if code := get(t, e.Hub.API+"/federation", e.Personas["quality"].Token, &ov); code != http.StatusOK {
		t.Fatalf("GET /api/v1/federation = %d", code)
	}
	return ov, time.Since(start)
}

func statusOf(ov bildrum.FederationOverview) map[string]string {
	out := map[string]string{}
	for _, n := range ov.Nodes {
		out[n.Region] = n.Status
	}
	return out
}

// TestSeparateProcesses runs the demo's federation as four processes from
// the files of `bildrum demo -write-config` and fails it the ways the
// federation issue names: a node killed, a node that stalls, the hub
// restarted, and a node serving its region while the hub is down.
func TestSeparateProcesses(t *testing.T) {
	dir := t.TempDir()
	base := freeBase(t, 14)
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"demo", "-images", "2", "-write-config", dir, "-addr", fmt.Sprintf("127.0.0.1:%d", base)}, &stdout, &stderr); code != exitOK {
		t.Fatalf("demo -write-config: exit %d: %s", code, stderr.String())
	}
	var e Endpoints
	raw, _ := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*process{}
	for _, r := range []string{"01", "12", "14"} {
		nodes[r] = startPart(t, "bildrum node "+r, "node", "-config", filepath.Join(dir, "config", "node-"+r+".json"))
	}
	hubArgs := []string{"hub", "-config", filepath.Join(dir, "config", "hub.json")}
	hub := startPart(t, "bildrum hub SE", hubArgs...)

	ov, _ := overview(t, e)
	if !ov.Complete || ov.Answered != 3 || ov.Women < 500 {
		t.Fatalf("four processes: overview %+v, want all 3 nodes answering with their registers", statusOf(ov))
	}

	// A node killed: the answer is partial and says so.
	nodes["14"].cmd.Process.Signal(syscall.SIGKILL)
	nodes["14"].cmd.Wait()
	ov, _ = overview(t, e)
	if ov.Complete || statusOf(ov)["14"] != bildrum.AnswerDown || ov.Answered != 2 {
		t.Errorf("node 14 killed: %v complete=%v, want 14 down and a partial answer", statusOf(ov), ov.Complete)
	}

	// A node that stalls (stopped, its socket still open): the hub answers
	// within its deadline (2s per node) and names the timeout.
	nodes["12"].cmd.Process.Signal(syscall.SIGSTOP)
	waitState(t, nodes["12"].cmd.Process.Pid, 'T')
	ov, took := overview(t, e)
	nodes["12"].cmd.Process.Signal(syscall.SIGCONT)
	if statusOf(ov)["12"] != bildrum.AnswerTimeout {
		t.Errorf("node 12 stalled: status %q, want timeout", statusOf(ov)["12"])
	}
	if took > 6*time.Second {
		t.Errorf("with a stalled node the hub took %v, want about its 2s deadline", took)
	}

	// The hub goes down: a node keeps serving its region.
	hub.cmd.Process.Signal(syscall.SIGTERM)
	if err := hub.cmd.Wait(); err != nil {
		t.Errorf("hub after SIGTERM: %v", err)
	}
	var sum bildrum.RegisterSummary
	if code := get(t, e.Nodes[0].API+"/status", e.Personas["staff-01"].Token, &sum); code != http.StatusOK || sum.Women == 0 {
		t.Errorf("node 01 with the hub down: %d %+v, want its register served", code, sum)
	}

	// The hub comes back: the nodes answer again without anything done to them.
	startPart(t, "bildrum hub SE", hubArgs...)
	ov, _ = overview(t, e)
	st := statusOf(ov)
	if st["01"] != bildrum.AnswerOK || st["12"] != bildrum.AnswerOK || st["14"] != bildrum.AnswerDown {
		t.Errorf("after the hub restarted: %v, want 01 and 12 ok, 14 still down", st)
	}
}

// waitState waits until the kernel reports process pid in state (T for
// stopped), since a signal is delivered asynchronously.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name in parentheses: "pid (comm) S ...".
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == state {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the kernel's view of another process
	}
	t.Fatalf("process %d never reached state %c", pid, state)
}
