package dicomweb_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/dicomweb"
	"github.com/bildrum/bildrum/sqlstore"
)

// recorder is an AccessRecorder that keeps the events, and fails when told.
type recorder struct {
	mu     sync.Mutex
	events []bildrum.AccessEvent
	fail   bool
	to     bildrum.AccessRecorder // when set, events go there instead (benchmarks)
}

func (r *recorder) RecordAccess(ctx context.Context, e bildrum.AccessEvent) error {
	if r.to != nil {
		return r.to.RecordAccess(ctx, e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("log is down")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) Events() []bildrum.AccessEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bildrum.AccessEvent(nil), r.events...)
}

// node is a regional node's archive and DICOMweb server for tests.
type node struct {
	t       testing.TB
	db      *sqlstore.DB
	arch    *archive.Archive
	blobs   *archive.FileBlobs
	srv     *httptest.Server
	rec     *recorder
	base    string // DICOMweb root URL
	tokens  map[string]string
	client  *dicomweb.Client // as staff-12
	dataDir string
	// recovered counts the objects a crash had left held in the index,
	// which the node moved into the blob store when it started.
	recovered int
}

type nodeOption func(*dicomweb.Config)

// The node's region and the personas of its tests.
const region = "12"

var personas = map[string]bildrum.Principal{
	"staff-12":    {Name: "staff-12", Role: bildrum.RoleStaff, Organisation: "Region Skåne", Region: "12"},
	"radiologist": {Name: "radiologist", Role: bildrum.RoleRadiologist, Organisation: "Region Skåne", Region: "12"},
	"staff-01":    {Name: "staff-01", Role: bildrum.RoleStaff, Organisation: "Region Stockholm", Region: "01"},
	"researcher":  {Name: "researcher", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"},
}

// newNode starts a node on SQLite and a blob directory in dir (a fresh
// temporary one when dir is "").
func newNode(t testing.TB, dir string, opts ...nodeOption) *node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := archive.OpenFileBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, db: db, blobs: blobs, arch: archive.New(db, blobs), rec: &recorder{}, tokens: map[string]string{}, dataDir: dir}
	t.Cleanup(n.arch.Wait) // before the database closes, as a node does
	// As a node starts: objects a crash left held in the index are moved.
	if n.recovered, err = n.arch.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for name, p := range personas {
		tok := auth.NewToken()
		if err := db.PutCredential(ctx, bildrum.HashToken(tok), p); err != nil {
			t.Fatal(err)
		}
		n.tokens[name] = tok
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := dicomweb.Config{Archive: n.arch, Auth: &auth.Authenticator{Store: db, Log: log}, Region: region, Log: log, Recorder: n.rec}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := dicomweb.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Routes(mux, "/dicomweb")
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	n.base = n.srv.URL + "/dicomweb"
	n.client = &dicomweb.Client{BaseURL: n.base, Token: n.tokens["staff-12"]}
	return n
}

// request sends a request as the persona ("" for none).
func (n *node) request(method, path, persona string, header http.Header, body io.Reader) *http.Response {
	n.t.Helper()
	return n.requestT(n.t, method, path, persona, header, body)
}

// requestT is request on behalf of another test than the node's.
func (n *node) requestT(t testing.TB, method, path, persona string, header http.Header, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, n.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if persona != "" {
		req.Header.Set("Authorization", "Bearer "+n.tokens[persona])
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// study makes the four views of a screening study of a woman.
func study(patient string, rows, cols int) [][]byte {
	return namedStudy(patient, "", rows, cols)
}

// namedStudy is study with the patient's name.
func namedStudy(patient, name string, rows, cols int) [][]byte {
	studyUID, seriesUID := archivetest.NewUID(), archivetest.NewUID()
	var out [][]byte
	for i, view := range bildrum.StandardViews() {
		out = append(out, archivetest.Mammogram(&archivetest.Image{
			PatientID: patient, PatientName: name, StudyUID: studyUID, SeriesUID: seriesUID, View: view, InstanceNumber: i + 1,
			Rows: rows, Columns: cols, WindowCenter: 2048, WindowWidth: 4096, Seed: uint64(i),
		}))
	}
	return out
}

// multipartBody builds a STOW-RS body of parts with their Content-Types.
func multipartBody(parts [][]byte, types ...string) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, p := range parts {
		ct := dicomweb.MediaDICOM
		if i < len(types) {
			ct = types[i]
		}
		h := textproto.MIMEHeader{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		w, _ := mw.CreatePart(h)
		w.Write(p)
	}
	mw.Close()
	return fmt.Sprintf(`multipart/related; type="application/dicom"; boundary=%s`, mw.Boundary()), &buf
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// uidsOf returns the SOP Instance UID of a file made by archivetest.
func uidOf(t testing.TB, file []byte) (study, series, sop string) {
	t.Helper()
	h, err := archive.ReadHeader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := h.Instance()
	if err != nil {
		t.Fatal(err)
	}
	return in.Study.StudyInstanceUID, in.Series.SeriesInstanceUID, in.SOPInstanceUID
}

// countInstances returns how many instances the node's index holds.
func (n *node) countInstances() int {
	n.t.Helper()
	got, _, err := n.db.SearchInstances(context.Background(), bildrum.ImageQuery{})
	if err != nil {
		n.t.Fatal(err)
	}
	return len(got)
}
