package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

// PeerTrust is the trust a hub extends to the hub of another country's
// data space: that hub's name and the one CA whose certificates may carry
// it. A peer is trusted for nothing else, and nothing else is trusted for it.
type PeerTrust struct {
	Name string
	CA   *x509.Certificate
}

// LoadPeerTrust reads the CA certificate a configuration names for a peer.
func LoadPeerTrust(name, caFile string) (PeerTrust, error) {
	if name == "" {
		return PeerTrust{}, bildrum.Errorf(bildrum.EINVALID, "peer without a name: give the other hub's name, e.g. \"NO\"")
	}
	ca, err := LoadCertificate(caFile)
	if err != nil {
		return PeerTrust{}, err
	}
	return PeerTrust{Name: name, CA: ca}, nil
}

// verify checks that a chain is issued by the peer's CA and names the peer.
func (p PeerTrust) verify(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return fmt.Errorf("no certificate presented")
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CA)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	id, err := ParseIdentity(certs[0])
	if err != nil {
		return err
	}
	if id != HubIdentity(p.Name) {
		return fmt.Errorf("certificate of the CA for peer %s names %s", p.Name, id)
	}
	return nil
}

// PeerServerConfig is the TLS configuration of a hub's endpoint for peer
// hubs: a client certificate is required, and accepted only when one
// peer's own CA issued it for that peer's name.
func (c *Credentials) PeerServerConfig(peers []PeerTrust) *tls.Config {
	pool := x509.NewCertPool()
	for _, p := range peers {
		pool.AddCert(p.CA)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, p := range peers {
				if p.verify(cs.PeerCertificates) == nil {
					return nil
				}
			}
			return fmt.Errorf("certificate is not a configured peer hub's")
		},
	}
}

// PeerTransport returns an HTTP transport for calling a peer hub: it trusts
// only the peer's CA and expects the peer's name, and presents this hub's
// own certificate.
func (c *Credentials) PeerTransport(p PeerTrust) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS13,
			Certificates:       []tls.Certificate{c.cert},
			InsecureSkipVerify: true, // verified below against the peer's CA and name
			VerifyConnection:   func(cs tls.ConnectionState) error { return p.verify(cs.PeerCertificates) },
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		TLSHandshakeTimeout: 5 * time.Second,
	}
}

// Peer is another country's hub as this hub's configuration names it.
type Peer struct {
	Trust      PeerTrust
	Federation string // https://HOST:PORT/federation/v1
}

// HubServer serves the hub's side of the protocol to peer hubs: the calls
// that make sense across borders. Its routes must be served with
// Credentials.PeerServerConfig.
type HubServer struct {
	Name string
	// Nodes gives this hub's own federation, without its peers, so that two
	// hubs asking each other never ask in circles.
	Nodes func(ctx context.Context) (bildrum.FederationOverview, error)
	Log   *slog.Logger
}

// Routes adds the peer routes to mux.
func (s *HubServer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathStatus, Handle(s.Log, s.status, "hub"))
}

func (s *HubServer) status(w http.ResponseWriter, r *http.Request) {
	ov, err := s.Nodes(r.Context())
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	WriteJSON(w, bildrum.PeerStatus{Hub: s.Name, Version: bildrum.Version, Asked: ov.Asked, Answered: ov.Answered,
		Complete: ov.Complete, Women: ov.Women, Exams: ov.Exams})
}

// PeerStatus asks a peer hub for its federation's status.
func (c *Client) PeerStatus(ctx context.Context, p Peer) (bildrum.PeerStatus, error) {
	var s bildrum.PeerStatus
	call, err := c.get2(ctx, c.peerClient(p.Trust), p.Federation+strings.TrimPrefix(PathStatus, "/federation/v1"), &s)
	if err != nil {
		return s, err
	}
	if s.Hub != p.Trust.Name {
		return s, fmt.Errorf("peer at %s says it is hub %q, not %s", p.Federation, s.Hub, p.Trust.Name)
	}
	s.CheckedAt = c.now().UTC()
	s.LatencyMS = call.Latency.Milliseconds()
	s.CertExpires = call.CertExpires.UTC()
	return s, nil
}

func (c *Client) peerClient(p PeerTrust) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peers == nil {
		c.peers = map[string]*http.Client{}
	}
	hc, ok := c.peers[p.Name]
	if !ok {
		hc = &http.Client{Transport: c.Credentials.PeerTransport(p)}
		c.peers[p.Name] = hc
	}
	return hc
}
