package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/docs"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
	"github.com/bildrum/bildrum/web"
)

// NodeConfig configures `bildrum node`: one region's node. docs/deploy.md
// describes each field with an example.
type NodeConfig struct {
	// Region is the county code of the region this node serves, e.g. "12".
	Region string `json:"region"`
	// Database is the node's own database: a SQLite file path or a
	// postgres:// URL.
	Database string `json:"database"`
	// WebAddr is where the region's users reach the node's pages and APIs
	// (HTTP), e.g. "127.0.0.1:8081".
	WebAddr string `json:"web_addr"`
	// FederationAddr is where the hub calls the node over mutual TLS,
	// e.g. "0.0.0.0:8443".
	FederationAddr string `json:"federation_addr"`
	// TLS names the node's federation certificate, key, the federation CA
	// and its revocation list (bildrum ca).
	TLS federation.TLSFiles `json:"tls"`
	// HubWeb is the hub's web address, for the pages' link back. Optional.
	HubWeb string `json:"hub_web,omitempty"`
	// Credentials is a file of the bearer credentials (token hashes) the
	// node accepts, loaded at every start. Optional.
	Credentials string `json:"credentials,omitempty"`
	// ConsentMaxAge bounds the age of the node's copy of the consent
	// register for secondary use, as a Go duration. Default "10m".
	ConsentMaxAge string `json:"consent_max_age,omitempty"`
	// Synthetic, when set, fills an empty register with the synthetic
	// population on first start (demo and test federations only).
	Synthetic *SyntheticConfig `json:"synthetic,omitempty"`
}

// SyntheticConfig selects the synthetic population of a demo federation.
// Every node of one federation must use the same values, so the women are
// split across regions the same way.
type SyntheticConfig struct {
	Seed    int64    `json:"seed"`
	Regions []string `json:"regions"`
}

// check says what is wrong with a configuration, in words to act on.
func (c NodeConfig) check() error {
	if _, err := bildrum.RegionByCode(c.Region); err != nil {
		return bildrum.Errorf(bildrum.EINVALID, "node configuration: region: %s", bildrum.ErrorMessage(err))
	}
	if c.ConsentMaxAge != "" {
		if d, err := time.ParseDuration(c.ConsentMaxAge); err != nil || d <= 0 {
			return bildrum.Errorf(bildrum.EINVALID, "node configuration: consent_max_age %q: want a duration such as \"10m\"", c.ConsentMaxAge)
		}
	}
	if c.WebAddr == "" || c.FederationAddr == "" {
		return bildrum.Errorf(bildrum.EINVALID, "node configuration: set web_addr and federation_addr, e.g. \"127.0.0.1:8081\" and \"127.0.0.1:8443\"")
	}
	return nil
}

// Node is a running regional node.
type Node struct {
	cfg     NodeConfig
	log     *slog.Logger
	db      *sqlstore.DB
	creds   *federation.Credentials
	servers []server
}

