package federation_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
)

// country is one data space in a test: its CA, one node, and its hub
// serving peers.
type country struct {
	name  string
	pki   *pki
	creds *federation.Credentials
	hub   *federation.Hub
	peer  *httptest.Server // the hub's endpoint for peer hubs
}

func newCountry(t *testing.T, name, region string, women int) *country {
	t.Helper()
	p := newPKI(t)
	c := &country{name: name, pki: p, creds: p.credentials(p.issue(federation.HubIdentity(name), time.Hour))}
	node := startNode(t, region, women, 2*women, p.credentials(p.issue(federation.NodeIdentity(region), time.Hour)))
	dir := openHubDB(t)
	if err := dir.PutNode(context.Background(), bildrum.Node{Region: region, Federation: node.URL + "/federation/v1"}); err != nil {
		t.Fatal(err)
	}
	c.hub = &federation.Hub{Directory: dir, Client: &federation.Client{Credentials: c.creds, NodeTimeout: time.Second}}
	return c
}

// servePeers starts the hub's peer endpoint, trusting the given peers.
func (c *country) servePeers(t *testing.T, trusts ...federation.PeerTrust) {
	mux := http.NewServeMux()
	(&federation.HubServer{Name: c.name, Nodes: c.hub.Nodes}).Routes(mux)
	c.peer = httptest.NewUnstartedServer(mux)
	c.peer.TLS = c.creds.PeerServerConfig(trusts)
	c.peer.StartTLS()
	t.Cleanup(c.peer.Close)
}

func (c *country) trust(t *testing.T) federation.PeerTrust {
	tr, err := federation.LoadPeerTrust(c.name, filepath.Join(c.pki.ca.Dir, federation.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestPeerHubsAcrossBorders(t *testing.T) {
	se := newCountry(t, "SE", "12", 300)
	no := newCountry(t, "NO", "03", 120) // a Norwegian node; region codes are ours, the test only needs one
	se.servePeers(t, no.trust(t))
	no.servePeers(t, se.trust(t))
	se.hub.Peers = []federation.Peer{{Trust: no.trust(t), Federation: no.peer.URL + "/federation/v1"}}
	no.hub.Peers = []federation.Peer{{Trust: se.trust(t), Federation: se.peer.URL + "/federation/v1"}}

	ov, err := se.hub.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.Peers) != 1 || ov.Peers[0].Status != bildrum.AnswerOK {
		t.Fatalf("SE's overview peers = %+v, want NO answering", ov.Peers)
	}
	p := ov.Peers[0].Peer
	if p.Hub != "NO" || p.Women != 120 || !p.Complete || p.CertExpires.IsZero() {
		t.Errorf("NO's status = %+v, want its own federation's 120 women, complete", p)
	}
	if ov.Women != 300 {
		t.Errorf("SE's national total = %d, want its own 300 (peers are never added)", ov.Women)
	}

	// A hub whose certificate comes from SE's CA cannot pose as NO: SE only
	// trusts NO's own CA for that name.
	impostorCreds := se.pki.credentials(se.pki.issue(federation.HubIdentity("NO"), time.Hour))
	mux := http.NewServeMux()
	(&federation.HubServer{Name: "NO", Nodes: no.hub.Nodes}).Routes(mux)
	impostor := httptest.NewUnstartedServer(mux)
	impostor.TLS = impostorCreds.PeerServerConfig([]federation.PeerTrust{se.trust(t)})
	impostor.StartTLS()
	defer impostor.Close()
	se.hub.Peers = []federation.Peer{{Trust: no.trust(t), Federation: impostor.URL + "/federation/v1"}}
	ov, _ = se.hub.Overview(context.Background())
	if ov.Peers[0].Status != bildrum.AnswerRefused {
		t.Errorf("impostor peer: status %q (%s), want refused", ov.Peers[0].Status, ov.Peers[0].Reason)
	}

	// A third country that NO does not name as a peer is refused by NO.
	dk := newCountry(t, "DK", "14", 10)
	dk.hub.Peers = []federation.Peer{{Trust: no.trust(t), Federation: no.peer.URL + "/federation/v1"}}
	ov, _ = dk.hub.Overview(context.Background())
	if ov.Peers[0].Status == bildrum.AnswerOK {
		t.Errorf("a hub NO does not trust got an answer from NO")
	}
}
