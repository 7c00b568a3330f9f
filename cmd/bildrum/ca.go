package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
)

const caUsage = `bildrum ca — the federation's certificate authority

  bildrum ca init    -dir CADIR [-name NAME]                    create a CA
  bildrum ca request (-node RR | -hub NAME) [-host H,...] -out DIR  on the part's machine: make its key and a request
  bildrum ca sign    -dir CADIR -csr FILE [-days N] -out FILE   on the CA's machine: certify a request
  bildrum ca issue   -dir CADIR (-node RR | -hub NAME) [-host H,...] -out DIR
                                                                make key and certificate at the CA (exports the key)
  bildrum ca list    -dir CADIR                                 the certificates issued
  bildrum ca revoke  -dir CADIR SERIAL                          revoke one; give parts the new ca.crl
`

func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, caUsage)
		return usageError{"ca: give a subcommand"}
	}
	fs := flag.NewFlagSet("ca "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "the CA's directory")
	name := fs.String("name", "bildrum federation CA", "the CA's name")
	node := fs.String("node", "", "the region code of a node")
	hub := fs.String("hub", "", "the name of a hub, e.g. SE")
	hosts := fs.String("host", "", "comma-separated host names and IP addresses the part serves under")
	out := fs.String("out", "", "output directory (request, issue) or certificate file (sign)")
	csr := fs.String("csr", "", "certificate request file (PEM)")
	days := fs.Int("days", 365, "validity of a certificate in days")
	sub := args[0]
	rest := args[1:]
	var serial string
	if sub == "revoke" && len(rest) > 0 && !strings.HasPrefix(rest[len(rest)-1], "-") {
		serial, rest = rest[len(rest)-1], rest[:len(rest)-1]
	}
	if err := parseFlags(fs, rest, stdout); err != nil {
		return err
	}
	// need checks that flags are given, as name, value pairs.
	need := func(pairs ...string) error {
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] == "" {
				return usageError{fmt.Sprintf("ca %s: give -%s", sub, pairs[i])}
			}
		}
		return nil
	}
	identity := func() (federation.Identity, error) {
		switch {
		case *node != "" && *hub == "":
			if _, err := bildrum.RegionByCode(*node); err != nil {
				return federation.Identity{}, err
			}
			return federation.NodeIdentity(*node), nil
		case *hub != "" && *node == "":
			return federation.HubIdentity(*hub), nil
		}
		return federation.Identity{}, usageError{fmt.Sprintf("ca %s: give either -node RR or -hub NAME", sub)}
	}
	switch sub {
	case "init":
		if err := need("dir", *dir); err != nil {
			return err
		}
		ca, err := federation.InitCA(*dir, *name, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "CA %q created in %s. Give %s to every part; keep %s on this machine.\nFingerprint: %s\n",
			*name, *dir, filepath.Join(*dir, federation.CACertFile), filepath.Join(*dir, federation.CAKeyFile), federation.Fingerprint(ca.Cert))
		return nil
	case "request":
		id, err := identity()
		if err != nil {
			return err
		}
		if err := need("out", *out); err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o700); err != nil {
			return fmt.Errorf("ca request: %w", err)
		}
		key, req, err := federation.NewKeyAndRequest(id, splitList(*hosts))
		if err != nil {
			return err
		}
		if err := federation.WriteKey(filepath.Join(*out, "part.key"), key); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(*out, "part.csr"), req, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Key %s stays here. Send %s to the CA: bildrum ca sign -dir CADIR -csr part.csr -out part.crt\n",
			filepath.Join(*out, "part.key"), filepath.Join(*out, "part.csr"))
		return nil
	case "sign":
		if err := need("dir", *dir, "csr", *csr, "out", *out); err != nil {
			return err
		}
		ca, err := federation.OpenCA(*dir)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(*csr)
		if err != nil {
			return bildrum.Errorf(bildrum.EINVALID, "certificate request %s: %v", *csr, err)
		}
		id, err := signRequest(ca, b, *days, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Certified %s for %d days: %s\n", id, *days, *out)
		return nil
	case "issue":
		id, err := identity()
		if err != nil {
			return err
		}
		if err := need("dir", *dir, "out", *out); err != nil {
			return err
		}
		ca, err := federation.OpenCA(*dir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o700); err != nil {
			return fmt.Errorf("ca issue: %w", err)
		}
		key, reqPEM, err := federation.NewKeyAndRequest(id, splitList(*hosts))
		if err != nil {
			return err
		}
		if _, err := signRequest(ca, reqPEM, *days, filepath.Join(*out, "part.crt")); err != nil {
			return err
		}
		if err := federation.WriteKey(filepath.Join(*out, "part.key"), key); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Issued %s into %s. The key was made on this machine: move it to the part's machine over a secure channel, or prefer 'ca request' there.\n", id, *out)
		return nil
	case "list":
		if err := need("dir", *dir); err != nil {
			return err
		}
		ca, err := federation.OpenCA(*dir)
		if err != nil {
			return err
		}
		issued, err := ca.Issued()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tIDENTITY\tEXPIRES\tSTATUS")
		for _, c := range issued {
			status := "valid"
			if c.Revoked {
				status = "revoked"
			} else if time.Now().After(c.NotAfter) {
				status = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Serial, c.Identity, c.NotAfter.Format("2006-01-02"), status)
		}
		return tw.Flush()
	case "revoke":
		if err := need("dir", *dir); err != nil {
			return err
		}
		if serial == "" {
			return usageError{"ca revoke: give the certificate's serial (see 'bildrum ca list')"}
		}
		ca, err := federation.OpenCA(*dir)
		if err != nil {
			return err
		}
		if err := ca.Revoke(serial); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked %s. Copy %s to every part and restart it.\n", serial, filepath.Join(*dir, federation.CRLFile))
		return nil
	}
	fmt.Fprint(stderr, caUsage)
	return usageError{fmt.Sprintf("ca: unknown subcommand %q", sub)}
}

// signRequest certifies a PEM request for days and writes the certificate
// to out.
func signRequest(ca *federation.CA, reqPEM []byte, days int, out string) (federation.Identity, error) {
	req, err := federation.ParseRequest(reqPEM)
	if err != nil {
		return federation.Identity{}, err
	}
	certPEM, err := ca.Sign(req, time.Duration(days)*24*time.Hour)
	if err != nil {
		return federation.Identity{}, err
	}
	return req.Identity, writeFileAtomic(out, certPEM, 0o644)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
