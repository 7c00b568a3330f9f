package federation_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/sqlstore"
)

// pki is a federation CA in a temporary directory that issues credentials.
type pki struct {
	t   *testing.T
	ca  *federation.CA
	dir string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, err := federation.InitCA(filepath.Join(dir, "ca"), "test federation CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, ca: ca, dir: dir}
}

// issue makes credentials for id, valid for validity from now.
func (p *pki) issue(id federation.Identity, validity time.Duration) federation.TLSFiles {
	p.t.Helper()
	key, csr, err := federation.NewKeyAndRequest(id, []string{"127.0.0.1"})
	if err != nil {
		p.t.Fatal(err)
	}
	req, err := federation.ParseRequest(csr)
	if err != nil {
		p.t.Fatal(err)
	}
	certPEM, err := p.ca.Sign(req, validity)
	if err != nil {
		p.t.Fatal(err)
	}
	dir := p.t.TempDir()
	f := federation.TLSFiles{CA: filepath.Join(p.ca.Dir, federation.CACertFile), Cert: filepath.Join(dir, "part.crt"),
		Key: filepath.Join(dir, "part.key"), CRL: filepath.Join(p.ca.Dir, federation.CRLFile)}
	if err := os.WriteFile(f.Cert, certPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := federation.WriteKey(f.Key, key); err != nil {
		p.t.Fatal(err)
	}
	return f
}

func (p *pki) credentials(f federation.TLSFiles) *federation.Credentials {
	p.t.Helper()
	c, err := federation.LoadCredentials(f)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// fakeRegister reports a fixed summary.
type fakeRegister struct{ sum bildrum.RegisterSummary }

func (f fakeRegister) RegisterSummary(context.Context) (bildrum.RegisterSummary, error) {
	return f.sum, nil
}

// startNode serves a real NodeServer for region over mutual TLS with creds.
func startNode(t *testing.T, region string, women, exams int, creds *federation.Credentials) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&federation.NodeServer{
		Region:   region,
		Register: fakeRegister{bildrum.RegisterSummary{Region: region, Women: women, Exams: exams, DataVersion: 3}},
	}).Routes(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = creds.ServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func openHubDB(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOverviewReportsEveryRegionHonestly(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	hubCreds := p.credentials(p.issue(federation.HubIdentity("SE"), time.Hour))

	ok := startNode(t, "12", 300, 1500, p.credentials(p.issue(federation.NodeIdentity("12"), time.Hour)))
	// Region 14's address answers with region 03's certificate: refused.
	impostor := startNode(t, "03", 250, 1200, p.credentials(p.issue(federation.NodeIdentity("03"), time.Hour)))
	down := startNode(t, "05", 1, 1, p.credentials(p.issue(federation.NodeIdentity("05"), time.Hour)))
	down.Close()
	release := make(chan struct{})
	stalled := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // holds the answer until the hub gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	stalled.TLS = p.credentials(p.issue(federation.NodeIdentity("01"), time.Hour)).ServerConfig()
	stalled.StartTLS()
	t.Cleanup(func() { close(release); stalled.Close() })

	dir := openHubDB(t)
	for region, srv := range map[string]*httptest.Server{"12": ok, "14": impostor, "05": down, "01": stalled} {
		if err := dir.PutNode(ctx, bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1", Web: srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	hub := &federation.Hub{Directory: dir, Client: &federation.Client{Credentials: hubCreds, NodeTimeout: 2 * time.Second}}
	ov, err := hub.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"01": bildrum.AnswerTimeout, "05": bildrum.AnswerDown, "12": bildrum.AnswerOK, "14": bildrum.AnswerRefused}
	if len(ov.Nodes) != len(want) {
		t.Fatalf("overview has %d regions, want %d", len(ov.Nodes), len(want))
	}
	for _, n := range ov.Nodes {
		if n.Status != want[n.Region] {
			t.Errorf("region %s: status %q (%s), want %q", n.Region, n.Status, n.Reason, want[n.Region])
		}
		if n.Status != bildrum.AnswerOK && n.Reason == "" {
			t.Errorf("region %s: status %q without a reason", n.Region, n.Status)
		}
	}
	if ov.Complete || ov.Answered != 1 || ov.Asked != 4 {
		t.Errorf("overview complete=%v answered=%d asked=%d, want incomplete 1 of 4", ov.Complete, ov.Answered, ov.Asked)
	}
	if ov.Women != 300 || ov.Exams != 1500 {
		t.Errorf("overview totals %d women %d exams, want only the answering region's 300 and 1500", ov.Women, ov.Exams)
	}
	nodes, _ := dir.Nodes(ctx)
	for _, n := range nodes {
		if n.Region == "12" && (n.LastStatus.Women != 300 || n.LastStatus.CheckedAt.IsZero() || n.LastStatus.CertExpires.Before(time.Now())) {
			t.Errorf("last status of 12 = %+v, want 300 women, a check time and the certificate's expiry", n.LastStatus)
		}
	}
}

// TestNodeRefusesWhoItShould calls a node with every kind of wrong
// credential the issue names, and the right one.
func TestNodeRefusesWhoItShould(t *testing.T) {
	p := newPKI(t)
	node := startNode(t, "12", 1, 1, p.credentials(p.issue(federation.NodeIdentity("12"), time.Hour)))
	foreign := newPKI(t)

	revokedFiles := p.issue(federation.HubIdentity("SE"), time.Hour)
	revokedCert, _ := federation.LoadCertificate(revokedFiles.Cert)
	if err := p.ca.Revoke(revokedCert.SerialNumber.Text(16)); err != nil {
		t.Fatal(err)
	}
	// Past certificates: the CA's clock is set back for this one.
	p.ca.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expiredFiles := p.issue(federation.HubIdentity("SE"), time.Hour)
	p.ca.Now = nil

	// The node reloads its credentials to see the new revocation list.
	node.Close()
	node = startNode(t, "12", 1, 1, p.credentials(p.issue(federation.NodeIdentity("12"), time.Hour)))

	tlsClient := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	}
	pair := func(f federation.TLSFiles) *tls.Certificate {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	tests := []struct {
		name   string
		client *http.Client
		url    string
		wantOK bool
	}{
		{"hub of the federation", tlsClient(pair(p.issue(federation.HubIdentity("SE"), time.Hour))), node.URL, true},
		{"no certificate", tlsClient(nil), node.URL, false},
		{"certificate of another CA", tlsClient(pair(foreign.issue(federation.HubIdentity("SE"), time.Hour))), node.URL, false},
		{"expired certificate", tlsClient(pair(expiredFiles)), node.URL, false},
		{"revoked certificate", tlsClient(pair(revokedFiles)), node.URL, false},
		{"a node is not a hub", tlsClient(pair(p.issue(federation.NodeIdentity("14"), time.Hour))), node.URL, false},
		{"plain HTTP", http.DefaultClient, strings.Replace(node.URL, "https://", "http://", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(tt.url + federation.PathStatus)
			gotOK := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			if gotOK != tt.wantOK {
				t.Errorf("GET status as %s: err %v, response %v; want ok=%v", tt.name, err, resp, tt.wantOK)
			}
		})
	}
}

func TestLoadCredentialsRefusesBadFiles(t *testing.T) {
	p := newPKI(t)
	foreign := newPKI(t)
	good := p.issue(federation.NodeIdentity("12"), time.Hour)
	other := foreign.issue(federation.NodeIdentity("12"), time.Hour)
	tests := []struct {
		name    string
		files   federation.TLSFiles
		wantMsg string
	}{
		{"certificate of another CA", federation.TLSFiles{CA: good.CA, Cert: other.Cert, Key: other.Key}, "is not valid under CA"},
		{"key of another certificate", federation.TLSFiles{CA: good.CA, Cert: good.Cert, Key: other.Key}, "with key"},
		{"missing CA", federation.TLSFiles{CA: filepath.Join(t.TempDir(), "none.crt"), Cert: good.Cert, Key: good.Key}, "certificate"},
		{"CRL of another CA", federation.TLSFiles{CA: good.CA, Cert: good.Cert, Key: good.Key, CRL: other.CRL}, "not signed by the federation CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federation.LoadCredentials(tt.files)
			if err == nil || !strings.Contains(bildrum.ErrorMessage(err), tt.wantMsg) {
				t.Errorf("LoadCredentials = %v, want a message containing %q", err, tt.wantMsg)
			}
		})
	}
}

// TestCallCarriesRequestIDAndDeadline checks the protocol headers.
func TestCallCarriesRequestIDAndDeadline(t *testing.T) {
	p := newPKI(t)
	var gotDeadline atomic.Bool
	var gotID atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("GET /federation/v1/echo", federation.Handle(nil, func(w http.ResponseWriter, r *http.Request) {
		_, has := r.Context().Deadline()
		gotDeadline.Store(has)
		gotID.Store(r.Header.Get(federation.HeaderRequestID))
		federation.WriteJSON(w, map[string]string{"ok": "yes"})
	}, "hub"))
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = p.credentials(p.issue(federation.NodeIdentity("12"), time.Hour)).ServerConfig()
	srv.StartTLS()
	defer srv.Close()

	c := &federation.Client{Credentials: p.credentials(p.issue(federation.HubIdentity("SE"), time.Hour))}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out map[string]string
	call, err := c.Get(ctx, federation.NodeIdentity("12"), srv.URL+"/federation/v1/echo", &out)
	if err != nil {
		t.Fatal(err)
	}
	if !gotDeadline.Load() {
		t.Errorf("node's handler saw no deadline")
	}
	if id, _ := gotID.Load().(string); id == "" || id != call.RequestID {
		t.Errorf("node saw request ID %q, client sent %q", id, call.RequestID)
	}
	if call.CertExpires.IsZero() {
		t.Errorf("call did not record the node's certificate expiry")
	}
}

// resetFirst is a listener that drops its first connection at once, as a
// node restarting would.
type resetFirst struct {
	net.Listener
	accepted atomic.Int32
}

func (l *resetFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.accepted.Add(1) == 1 {
			c.Close()
			continue
		}
		return c, nil
	}
}

func TestIdempotentCallsAreRetried(t *testing.T) {
	p := newPKI(t)
	mux := http.NewServeMux()
	(&federation.NodeServer{Region: "12", Register: fakeRegister{bildrum.RegisterSummary{Region: "12", Women: 7}}}).Routes(mux)
	srv := httptest.NewUnstartedServer(mux)
	l := &resetFirst{Listener: srv.Listener}
	srv.Listener = l
	srv.TLS = p.credentials(p.issue(federation.NodeIdentity("12"), time.Hour)).ServerConfig()
	srv.StartTLS()
	defer srv.Close()

	c := &federation.Client{Credentials: p.credentials(p.issue(federation.HubIdentity("SE"), time.Hour))}
	s, err := c.Status(context.Background(), bildrum.Node{Region: "12", Federation: srv.URL + "/federation/v1"})
	if err != nil || s.Women != 7 {
		t.Fatalf("Status after a dropped connection = %+v, %v; want an answer after a retry", s, err)
	}
	if n := l.accepted.Load(); n < 2 {
		t.Errorf("%d connections, want a retry", n)
	}
}
