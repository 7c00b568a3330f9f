package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

// Identities in the federation are URIs in a certificate's subject
// alternative names: a node is urn:bildrum:node:RR (its county code), a hub
// urn:bildrum:hub:NAME (e.g. SE). Names and addresses come from DNS and IP
// SANs and play no part in authorisation.
const (
	nodeURNPrefix = "urn:bildrum:node:"
	hubURNPrefix  = "urn:bildrum:hub:"
)

// Identity is who a federation certificate names.
type Identity struct {
	Kind   string // "node" or "hub"
	Region string // county code, for a node
	Hub    string // the hub's name, for a hub (a country code such as SE)
}

// String returns the identity's URI.
func (id Identity) String() string {
	if id.Kind == "node" {
		return nodeURNPrefix + id.Region
	}
	return hubURNPrefix + id.Hub
}

// NodeIdentity returns the identity of the node serving region.
func NodeIdentity(region string) Identity { return Identity{Kind: "node", Region: region} }

// HubIdentity returns the identity of the hub called name.
func HubIdentity(name string) Identity { return Identity{Kind: "hub", Hub: name} }

// ParseIdentity reads the identity URI of a federation certificate.
func ParseIdentity(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		s := u.String()
		if region, ok := strings.CutPrefix(s, nodeURNPrefix); ok {
			if _, err := bildrum.RegionByCode(region); err != nil {
				return Identity{}, fmt.Errorf("certificate %s: %w", cert.Subject.CommonName, err)
			}
			return NodeIdentity(region), nil
		}
		if name, ok := strings.CutPrefix(s, hubURNPrefix); ok && name != "" {
			return HubIdentity(name), nil
		}
	}
	return Identity{}, fmt.Errorf("certificate %q names no bildrum node or hub", cert.Subject.CommonName)
}

// CA is a federation's certificate authority: a directory holding its key
// (ca.key, readable by its owner only), its certificate (ca.crt, given to
// every part), the certificates it issued (issued/SERIAL.crt) and its
// revocation list (ca.crl).
type CA struct {
	Dir  string
	Cert *x509.Certificate
	key  crypto.Signer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// CA file names within its directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CRLFile    = "ca.crl"
	issuedDir  = "issued"
)

// InitCA creates a new federation CA in dir, which must not hold one yet.
func InitCA(dir, name string, now time.Time) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, bildrum.Errorf(bildrum.ECONFLICT, "%s already holds a CA: use it, or choose another directory", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, issuedDir), 0o700); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bildrum federation"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, CACertFile), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	ca := &CA{Dir: dir, Cert: cert, key: key}
	return ca, ca.writeCRL(nil)
}

