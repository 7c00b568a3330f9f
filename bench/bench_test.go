// Package bench compares a bildrum node's DICOMweb archive with Orthanc on
// the same machine, disk and files: STOW-RS and WADO-RS throughput with one
// and four clients for 8 KB objects and 8.8 MB and 27 MB mammograms, and
// QIDO-RS latency with 2,500 and 10,000 studies stored; with the disk's and
// the loopback's own limits beside them.
//
// It is not part of the test run. Run it with
//
//	go test ./bench/ -run '^$' -bench Compare -benchtime 1x -timeout 60m
//
// (Orthanc and its DICOMweb plugin installed, as `make test` does). The
// flags -objects, -clients, -rounds and -qido-only narrow or repeat a run,
// e.g. for the small objects' STOW alone:
//
//	go test ./bench/ -run '^$' -bench Compare -benchtime 1x -args -objects 8KB -rounds 3
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/dicomweb"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/sqlstore"
)

var (
	onlyQIDO    = flag.Bool("qido-only", false, "measure QIDO-RS only")
	objectsFlag = flag.String("objects", "", "comma-separated object sizes to measure, of 8KB, 8.8MB, 27MB (default all); when set, QIDO-RS is not measured")
	clientsFlag = flag.String("clients", "1,4", "comma-separated numbers of concurrent clients")
	rounds      = flag.Int("rounds", 1, "measurements of each server per object size and client count, alternating the servers")
)

// server is a DICOMweb origin server under test.
type server struct {
	name   string
	client *dicomweb.Client
	stop   func()
	// settle, when set, returns when the server has finished the work
	// that its stores left in the background (ours: moving held small
	// objects into the blob store), which STOW's time includes.
	settle func()
}

func startBildrum(t testing.TB) *server {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := archive.OpenFileBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	token := auth.NewToken()
	db.PutCredential(ctx, bildrum.HashToken(token), bildrum.Principal{Name: "bench", Role: bildrum.RoleStaff, Region: "12"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	arch := archive.New(db, blobs)
	srv, err := dicomweb.NewServer(dicomweb.Config{Archive: arch, Auth: &auth.Authenticator{Store: db, Log: log},
		Region: "12", Log: log, Recorder: db})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Routes(mux, "/dicomweb")
	hs := httptest.NewServer(mux)
	return &server{name: "bildrum", client: &dicomweb.Client{BaseURL: hs.URL + "/dicomweb", Token: token, HTTP: httpClient}, stop: func() { hs.Close(); arch.Wait(); db.Close() }, settle: arch.Wait}
}

// httpClient is the client of both servers. It asks for no compression:
// Go's transport otherwise asks for gzip by itself, which Orthanc then
// spends its time on (0.5 s for each 8.8 MB instance, where it sends it
// as it is in 0.1 s) and our node does not do, so the figures would
// compare the peer's gzip with our copying.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startOrthanc(t testing.TB) *server {
	bin := testenv.RequireExternal(t, "Orthanc")
	plugins, _ := filepath.Glob("/usr/share/orthanc/plugins/libOrthancDicomWeb.so*")
	if len(plugins) == 0 {
		testenv.Unavailable(t, "orthanc-dicomweb is not installed")
	}
	dir := t.TempDir()
	port := freePort(t)
	cfg, _ := json.Marshal(map[string]any{
		"Name": "bench", "StorageDirectory": filepath.Join(dir, "storage"), "IndexDirectory": filepath.Join(dir, "index"),
		"HttpPort": port, "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "DicomServerEnabled": false,
		"DicomPort": freePort(t), "StorageCompression": false, "Plugins": plugins, "HttpThreadsCount": 50,
		"DicomWeb": map[string]any{"Enable": true, "Root": "/dicom-web/"},
	})
	path := filepath.Join(dir, "orthanc.json")
	os.WriteFile(path, cfg, 0o600)
	cmd := exec.Command(bin, path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/system")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 600 {
			t.Fatal("Orthanc did not start")
		}
		time.Sleep(50 * time.Millisecond) // readiness polling
	}
	return &server{name: "Orthanc " + orthancVersion(base), client: &dicomweb.Client{BaseURL: base + "/dicom-web", HTTP: httpClient},
		stop: func() { cmd.Process.Kill(); cmd.Wait() }}
}

func orthancVersion(base string) string {
	resp, err := http.Get(base + "/system")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var s struct{ Version string }
	json.NewDecoder(resp.Body).Decode(&s)
	return s.Version
}

// dataset is one kind of object stored and retrieved.
type dataset struct {
	name       string
	rows, cols int
	count      int
}