// OpenNode opens a node from its configuration: its database (built from
// the synthetic population when configured and empty), its credentials and
// its listeners. webL and fedL may be listeners opened already (the demo
// does, to know free ports before it writes configurations); nil means
// listen on the configured addresses.
func OpenNode(ctx context.Context, cfg NodeConfig, log *slog.Logger, progress io.Writer, webL, fedL net.Listener) (_ *Node, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log.With("part", "node", "region", cfg.Region)}
	defer func() {
		if err != nil {
			n.Close()
			for _, l := range []net.Listener{webL, fedL} {
				if l != nil {
					l.Close()
				}
			}
		}
	}()
	if n.creds, err = federation.LoadCredentials(cfg.TLS); err != nil {
		return nil, err
	}
	if n.creds.Identity != federation.NodeIdentity(cfg.Region) {
		return nil, bildrum.Errorf(bildrum.EINVALID, "node of region %s has the certificate of %s: issue one for this region with 'bildrum ca'", cfg.Region, n.creds.Identity)
	}
	if n.db, err = openDatabase(ctx, cfg.Database, sqlstore.PartNode); err != nil {
		return nil, err
	}
	if cfg.Synthetic != nil {
		if err := buildSynthetic(ctx, n.db, cfg.Region, *cfg.Synthetic, progress, n.log); err != nil {
			return nil, err
		}
	}
	if err := loadCredentials(ctx, cfg.Credentials, n.db); err != nil {
		return nil, err
	}
	if webL == nil {
		if webL, err = listen(cfg.WebAddr, "node web"); err != nil {
			return nil, err
		}
	}
	if fedL == nil {
		if fedL, err = listen(cfg.FederationAddr, "node federation"); err != nil {
			webL.Close()
			return nil, err
		}
	}
	region, _ := bildrum.RegionByCode(cfg.Region)
	authn := &auth.Authenticator{Store: n.db, Log: n.log}
	maxAge, _ := time.ParseDuration(cfg.ConsentMaxAge)
	checker := &consent.Checker{Replica: n.db, Region: cfg.Region, MaxAge: maxAge}
	webMux := http.NewServeMux()
	(&web.Node{Region: region, Register: n.db, Auth: authn, Log: n.log, HubURL: cfg.HubWeb, OpenAPI: docs.OpenAPI, Consent: checker}).Routes(webMux)
	fedMux := http.NewServeMux()
	(&federation.NodeServer{Region: cfg.Region, Register: n.db, Log: n.log}).Routes(fedMux)
	federation.ReplicaRoutes(fedMux, n.db, time.Now, n.log)
	n.servers = []server{
		newHTTPServer(webMux, webL, nil, n.log),
		newHTTPServer(fedMux, fedL, n.creds.ServerConfig(), n.log),
	}
	return n, nil
}

// WebURL is where the node's pages are.
func (n *Node) WebURL() string { return "http://" + n.servers[0].l.Addr().String() }

// FederationURL is the base URL of the node's federation API.
func (n *Node) FederationURL() string {
	return "https://" + n.servers[1].l.Addr().String() + "/federation/v1"
}

// DB is the node's database.
func (n *Node) DB() *sqlstore.DB { return n.db }

// Serve answers requests until ctx ends.
func (n *Node) Serve(ctx context.Context) error { return serveAll(ctx, n.log, n.servers) }

// Close stops the servers and closes the database.
func (n *Node) Close() error {
	shutdownAll(n.servers)
	if n.db != nil {
		return n.db.Close()
	}
	return nil
}

// buildSynthetic fills an empty register with its region's share of the
// synthetic population, in one transaction: an interrupted build leaves the
// register empty and the next start builds it again.
func buildSynthetic(ctx context.Context, db *sqlstore.DB, region string, sc SyntheticConfig, progress io.Writer, log *slog.Logger) error {
	sum, err := db.RegisterSummary(ctx)
	if err != nil {
		return err
	}
	if sum.DataVersion != 0 {
		return nil
	}
	cfg := synth.Config{Seed: sc.Seed, Regions: sc.Regions}
	women, err := synth.Women(cfg)
	if err != nil {
		return err
	}
	own := 0
	for _, w := range women {
		if w.Region == region {
			own++
		}
	}
	bar := newProgress(progress, own, "building the synthetic register of region "+region)
	var last bildrum.PersonID
	res, err := db.PutEpisodeStream(ctx, func(yield func(bildrum.ScreeningEpisode, error) bool) {
		stop := fmt.Errorf("stopped")
		_, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
			if e.Region != region {
				return nil
			}
			if e.Person != last {
				last = e.Person
				bar.Add(1)
			}
			if !yield(e, nil) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			yield(bildrum.ScreeningEpisode{}, err)
		}
	})
	if err != nil {
		return fmt.Errorf("build register of region %s: %w", region, err)
	}
	bar.Finish()
	log.Info("built synthetic register", "episodes", res.Changed)
	return nil
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	path := fs.String("config", "", "node configuration file (JSON, see docs/deploy.md)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"node: give the configuration with -config FILE (see docs/deploy.md; 'bildrum demo -write-config DIR' writes examples)"}
	}
	var cfg NodeConfig
	if err := readConfig(*path, &cfg); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	n, err := OpenNode(ctx, cfg, log, stderr, nil, nil)
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(stdout, "bildrum node %s: web %s, federation %s\n", cfg.Region, n.WebURL(), n.FederationURL())
	return n.Serve(ctx)
}
