package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/federation"
)

// TestCACommand runs `bildrum ca` as an operator would: a CA, a node's key
// and request made on "its machine", signed at the CA, listed, revoked.
func TestCACommand(t *testing.T) {
	dir := t.TempDir()
	ca, node := filepath.Join(dir, "ca"), filepath.Join(dir, "node12")
	bildrum := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"ca"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"init", "-dir", ca, "-name", "Test CA"}, exitOK, "Fingerprint:"},
		{[]string{"init", "-dir", ca}, exitError, ""},
		{[]string{"request", "-node", "12", "-host", "127.0.0.1,node12.example.se", "-out", node}, exitOK, "stays here"},
		{[]string{"request", "-node", "99", "-out", node}, exitError, ""},
		{[]string{"request", "-node", "12", "-hub", "SE", "-out", node}, exitUsage, ""},
		{[]string{"sign", "-dir", ca, "-csr", filepath.Join(node, "part.csr"), "-out", filepath.Join(node, "part.crt")}, exitOK, "urn:bildrum:node:12"},
		{[]string{"issue", "-dir", ca, "-hub", "SE", "-out", filepath.Join(dir, "hub")}, exitOK, "move it"},
		{[]string{"list", "-dir", ca}, exitOK, "urn:bildrum:hub:SE"},
		{[]string{"bogus"}, exitUsage, ""},
	}
	for _, s := range steps {
		code, out, errOut := bildrum(s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) {
			t.Fatalf("bildrum ca %v: exit %d, out %q, err %q; want exit %d and %q", s.args, code, out, errOut, s.wantCode, s.wantOut)
		}
	}
	if fi, err := os.Stat(filepath.Join(node, "part.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	creds, err := federation.LoadCredentials(federation.TLSFiles{CA: filepath.Join(ca, "ca.crt"), Cert: filepath.Join(node, "part.crt"), Key: filepath.Join(node, "part.key")})
	if err != nil || creds.Identity != federation.NodeIdentity("12") {
		t.Fatalf("signed node credentials: %v, %v", creds, err)
	}
	cert, _ := federation.LoadCertificate(filepath.Join(node, "part.crt"))
	serial := cert.SerialNumber.Text(16)
	if code, out, _ := bildrum("revoke", "-dir", ca, serial); code != exitOK || !strings.Contains(out, "Revoked "+serial) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if _, out, _ := bildrum("list", "-dir", ca); !strings.Contains(out, "revoked") {
		t.Errorf("list after revoking:\n%s\nwant the node's certificate marked revoked", out)
	}
	if code, _, errOut := bildrum("revoke", "-dir", ca, "deadbeef"); code != exitError || !strings.Contains(errOut, "no certificate with serial") {
		t.Errorf("revoking an unknown serial: %d %q", code, errOut)
	}
}