// OpenCA opens the CA in dir.
func OpenCA(dir string) (*CA, error) {
	cert, err := LoadCertificate(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	key, err := LoadKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	return &CA{Dir: dir, Cert: cert, key: key}, nil
}

// Request is what a part asks the CA to certify: its identity, the names
// and addresses it serves under, and its public key. The private key stays
// on the part's machine.
type Request struct {
	Identity  Identity
	DNSNames  []string
	IPs       []net.IP
	PublicKey crypto.PublicKey
}

// NewKeyAndRequest makes a part's private key and a certificate signing
// request (PEM) for it, to be signed by the CA elsewhere.
func NewKeyAndRequest(id Identity, hosts []string) (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	dns, ips := splitHosts(hosts)
	u, _ := url.Parse(id.String())
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: commonName(id)},
		DNSNames:    dns,
		IPAddresses: ips,
		URIs:        []*url.URL{u},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseRequest reads and checks a PEM certificate signing request.
func ParseRequest(pemBytes []byte) (Request, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return Request{}, bildrum.Errorf(bildrum.EINVALID, "not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return Request{}, bildrum.Errorf(bildrum.EINVALID, "certificate request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return Request{}, bildrum.Errorf(bildrum.EINVALID, "certificate request signature: %v", err)
	}
	id, err := ParseIdentity(&x509.Certificate{URIs: csr.URIs, Subject: csr.Subject})
	if err != nil {
		return Request{}, bildrum.Errorf(bildrum.EINVALID, "%v", err)
	}
	return Request{Identity: id, DNSNames: csr.DNSNames, IPs: csr.IPAddresses, PublicKey: csr.PublicKey}, nil
}

// Sign issues a certificate for the request, valid for the given duration,
// usable for both server and client authentication (parts call each other).
func (ca *CA) Sign(req Request, validity time.Duration) ([]byte, error) {
	now := ca.now()
	u, _ := url.Parse(req.Identity.String())
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName(req.Identity), Organization: []string{"bildrum federation"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", req.Identity, err)
	}
	path := filepath.Join(ca.Dir, issuedDir, tmpl.SerialNumber.Text(16)+".crt")
	if err := writePEM(path, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Issued lists the certificates the CA has issued, oldest first, and
// whether each is revoked.
func (ca *CA) Issued() ([]IssuedCert, error) {
	revoked, err := ca.revoked()
	if err != nil {
		return nil, err
	}
	paths, _ := filepath.Glob(filepath.Join(ca.Dir, issuedDir, "*.crt"))
	var out []IssuedCert
	for _, p := range paths {
		c, err := LoadCertificate(p)
		if err != nil {
			return nil, err
		}
		id, _ := ParseIdentity(c)
		serial := c.SerialNumber.Text(16)
		out = append(out, IssuedCert{Serial: serial, Identity: id.String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Revoked: revoked[serial]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NotBefore.Before(out[j].NotBefore) })
	return out, nil
}

// IssuedCert is one line of the CA's register of certificates.
type IssuedCert struct {
	Serial    string    `json:"serial"`
	Identity  string    `json:"identity"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Revoked   bool      `json:"revoked"`
}

// Revoke adds the certificate with the hex serial to the revocation list.
// Parts read the list from the file named in their configuration.
func (ca *CA) Revoke(serial string) error {
	if _, err := os.Stat(filepath.Join(ca.Dir, issuedDir, serial+".crt")); err != nil {
		return bildrum.Errorf(bildrum.ENOTFOUND, "no certificate with serial %s was issued by this CA: see 'bildrum ca list'", serial)
	}
	revoked, err := ca.revoked()
	if err != nil {
		return err
	}
	revoked[serial] = true
	return ca.writeCRL(revoked)
}

func (ca *CA) revoked() (map[string]bool, error) {
	crl, err := LoadCRL(filepath.Join(ca.Dir, CRLFile), ca.Cert)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		out[e.SerialNumber.Text(16)] = true
	}
	return out, nil
}

func (ca *CA) writeCRL(revoked map[string]bool) error {
	now := ca.now()
	var entries []x509.RevocationListEntry
	serials := make([]string, 0, len(revoked))
	for s := range revoked {
		serials = append(serials, s)
	}
	sort.Strings(serials)
	for _, s := range serials {
		n, _ := new(big.Int).SetString(s, 16)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now,
		NextUpdate:                now.AddDate(1, 0, 0),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	return writePEM(filepath.Join(ca.Dir, CRLFile), "X509 CRL", der, 0o644)
}

// LoadCRL reads a PEM revocation list and checks it was signed by ca.
func LoadCRL(path string, ca *x509.Certificate) (*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "revocation list %s: %v", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "X509 CRL" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "revocation list %s: not a PEM X509 CRL", path)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "revocation list %s: %v", path, err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "revocation list %s is not signed by the federation CA: %v", path, err)
	}
	return crl, nil
}

// LoadCertificate reads the first certificate of a PEM file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "certificate %s: %v", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "certificate %s: not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "certificate %s: %v", path, err)
	}
	return c, nil
}

// LoadKey reads a PEM PKCS #8 private key.
func LoadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "key %s: %v", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "key %s: %v", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, bildrum.Errorf(bildrum.EINVALID, "key %s: not a signing key", path)
	}
	return s, nil
}

// WriteKey stores a private key as PEM PKCS #8, readable by its owner only.
func WriteKey(path string, key crypto.Signer) error { return writeKey(path, key) }

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes one PEM block to path through a temporary file, so no
// reader sees half a key or certificate.
func writePEM(path, typ string, der []byte, perm os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func commonName(id Identity) string {
	if id.Kind == "node" {
		return "bildrum node " + id.Region
	}
	return "bildrum hub " + id.Hub
}

func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// Fingerprint returns the SHA-256 of a certificate, for people comparing them.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
