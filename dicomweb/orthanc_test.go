package dicomweb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum/dicomweb"
	"github.com/bildrum/bildrum/internal/testenv"
)

// orthanc is an Orthanc server with its DICOMweb plugin, started for a test.
type orthanc struct {
	url    string // REST root, http://127.0.0.1:PORT
	client *dicomweb.Client
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// orthancPlugin finds Debian's DICOMweb plugin of Orthanc.
func orthancPlugin(t testing.TB) string {
	t.Helper()
	for _, pattern := range []string{"/usr/share/orthanc/plugins/libOrthancDicomWeb.so*", "/usr/lib/orthanc/libOrthancDicomWeb.so*"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	testenv.Unavailable(t, "the DICOMweb plugin of Orthanc (Debian package orthanc-dicomweb) is not installed")
	return ""
}

// startOrthanc starts Orthanc on a free loopback port, with remote access
// and its DICOM server off, storage in a temporary directory, and the
// DICOMweb plugin at /dicom-web/. servers are DICOMweb peers it may call,
// by name: URL and HTTP headers. It is killed when the test ends.
func startOrthanc(t testing.TB, servers map[string]any) *orthanc {
	t.Helper()
	bin := testenv.RequireExternal(t, "Orthanc")
	plugin := orthancPlugin(t)
	dir := t.TempDir()
	port := freePort(t)
	cfg := map[string]any{
		"Name":                    "bildrum-test",
		"StorageDirectory":        filepath.Join(dir, "storage"),
		"IndexDirectory":          filepath.Join(dir, "index"),
		"HttpPort":                port,
		"RemoteAccessAllowed":     false,
		"AuthenticationEnabled":   false,
		"DicomServerEnabled":      false,
		"DicomPort":               freePort(t),
		"StorageCompression":      false,
		"HttpRequestTimeout":      120,
		"HttpTimeout":             120,
		"ConcurrentJobs":          2,
		"Plugins":                 []string{plugin},
		"StableAge":               1,
		"SaveJobs":                false,
		"OverwriteInstances":      false,
		"UnknownSopClassAccepted": true,
		"DicomWeb": map[string]any{
			"Enable":  true,
			"Root":    "/dicom-web/",
			"Servers": servers,
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Orthanc: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Orthanc output:\n%s", lastLines(out.String(), 40))
		}
	})
	o := &orthanc{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	o.client = &dicomweb.Client{BaseURL: o.url + "/dicom-web"}
	// Ready when /system answers; bounded, and failing at once if it dies.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(o.url + "/system")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("Orthanc exited at start (%v):\n%s", err, lastLines(out.String(), 40))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Orthanc did not answer /system within 30 s:\n%s", lastLines(out.String(), 40))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// rest calls Orthanc's REST API and decodes the JSON answer into out.
func (o *orthanc) rest(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	var r io.Reader
	if b, ok := body.([]byte); ok {
		r = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, o.url+path, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Orthanc %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Orthanc %s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("Orthanc %s %s: %v: %s", method, path, err, raw)
		}
	}
}

// TestOrthancExchange moves studies between our node and Orthanc over
// DICOMweb in both directions, each side as client and as server, and
// checks that every byte arrives as sent.
func TestOrthancExchange(t *testing.T) {
	n := newNode(t, "")
	o := startOrthanc(t, map[string]any{
		"bildrum": map[string]any{
			"Url":         n.base + "/",
			"HttpHeaders": map[string]string{"Authorization": "Bearer " + n.tokens["staff-12"]},
		},
	})
	ctx := context.Background()

	t.Run("OurClientToOrthanc", func(t *testing.T) {
		files := namedStudy(anna, "Utbyte^Anna", 96, 64)
		studyUID, _, _ := uidOf(t, files[0])
		res, err := o.client.Store(ctx, "", files...)
		if err != nil || res.Status != http.StatusOK || len(res.Referenced) != 4 {
			t.Fatalf("STOW to Orthanc = %+v, %v; want 200 and 4 referenced", res, err)
		}
		found, err := o.client.Search(ctx, "studies", url.Values{"PatientID": {anna}, "StudyInstanceUID": {studyUID}})
		if err != nil || len(found) != 1 {
			t.Fatalf("QIDO at Orthanc = %v, %v; want the study", found, err)
		}
		// A wildcard reaches Orthanc as a wildcard (encodeQuery).
		found, err = o.client.Search(ctx, "studies", url.Values{"PatientName": {"Utby*"}, "StudyInstanceUID": {studyUID}})
		if err != nil || len(found) != 1 {
			t.Fatalf("QIDO at Orthanc with PatientName=Utby* = %v, %v; want the study", found, err)
		}
		parts, err := o.client.Retrieve(ctx, "studies/"+studyUID)
		if err != nil || len(parts) != 4 {
			t.Fatalf("WADO from Orthanc = %d parts, %v", len(parts), err)
		}
		want := map[string]bool{}
		for _, f := range files {
			want[sha(f)] = true
		}
		for i, p := range parts {
			if !want[sha(p)] {
				t.Errorf("part %d from Orthanc (%d bytes) is not one of the files sent", i, len(p))
			}
		}
	})

	t.Run("OrthancPushesToUs", func(t *testing.T) {
		files := study("195203072227", 96, 64)
		studyUID, _, _ := uidOf(t, files[0])
		var orthancStudy string
		for _, f := range files {
			var inst struct{ ParentStudy string }
			o.rest(t, "POST", "/instances", f, &inst)
			orthancStudy = inst.ParentStudy
		}
		var job map[string]any
		o.rest(t, "POST", "/dicom-web/servers/bildrum/stow", map[string]any{"Resources": []string{orthancStudy}, "Synchronous": true}, &job)
		parts, err := n.client.Retrieve(ctx, "studies/"+studyUID)
		if err != nil || len(parts) != 4 {
			t.Fatalf("after Orthanc's STOW to us: WADO = %d parts, %v (job %v)", len(parts), err, job)
		}
		for i := range files {
			if sha(parts[i]) != sha(files[i]) {
				t.Errorf("instance %d stored by Orthanc's STOW: SHA-256 %s, want %s (bytes as Orthanc received them)", i, sha(parts[i]), sha(files[i]))
			}
		}
	})

	t.Run("OrthancRetrievesFromUs", func(t *testing.T) {
		files := study("195411222267", 96, 64)
		studyUID, _, _ := uidOf(t, files[0])
		if res, err := n.client.Store(ctx, "", files...); err != nil || res.Status != http.StatusOK {
			t.Fatalf("Store = %+v, %v", res, err)
		}
		var found []map[string]any
		o.rest(t, "POST", "/dicom-web/servers/bildrum/get", map[string]any{"Uri": "/studies", "Arguments": map[string]string{"StudyInstanceUID": studyUID}}, &found)
		if len(found) != 1 {
			t.Fatalf("Orthanc's QIDO of us = %v, want the study", found)
		}
		var job map[string]any
		o.rest(t, "POST", "/dicom-web/servers/bildrum/retrieve", map[string]any{
			"Resources": []map[string]string{{"Study": studyUID}}, "Synchronous": true}, &job)
		var ids []string
		o.rest(t, "GET", "/instances", nil, &ids)
		got := map[string]bool{}
		for _, id := range ids {
			req, _ := http.NewRequest("GET", o.url+"/instances/"+id+"/file", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[sha(b)] = true
		}
		for i, f := range files {
			if !got[sha(f)] {
				t.Errorf("instance %d retrieved by Orthanc from us is not byte-identical in Orthanc's storage (job %v)", i, job)
			}
		}
	})
}
