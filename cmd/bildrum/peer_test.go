package main

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
)

// issueFiles makes a CA-signed certificate and key for id under dir.
func issueFiles(t *testing.T, ca *federation.CA, id federation.Identity, dir string) federation.TLSFiles {
	t.Helper()
	key, csr, err := federation.NewKeyAndRequest(id, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := federation.ParseRequest(csr)
	certPEM, err := ca.Sign(req, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := federation.TLSFiles{CA: filepath.Join(ca.Dir, federation.CACertFile), Cert: filepath.Join(dir, "hub.crt"), Key: filepath.Join(dir, "hub.key")}
	os.WriteFile(f.Cert, certPEM, 0o644)
	if err := federation.WriteKey(f.Key, key); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestHubsPeerByConfiguration starts two hubs of two countries from their
// configurations, each naming the other as a peer with the other's CA.
func TestHubsPeerByConfiguration(t *testing.T) {
	base := freeBase(t, 4)
	type side struct {
		name string
		dir  string
		ca   *federation.CA
		cfg  HubConfig
	}
	sides := []*side{{name: "SE"}, {name: "NO"}}
	token := "bdr_test-quality"
	h := bildrum.HashToken(token)
	for i, s := range sides {
		s.dir = t.TempDir()
		ca, err := federation.InitCA(filepath.Join(s.dir, "ca"), s.name+" CA", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.ca = ca
		cred := filepath.Join(s.dir, "credentials.json")
		os.WriteFile(cred, mustJSON([]CredentialEntry{{TokenSHA256: hex.EncodeToString(h[:]), Name: "quality", Role: bildrum.RoleQuality}}), 0o600)
		s.cfg = HubConfig{Name: s.name, Database: filepath.Join(s.dir, "hub.db"), WebAddr: fmt.Sprintf("127.0.0.1:%d", base+2*i),
			PeerAddr: fmt.Sprintf("127.0.0.1:%d", base+2*i+1), TLS: issueFiles(t, ca, federation.HubIdentity(s.name), s.dir), Credentials: cred,
			Log: LogConfig{Dir: filepath.Join(s.dir, "log", "public"), Origin: s.name + ".example/log", Key: filepath.Join(s.dir, "log", "log.key"),
				CommitmentKey: filepath.Join(s.dir, "log", "commitment.key"), Index: filepath.Join(s.dir, "log", "persons.idx")}}
		os.MkdirAll(filepath.Join(s.dir, "log"), 0o700)
	}
	for i, s := range sides {
		o := sides[1-i]
		s.cfg.Peers = []PeerEntry{{Name: o.name, Federation: "https://" + o.cfg.PeerAddr + "/federation/v1", CA: filepath.Join(o.ca.Dir, federation.CACertFile)}}
	}
	for _, s := range sides {
		hub, err := OpenHub(t.Context(), s.cfg, discardLogger(), nil)
		if err != nil {
			t.Fatal(err)
		}
		go hub.Serve(t.Context())
		t.Cleanup(func() { hub.Close() })
	}
	var ov bildrum.FederationOverview
	if code := get(t, "http://"+sides[0].cfg.WebAddr+"/api/v1/federation", token, &ov); code != http.StatusOK {
		t.Fatalf("GET overview = %d", code)
	}
	if len(ov.Peers) != 1 || ov.Peers[0].Name != "NO" || ov.Peers[0].Status != bildrum.AnswerOK {
		t.Errorf("SE's peers = %+v, want NO answering", ov.Peers)
	}
}