var datasets = []dataset{
	{"8 KB", 60, 64, 600},
	{"8.8 MB", 2294, 1914, 48},
	{"27 MB", 4096, 3328, 16},
}

// makeFiles makes the objects of d: four of each woman, as a screening
// exam has four views, each in a study of its own. Our node records an
// access event for every read, durable before it serves (as deployed), so
// whose images a read is matters: see sqlstore's DB.RecordAccess.
func makeFiles(d dataset) [][]byte {
	out := make([][]byte, d.count)
	for i := range out {
		out[i] = archivetest.Mammogram(&archivetest.Image{Rows: d.rows, Columns: d.cols, Seed: uint64(i), WindowCenter: 2048, WindowWidth: 4096,
			PatientID: patient(i / 4), PatientName: fmt.Sprintf("Bench%04d^Anna", i/4)})
	}
	return out
}

// run spreads n jobs over clients goroutines and returns the elapsed time.
func run(clients, n int, job func(i int) error) (time.Duration, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := 0
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := job(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

// readers are the 1 MB read buffers of retrieve, kept for reuse: a new one
// per request would cost the client more than the server's answer to a
// small object (zeroing, and the garbage collections of 1 MB per request),
// in both servers' figures alike.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<20) }}

// retrieve streams a WADO-RS instance to nowhere and returns its bytes.
func retrieve(c *dicomweb.Client, path string) (int64, error) {
	req, _ := http.NewRequest("GET", c.BaseURL+"/"+path, nil)
	req.Header.Set("Accept", `multipart/related; type="application/dicom"; transfer-syntax=*`)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	br := readers.Get().(*bufio.Reader)
	defer readers.Put(br)
	br.Reset(resp.Body)
	mr := multipart.NewReader(br, params["boundary"])
	var total int64
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := io.Copy(io.Discard, p)
		total += n
		if err != nil {
			return total, err
		}
	}
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// BenchmarkCompare measures both servers and prints a table. One run is
// the whole comparison (minutes); -benchtime 1x.
func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		compare(b)
	}
}

