package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/docs"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/web"
)

// DemoConfig configures `bildrum demo`.
type DemoConfig struct {
	// DataDir holds the demo's databases, its key and endpoints.json.
	// Default: bildrum/demo under the user's cache directory. Data are kept
	// across restarts; delete the directory to start afresh.
	DataDir string
	// Addr is the hub's web address. Default 127.0.0.1:8080; the nodes take
	// the next ports (8081, 8082, 8083). Port 0 picks free ports for every part.
	Addr string
	// Seed selects the synthetic population built on first start. Default 1.
	Seed int64
	// Regions are the demo's nodes. Default 01 Stockholm, 12 Skåne, 14 Västra Götaland.
	Regions []string
	// Log receives the parts' logs. Default: text to stderr.
	Log *slog.Logger
	// Progress receives the progress bar of the first build. Default: stderr.
	Progress io.Writer
}

// Endpoints is DIR/endpoints.json: where every part of a running demo
// listens and the bearer tokens of its personas (DESIGN.md, external contracts).
type Endpoints struct {
	Hub      HubEndpoints       `json:"hub"`
	Nodes    []NodeEndpoints    `json:"nodes"`
	Personas map[string]Persona `json:"personas"`
}

// HubEndpoints are the hub's addresses.
type HubEndpoints struct {
	Web     string `json:"web"`
	API     string `json:"api"`
	OpenAPI string `json:"openapi"`
}

// NodeEndpoints are a regional node's addresses.
type NodeEndpoints struct {
	Region     string `json:"region"`
	Name       string `json:"name"`
	Web        string `json:"web"`
	API        string `json:"api"`
	Federation string `json:"federation"`
}

// Persona is a demo user and the bearer token the APIs accept for her.
type Persona struct {
	Token        string           `json:"token"`
	Role         bildrum.Role     `json:"role"`
	Organisation string           `json:"organisation"`
	Region       string           `json:"region,omitempty"`
	PersonID     bildrum.PersonID `json:"person_id,omitempty"`
}

// Demo is a hub and regional nodes in one process.
type Demo struct {
	cfg       DemoConfig
	log       *slog.Logger
	hubDB     *sqlstore.DB
	nodeDBs   map[string]*sqlstore.DB
	servers   []*http.Server
	listeners []net.Listener
	endpoints Endpoints
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cfg := DemoConfig{}
	fs.StringVar(&cfg.DataDir, "data", "", "data directory (default: bildrum/demo in the user cache directory)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "hub web address; nodes take the next ports; port 0 picks free ports")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the synthetic population built on first start")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Progress = stderr
	d := NewDemo(cfg)
	defer d.Close()
	if err := d.Start(ctx); err != nil {
		return err
	}
	d.PrintEndpoints(stdout)
	return d.Serve(ctx)
}

// NewDemo returns a demo with cfg's defaults filled in; Start opens it.
func NewDemo(cfg DemoConfig) *Demo {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{"01", "12", "14"}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Progress == nil {
		cfg.Progress = os.Stderr
	}
	return &Demo{cfg: cfg, log: cfg.Log, nodeDBs: map[string]*sqlstore.DB{}}
}

// Start opens the databases (building the synthetic data on first start),
// listens on every part's address and writes endpoints.json. On error it
// leaves no half-built database behind.
func (d *Demo) Start(ctx context.Context) error {
	dir, err := d.dataDir()
	if err != nil {
		return err
	}
	key, err := demoKey(dir)
	if err != nil {
		return err
	}
	if err := d.listen(); err != nil {
		return err
	}
	hubURL := "http://" + d.listeners[0].Addr().String()

	if d.hubDB, err = sqlstore.Open(ctx, filepath.Join(dir, "hub.db"), sqlstore.PartHub); err != nil {
		return err
	}
	for _, region := range d.cfg.Regions {
		db, err := d.openNode(ctx, dir, region)
		if err != nil {
			return err
		}
		d.nodeDBs[region] = db
	}
	if err := d.build(ctx); err != nil {
		return err
	}
	personas, err := d.personas(ctx, key)
	if err != nil {
		return err
	}
	d.endpoints = Endpoints{
		Hub:      HubEndpoints{Web: hubURL, API: hubURL + "/api/v1", OpenAPI: hubURL + "/openapi.yaml"},
		Personas: personas,
	}
	for _, db := range append([]*sqlstore.DB{d.hubDB}, d.nodeDBsInOrder()...) {
		for name, p := range personas {
			principal := bildrum.Principal{Name: name, Role: p.Role, Organisation: p.Organisation, Region: p.Region, Person: p.PersonID}
			if err := db.PutCredential(ctx, bildrum.HashToken(p.Token), principal); err != nil {
				return err
			}
		}
	}
	hubToken := auth.DerivedToken(key, "service:hub")
	for i, region := range d.cfg.Regions {
		reg, _ := bildrum.RegionByCode(region)
		db := d.nodeDBs[region]
		if err := db.PutCredential(ctx, bildrum.HashToken(hubToken), bildrum.Principal{Name: "hub", Role: bildrum.RoleHub, Organisation: "bildrum hub"}); err != nil {
			return err
		}
		base := "http://" + d.listeners[i+1].Addr().String()
		ne := NodeEndpoints{Region: region, Name: reg.Name, Web: base, API: base + "/api/v1", Federation: base + "/federation/v1"}
		d.endpoints.Nodes = append(d.endpoints.Nodes, ne)
		if err := d.hubDB.PutNode(ctx, bildrum.Node{Region: region, Federation: ne.Federation, Web: ne.Web}); err != nil {
			return err
		}
		mux := http.NewServeMux()
		authn := &auth.Authenticator{Store: db, Log: d.log.With("part", "node", "region", region)}
		(&federation.NodeServer{Region: region, Register: db, Auth: authn, Log: authn.Log}).Routes(mux)
		(&web.Node{Region: reg, Register: db, Auth: authn, Log: authn.Log, HubURL: hubURL, OpenAPI: docs.OpenAPI}).Routes(mux)
		d.servers = append(d.servers, newServer(mux, authn.Log))
	}

	hubLog := d.log.With("part", "hub")
	hubAuth := &auth.Authenticator{Store: d.hubDB, Log: hubLog}
	hub := &federation.Hub{Directory: d.hubDB, Client: &federation.Client{Token: hubToken, NodeTimeout: 2 * time.Second}, Log: hubLog}
	mux := http.NewServeMux()
	(&web.Hub{Federation: hub, Auth: hubAuth, Log: hubLog, OpenAPI: docs.OpenAPI, Links: d.links()}).Routes(mux)
	d.servers = append([]*http.Server{newServer(mux, hubLog)}, d.servers...)

	return writeFileAtomic(filepath.Join(dir, "endpoints.json"), mustJSON(d.endpoints), 0o600)
}

// Endpoints returns where the started demo's parts listen.
func (d *Demo) Endpoints() Endpoints { return d.endpoints }
