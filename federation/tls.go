package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/bildrum/bildrum"
)

// TLSFiles names a part's credentials in the federation, as its
// configuration gives them.
type TLSFiles struct {
	// CA is the federation CA's certificate (PEM): the only trust anchor.
	CA string `json:"ca"`
	// Cert and Key are this part's certificate and private key (PEM).
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// CRL is the CA's revocation list (PEM); empty for none.
	CRL string `json:"crl,omitempty"`
}

// Credentials are a part's loaded TLS identity and trust.
type Credentials struct {
	Identity Identity
	NotAfter time.Time // when this part's own certificate expires

	roots   *x509.CertPool
	cert    tls.Certificate
	revoked map[string]bool // hex serials
}

// LoadCredentials reads and checks a part's certificate, key, CA and
// revocation list. The certificate must be issued by the CA and name a
// bildrum identity.
func LoadCredentials(f TLSFiles) (*Credentials, error) {
	ca, err := LoadCertificate(f.CA)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "certificate %s with key %s: %v", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "certificate %s is not valid under CA %s: %v", f.Cert, f.CA, err)
	}
	id, err := ParseIdentity(leaf)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "%v", err)
	}
	c := &Credentials{Identity: id, NotAfter: leaf.NotAfter, roots: roots, cert: cert, revoked: map[string]bool{}}
	if f.CRL != "" {
		crl, err := LoadCRL(f.CRL, ca)
		if err != nil {
			return nil, err
		}
		for _, e := range crl.RevokedCertificateEntries {
			c.revoked[e.SerialNumber.Text(16)] = true
		}
	}
	return c, nil
}

// ServerConfig is the TLS configuration of a federation endpoint: TLS 1.3
// only, and a client certificate from the federation CA, not revoked, is
// required.
func (c *Credentials) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{c.cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        c.roots,
		VerifyConnection: c.checkPeer(nil),
	}
}

// ClientConfig is the TLS configuration for calling the part named by
// expect: the server must present a certificate from the federation CA,
// not revoked, naming exactly that identity, so one node cannot answer for
// another.
func (c *Credentials) ClientConfig(expect Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		RootCAs:      c.roots,
		// The identity is checked by URI below, not by host name, so that a
		// part can be reached under any address its operators choose.
		InsecureSkipVerify: true,
		VerifyConnection:   c.checkPeer(&expect),
	}
}

// checkPeer verifies the peer's chain against the federation CA (needed
// explicitly on the client side, where InsecureSkipVerify is set), its
// revocation, and, when expect is given, its identity.
func (c *Credentials) checkPeer(expect *Identity) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("no certificate presented")
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		if c.revoked[leaf.SerialNumber.Text(16)] {
			return fmt.Errorf("peer certificate %s is revoked", leaf.SerialNumber.Text(16))
		}
		id, err := ParseIdentity(leaf)
		if err != nil {
			return err
		}
		if expect != nil && id != *expect {
			return fmt.Errorf("peer is %s, expected %s", id, *expect)
		}
		return nil
	}
}

// Transport returns an HTTP transport that calls the part named by expect
// over mutual TLS.
func (c *Credentials) Transport(expect Identity) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     c.ClientConfig(expect),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
}

type identityKey struct{}

// PeerIdentity returns the federation identity of the part that made the
// request, as its client certificate names it.
func PeerIdentity(r *http.Request) (Identity, bool) {
	id, ok := r.Context().Value(identityKey{}).(Identity)
	return id, ok
}

// RequirePeer wraps h so that it runs only for a request over mutual TLS
// from a part of one of the given kinds ("hub", "node"), with the identity
// and a principal for it in the request's context. The TLS layer has
// already verified the chain and revocation.
func RequirePeer(h http.HandlerFunc, kinds ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeProblem(w, r, bildrum.Errorf(bildrum.EUNAUTHORIZED, "the federation protocol needs mutual TLS with a federation certificate"))
			return
		}
		id, err := ParseIdentity(r.TLS.PeerCertificates[0])
		if err != nil {
			writeProblem(w, r, bildrum.Errorf(bildrum.EUNAUTHORIZED, "%v", err))
			return
		}
		allowed := false
		for _, k := range kinds {
			allowed = allowed || id.Kind == k
		}
		if !allowed {
			writeProblem(w, r, bildrum.Errorf(bildrum.EFORBIDDEN, "%s may not call %s", id, r.URL.Path))
			return
		}
		p := bildrum.Principal{Name: id.String(), Role: bildrum.RoleHub, Organisation: "bildrum " + id.Kind}
		ctx := context.WithValue(r.Context(), identityKey{}, id)
		h(w, r.WithContext(bildrum.WithPrincipal(ctx, p)))
	}
}