// compare measures both servers once and prints the table.
func compare(t testing.TB) {
	ctx := context.Background()
	report := &lineWriter{}
	fmt.Fprintf(report, "\n%s\n", limits(t))
	fmt.Fprintf(report, "%-22s %-8s %7s %12s %12s\n", "server", "object", "clients", "STOW MB/s", "WADO MB/s")
	for _, d := range datasets {
		if *onlyQIDO || !selected(*objectsFlag, strings.ReplaceAll(d.name, " ", "")) {
			continue
		}
		files := makeFiles(d)
		var size int64
		for _, f := range files {
			size += int64(len(f))
		}
		for _, clients := range clientCounts(t) {
			for range *rounds {
				for _, start := range []func(testing.TB) *server{startBildrum, startOrthanc} {
					// Each server starts on a quiet disk: what the one
					// before left unwritten (Orthanc never syncs) is
					// written now, not while the next one waits for its
					// own syncs.
					syscall.Sync()
					s := start(t)
					paths := make([]string, len(files))
					stow, err := run(clients, len(files), func(i int) error {
						res, err := s.client.Store(ctx, "", files[i])
						if err != nil || res.Status != 200 {
							return fmt.Errorf("%s STOW: %v %v", s.name, res, err)
						}
						paths[i] = strings.TrimPrefix(res.Response.Items("00081199")[0].String("00081190"), s.client.BaseURL+"/")
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if s.settle != nil {
						settled := time.Now()
						s.settle()
						stow += time.Since(settled)
					}
					var got int64
					var gmu sync.Mutex
					wado, err := run(clients, len(files), func(i int) error {
						n, err := retrieve(s.client, paths[i])
						gmu.Lock()
						got += n
						gmu.Unlock()
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					if got != size {
						t.Errorf("%s retrieved %d bytes of %d", s.name, got, size)
					}
					fmt.Fprintf(report, "%-22s %-8s %7d %12.1f %12.1f\n", s.name, d.name, clients, mbps(size, stow), mbps(size, wado))
					s.stop()
				}
			}
		}
	}
	if *objectsFlag != "" && !*onlyQIDO {
		return
	}

	fmt.Fprintf(report, "\n%-22s %8s %10s %10s %10s\n", "server", "studies", "p50 ms", "p95 ms", "max ms")
	for _, start := range []func(testing.TB) *server{startBildrum, startOrthanc} {
		s := start(t)
		loaded := 0
		for _, target := range []int{2500, 10000} {
			loadStudies(t, s, loaded, target)
			loaded = target
			p50, p95, worst, empty := qido(t, s, target)
			fmt.Fprintf(report, "%-22s %8d %10.2f %10.2f %10.2f  (%d of 400 searches found nothing)\n", s.name, target, p50, p95, worst, empty)
		}
		s.stop()
	}
}

// selected reports whether name is in the comma-separated list, or the list is empty.
func selected(list, name string) bool {
	return list == "" || slices.Contains(strings.Split(list, ","), name)
}

// clientCounts parses -clients.
func clientCounts(t testing.TB) []int {
	var out []int
	for _, f := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			t.Fatalf("-clients %q: write numbers of clients such as 1,4", *clientsFlag)
		}
		out = append(out, n)
	}
	return out
}

// lineWriter prints the table as it is measured, so a long run shows its
// progress.
type lineWriter struct{}

func (lineWriter) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// patient returns the synthetic identity of benchmark patient i: generated
// numbers, marked synthetic, never leaving the machine (DESIGN.md).
func patient(i int) string {
	return string(bildrum.WithCheckDigit(fmt.Sprintf("19%02d%02d%02d%03d", 40+i%40, 1+i%12, 1+i%28, (i/1000)%1000*2)))
}

// loadStudies stores studies from..to-1, one small instance each, eight
// clients sending 50 instances per request.
func loadStudies(t testing.TB, s *server, from, to int) {
	const per = 50
	batches := (to - from + per - 1) / per
	_, err := run(8, batches, func(b int) error {
		var files [][]byte
		for i := from + b*per; i < min(to, from+(b+1)*per); i++ {
			day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%1800)
			files = append(files, archivetest.Mammogram(&archivetest.Image{
				Rows: 8, Columns: 8, PatientID: patient(i / 4), PatientName: fmt.Sprintf("Bench%04d^Anna", i/4),
				StudyDate: day.Format("20060102"), AccessionNumber: fmt.Sprintf("B%06d", i),
			}))
		}
		res, err := s.client.Store(context.Background(), "", files...)
		if err != nil || res.Status != 200 {
			return fmt.Errorf("%s load: %v %v", s.name, res, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// qido runs a mix of viewer searches and returns latency percentiles in ms.
func qido(t testing.TB, s *server, studies int) (p50, p95, worst float64, empty int) {
	var lat []float64
	for i := 0; i < 400; i++ {
		k := (i * 7919) % studies
		var q url.Values
		switch i % 5 {
		case 0:
			q = url.Values{"PatientID": {patient(k / 4)}}
		case 1:
			q = url.Values{"AccessionNumber": {fmt.Sprintf("B%06d", k)}}
		case 2:
			q = url.Values{"PatientName": {fmt.Sprintf("Bench%04d*", k/4)}}
		case 3:
			d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, k%1800)
			q = url.Values{"StudyDate": {d.Format("20060102") + "-" + d.AddDate(0, 0, 2).Format("20060102")}, "limit": {"101"}}
		case 4:
			q = url.Values{"ModalitiesInStudy": {"MG"}, "PatientID": {patient(k / 4)}, "includefield": {"all"}}
		}
		start := time.Now()
		res, err := s.client.Search(context.Background(), "studies", q)
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		if err != nil {
			t.Fatalf("%s QIDO %v: %v", s.name, q, err)
		}
		if len(res) == 0 {
			empty++
		}
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1], empty
}

// limits measures the disk (dd, direct I/O and fdatasync) and the
// loopback's TCP bandwidth, the ceilings of the figures above.
func limits(t testing.TB) string {
	dir := t.TempDir()
	out := &strings.Builder{}
	f := filepath.Join(dir, "dd")
	for _, args := range [][]string{
		{"if=/dev/zero", "of=" + f, "bs=4M", "count=256", "conv=fdatasync"},
		{"if=" + f, "of=/dev/null", "bs=4M", "iflag=direct"},
		{"if=/dev/zero", "of=" + f, "bs=8k", "count=2000", "oflag=dsync"},
	} {
		res, err := exec.Command("dd", args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(res)), "\n")
		fmt.Fprintf(out, "dd %s: %s %v\n", strings.Join(args, " "), lines[len(lines)-1], err)
	}
	// Loopback: one TCP stream of 2 GB.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, _ := net.Dial("tcp", l.Addr().String())
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	start := time.Now()
	for range 2048 {
		c.Write(buf)
	}
	c.Close()
	fmt.Fprintf(out, "loopback TCP, one stream: %.0f MB/s\n", mbps(2048<<20, time.Since(start)))
	_ = bytes.MinRead
	return out.String()
}
