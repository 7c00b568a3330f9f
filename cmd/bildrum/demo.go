package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/synth"
	"github.com/bildrum/bildrum/tlog"
	"github.com/bildrum/bildrum/web"
)

// DemoConfig configures `bildrum demo`.
type DemoConfig struct {
	// DataDir holds the demo's databases, its CA and certificates, its
	// configuration files, its key and endpoints.json. Default: bildrum/demo
	// under the user's cache directory. Data are kept across restarts;
	// delete the directory to start afresh.
	DataDir string
	// Addr is the hub's web address. Default 127.0.0.1:8080; the nodes'
	// pages take the next ports (8081, 8082, 8083) and their federation
	// endpoints the ones ten above (8091, 8092, 8093). Port 0 picks free
	// ports for every part.
	Addr string
	// Seed selects the synthetic population built on first start. Default 1.
	Seed int64
	// Regions are the demo's nodes. Default 01 Stockholm, 12 Skåne, 14 Västra Götaland.
	Regions []string
	// Images is how many of each region's latest examinations get
	// synthetic mammograms on first start. Default 200; -1 for none.
	Images int
	// Log receives the parts' logs. Default: text to stderr.
	Log *slog.Logger
	// Progress receives the progress bars of the first build. Default: stderr.
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
	Log     string `json:"log"`      // the transparency log's C2SP tiles and checkpoint
	LogVKey string `json:"log_vkey"` // its verifier key, for `bildrum log verify`
}

// NodeEndpoints are a regional node's addresses.
type NodeEndpoints struct {
	Region     string `json:"region"`
	Name       string `json:"name"`
	Web        string `json:"web"`
	API        string `json:"api"`
	DICOMweb   string `json:"dicomweb"`   // PS3.18 base URL, for region staff and radiologists
	Federation string `json:"federation"` // mutual TLS: federation certificates only
}

// Persona is a demo user and the bearer token the APIs accept for her.
type Persona struct {
	Token        string           `json:"token"`
	Role         bildrum.Role     `json:"role"`
	Organisation string           `json:"organisation"`
	Region       string           `json:"region,omitempty"`
	PersonID     bildrum.PersonID `json:"person_id,omitempty"`
}

// Demo is a hub and regional nodes in one process, started from the same
// configuration files `bildrum hub` and `bildrum node` read.
type Demo struct {
	cfg       DemoConfig
	log       *slog.Logger
	hub       *Hub
	nodes     []*Node // in the order of cfg.Regions
	endpoints Endpoints
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cfg := DemoConfig{}
	fs.StringVar(&cfg.DataDir, "data", "", "data directory (default: bildrum/demo in the user cache directory)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "hub web address; nodes take the next ports; port 0 picks free ports")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the synthetic population built on first start")
	fs.IntVar(&cfg.Images, "images", 200, "examinations per region that get synthetic mammograms on first start (-1: none)")
	writeConfig := fs.String("write-config", "", "write the CA, certificates and configuration files of the demo's hub and nodes into `DIR` for starting each as its own process, and exit")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Progress = stderr
	d := NewDemo(cfg)
	if *writeConfig != "" {
		return d.WriteConfig(ctx, *writeConfig, stdout)
	}
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
	if cfg.Images == 0 {
		cfg.Images = 200
	} else if cfg.Images < 0 {
		cfg.Images = 0
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Progress == nil {
		cfg.Progress = os.Stderr
	}
	return &Demo{cfg: cfg, log: cfg.Log}
}

// demoLayout is where the demo's parts listen and keep their files.
type demoLayout struct {
	host string
	port int // 0: free ports everywhere
}

func (d *Demo) layout() (demoLayout, error) {
	host, portStr, err := net.SplitHostPort(d.cfg.Addr)
	if err != nil {
		return demoLayout{}, usageError{fmt.Sprintf("demo: -addr %q: want HOST:PORT such as 127.0.0.1:8080", d.cfg.Addr)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+11+len(d.cfg.Regions) > 65535 {
		return demoLayout{}, usageError{fmt.Sprintf("demo: -addr %q: port must be a number from 0 to %d", d.cfg.Addr, 65535-11-len(d.cfg.Regions))}
	}
	return demoLayout{host: host, port: port}, nil
}

// addr returns the address of the part at offset from the hub's port.
func (l demoLayout) addr(offset int) string {
	if l.port == 0 {
		return net.JoinHostPort(l.host, "0")
	}
	return net.JoinHostPort(l.host, strconv.Itoa(l.port+offset))
}

// demoFiles are the files of a demo federation made by prepare.
type demoFiles struct {
	hub       HubConfig
	nodes     []NodeConfig
	endpoints Endpoints
}

// prepare makes (or reuses) the demo's CA, certificates, persona
// credentials and configuration files under dir, for parts listening on
// hubWeb and the given node addresses.
func (d *Demo) prepare(dir, hubWeb string, nodeWeb, nodeFed []string) (demoFiles, error) {
	key, err := demoKey(dir)
	if err != nil {
		return demoFiles{}, err
	}
	certs, err := demoCertificates(dir, d.cfg.Regions)
	if err != nil {
		return demoFiles{}, err
	}
	personas, err := d.personas(key)
	if err != nil {
		return demoFiles{}, err
	}
	var entries []CredentialEntry
	names := make([]string, 0, len(personas))
	for n := range personas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := personas[name]
		h := bildrum.HashToken(p.Token)
		entries = append(entries, CredentialEntry{TokenSHA256: hex.EncodeToString(h[:]), Name: name, Role: p.Role, Organisation: p.Organisation, Region: p.Region, PersonID: p.PersonID})
	}
	confDir := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o700); err != nil {
		return demoFiles{}, fmt.Errorf("demo log directory: %w", err)
	}
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return demoFiles{}, fmt.Errorf("demo configuration: %w", err)
	}
	credPath := filepath.Join(confDir, "credentials.json")
	if err := writeFileAtomic(credPath, mustJSON(entries), 0o600); err != nil {
		return demoFiles{}, err
	}

	vkey, err := demoLogKey(filepath.Join(dir, "log", "log.key"), "demo.bildrum.se/log")
	if err != nil {
		return demoFiles{}, err
	}
	var demoPersonas []web.DemoPersona
	for _, name := range names {
		p := personas[name]
		demoPersonas = append(demoPersonas, web.DemoPersona{Name: name, Role: p.Role, Organisation: p.Organisation, Token: p.Token})
	}
	personasPath := filepath.Join(confDir, "personas.json")
	if err := writeFileAtomic(personasPath, mustJSON(demoPersonas), 0o600); err != nil {
		return demoFiles{}, err
	}
	hubURL := "http://" + hubWeb
	f := demoFiles{endpoints: Endpoints{
		Hub:      HubEndpoints{Web: hubURL, API: hubURL + "/api/v1", OpenAPI: hubURL + "/openapi.yaml", Log: hubURL + "/log", LogVKey: vkey},
		Personas: personas,
	}}
	f.hub = HubConfig{Name: "SE", Database: filepath.Join(dir, "hub.db"), WebAddr: hubWeb, TLS: certs["hub"], Credentials: credPath, NodeTimeout: "2s", DemoPersonas: personasPath,
		Log: LogConfig{Dir: filepath.Join(dir, "log", "public"), Origin: "demo.bildrum.se/log", Key: filepath.Join(dir, "log", "log.key"),
			CommitmentKey: filepath.Join(dir, "log", "commitment.key"), Index: filepath.Join(dir, "log", "persons.idx")}}
	synthetic := &SyntheticConfig{Seed: d.cfg.Seed, Regions: d.cfg.Regions, Images: d.cfg.Images, ImageWidth: 256}
	f.hub.SyntheticConsent = &SyntheticConfig{Seed: d.cfg.Seed, Regions: d.cfg.Regions}
	f.hub.Notifications = filepath.Join(dir, "notifications.jsonl")
	for i, region := range d.cfg.Regions {
		reg, _ := bildrum.RegionByCode(region)
		nc := NodeConfig{Region: region, Database: filepath.Join(dir, "node-"+region+".db"), WebAddr: nodeWeb[i], FederationAddr: nodeFed[i],
			TLS: certs[region], HubWeb: hubURL, Credentials: credPath, Synthetic: synthetic, DemoPersonas: personasPath}
		f.nodes = append(f.nodes, nc)
		ne := NodeEndpoints{Region: region, Name: reg.Name, Web: "http://" + nodeWeb[i], API: "http://" + nodeWeb[i] + "/api/v1", DICOMweb: "http://" + nodeWeb[i] + "/dicomweb", Federation: "https://" + nodeFed[i] + "/federation/v1"}
		f.endpoints.Nodes = append(f.endpoints.Nodes, ne)
		f.hub.Nodes = append(f.hub.Nodes, NodeEntry{Region: region, Federation: ne.Federation, Web: ne.Web})
	}
	f.hub.Links = demoLinks(f.endpoints)
	if err := writeFileAtomic(filepath.Join(confDir, "hub.json"), mustJSON(f.hub), 0o600); err != nil {
		return demoFiles{}, err
	}
	for _, nc := range f.nodes {
		if err := writeFileAtomic(filepath.Join(confDir, "node-"+nc.Region+".json"), mustJSON(nc), 0o600); err != nil {
			return demoFiles{}, err
		}
	}
	return f, nil
}

// Start opens the demo: listeners first (to learn free ports), then the
// configuration, then every node (building its synthetic register on first
// start) and the hub. On error it leaves no half-built database behind and
// no endpoints.json.
func (d *Demo) Start(ctx context.Context) error {
	dir, err := d.dataDir(d.cfg.DataDir)
	if err != nil {
		return err
	}
	lay, err := d.layout()
	if err != nil {
		return err
	}
	hubL, err := listen(lay.addr(0), "hub web")
	if err != nil {
		return err
	}
	var webLs, fedLs []net.Listener
	closeAll := func() {
		for _, l := range append(append([]net.Listener{hubL}, webLs...), fedLs...) {
			l.Close()
		}
	}
	var webAddrs, fedAddrs []string
	for i := range d.cfg.Regions {
		wl, err := listen(lay.addr(1+i), "node web")
		if err != nil {
			closeAll()
			return err
		}
		webLs = append(webLs, wl)
		fl, err := listen(lay.addr(11+i), "node federation")
		if err != nil {
			closeAll()
			return err
		}
		fedLs = append(fedLs, fl)
		webAddrs, fedAddrs = append(webAddrs, wl.Addr().String()), append(fedAddrs, fl.Addr().String())
	}
	files, err := d.prepare(dir, hubL.Addr().String(), webAddrs, fedAddrs)
	if err != nil {
		closeAll()
		return err
	}
	// The nodes are independent: they open, and build their data on first
	// start, in parallel, sharing one progress bar.
	group := newProgressGroup(d.cfg.Progress, "building the demo's synthetic data")
	nodes := make([]*Node, len(files.nodes))
	errs := make([]error, len(files.nodes))
	var wg sync.WaitGroup
	for i, nc := range files.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = OpenNode(ctx, nc, d.log, group.phase, webLs[i], fedLs[i])
		}()
	}
	wg.Wait()
	for i, n := range nodes {
		if n != nil {
			d.nodes = append(d.nodes, n)
		} else if err == nil {
			err = errs[i]
		}
	}
	if err != nil {
		hubL.Close()
		return err
	}
	if d.hub, err = OpenHub(ctx, files.hub, d.log, hubL); err != nil {
		return err
	}
	d.endpoints = files.endpoints
	return writeFileAtomic(filepath.Join(dir, "endpoints.json"), mustJSON(d.endpoints), 0o600)
}

// WriteConfig writes the files of the demo's federation into dir, on the
// fixed ports of -addr, so that the hub and each node can be started as
// processes of their own: `bildrum node -config DIR/config/node-12.json`.
func (d *Demo) WriteConfig(ctx context.Context, dir string, stdout io.Writer) error {
	lay, err := d.layout()
	if err != nil {
		return err
	}
	if lay.port == 0 {
		return usageError{"demo -write-config needs fixed ports: give -addr HOST:PORT with a port other than 0"}
	}
	if dir, err = d.dataDir(dir); err != nil {
		return err
	}
	var webAddrs, fedAddrs []string
	for i := range d.cfg.Regions {
		webAddrs, fedAddrs = append(webAddrs, lay.addr(1+i)), append(fedAddrs, lay.addr(11+i))
	}
	files, err := d.prepare(dir, lay.addr(0), webAddrs, fedAddrs)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "endpoints.json"), mustJSON(files.endpoints), 0o600); err != nil {
		return err
	}
	self, _ := os.Executable()
	if filepath.Base(self) != "bildrum" {
		self = "bildrum"
	}
	fmt.Fprintf(stdout, "Wrote the demo federation's CA, certificates and configuration into %s.\nStart each part as its own process:\n\n", dir)
	for _, nc := range files.nodes {
		fmt.Fprintf(stdout, "  %s node -config %s\n", self, filepath.Join(dir, "config", "node-"+nc.Region+".json"))
	}
	fmt.Fprintf(stdout, "  %s hub -config %s\n\nEndpoints and persona tokens: %s\n", self, filepath.Join(dir, "config", "hub.json"), filepath.Join(dir, "endpoints.json"))
	return nil
}

// Endpoints returns where the started demo's parts listen.
func (d *Demo) Endpoints() Endpoints { return d.endpoints }

// Serve answers requests until ctx ends or a part fails.
func (d *Demo) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(d.nodes)+1)
	go func() { errc <- d.hub.Serve(ctx) }()
	for _, n := range d.nodes {
		go func() { errc <- n.Serve(ctx) }()
	}
	var first error
	for range len(d.nodes) + 1 {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// Close stops every part and closes the databases.
func (d *Demo) Close() error {
	var errs []error
	if d.hub != nil {
		errs = append(errs, d.hub.Close())
	}
	for _, n := range d.nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// demoLinks are what exists so far, for the hub's first page.
func demoLinks(e Endpoints) []web.Link {
	links := []web.Link{
		{Title: "Quality indicators, region by region", URL: "/quality", Note: "funnel plots and trends against the EU guidelines; sign in as quality or a region's staff"},
		{Title: "Mina data", URL: "/me", Note: "a woman's own choices about her data and her verifiable events; sign in as the citizen"},
		{Title: "Feasibility counts", URL: "/research", Note: "how many women match a planned study, private by design; sign in as the researcher"},
		{Title: "Trial recruitment", URL: "/recruitment", Note: "invitations that reach only women who opted in; sign in as the researcher or the permit officer"},
		{Title: "Federation overview (JSON)", URL: "/api/v1/federation", Note: "needs a bearer token from endpoints.json"},
		{Title: "API description (OpenAPI 3.1)", URL: "/openapi.yaml"},
	}
	for _, n := range e.Nodes {
		links = append(links, web.Link{Title: "Node " + n.Region + " " + n.Name, URL: n.Web + "/", Note: "the region's own page; its register rows at " + n.API + "/exams for its staff"})
	}
	return links
}

// dataDir makes sure a data directory exists and is writable.
func (d *Demo) dataDir(dir string) (string, error) {
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", bildrum.Errorf(bildrum.EINVALID, "no user cache directory (%v): choose a data directory with -data DIR", err)
		}
		dir = filepath.Join(cache, "bildrum", "demo")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", bildrum.Errorf(bildrum.EINVALID, "cannot create data directory %s (%v): choose another with -data DIR", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return "", bildrum.Errorf(bildrum.EINVALID, "cannot write to data directory %s (%v): choose another with -data DIR", dir, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	if d.cfg.DataDir == "" {
		d.cfg.DataDir = dir
	}
	return dir, nil
}

// demoKey returns the demo's secret key, from which the personas' tokens
// derive, creating it on first start.
func demoKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "demo.key")
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		return key, writeFileAtomic(path, key, 0o600)
	} else if err != nil {
		return nil, fmt.Errorf("read demo key: %w", err)
	}
	if len(key) != 32 {
		return nil, bildrum.Errorf(bildrum.EINVALID, "demo key %s is damaged: delete it (the personas get new tokens) and start again", path)
	}
	return key, nil
}

// demoLogKey makes the demo log's signing key on first start and returns
// its verifier key, so endpoints.json can publish it before the hub runs.
func demoLogKey(path, origin string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err := tlog.GenerateKey(origin)
		if err != nil {
			return "", err
		}
		return vkey, writeFileAtomic(path, []byte(skey), 0o600)
	} else if err != nil {
		return "", fmt.Errorf("demo log key: %w", err)
	}
	return tlog.VerifierKeyOf(strings.TrimSpace(string(b)))
}

// demoCertificates makes the demo federation's CA and the hub's and nodes'
// certificates under dir on first start, and returns each part's TLS files
// (key "hub" and the region codes).
func demoCertificates(dir string, regions []string) (map[string]federation.TLSFiles, error) {
	caDir := filepath.Join(dir, "ca")
	ca, err := federation.OpenCA(caDir)
	if err != nil {
		if ca, err = federation.InitCA(caDir, "bildrum demo federation CA", time.Now()); err != nil {
			return nil, err
		}
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo certificates: %w", err)
	}
	out := map[string]federation.TLSFiles{}
	parts := append([]string{"hub"}, regions...)
	for _, p := range parts {
		id := federation.NodeIdentity(p)
		name := "node-" + p
		if p == "hub" {
			id, name = federation.HubIdentity("SE"), "hub"
		}
		f := federation.TLSFiles{CA: filepath.Join(caDir, federation.CACertFile), CRL: filepath.Join(caDir, federation.CRLFile),
			Cert: filepath.Join(certDir, name+".crt"), Key: filepath.Join(certDir, name+".key")}
		if c, err := federation.LoadCredentials(f); err != nil || time.Until(c.NotAfter) < 30*24*time.Hour {
			key, csr, err := federation.NewKeyAndRequest(id, []string{"127.0.0.1", "localhost"})
			if err != nil {
				return nil, err
			}
			req, err := federation.ParseRequest(csr)
			if err != nil {
				return nil, err
			}
			certPEM, err := ca.Sign(req, 365*24*time.Hour)
			if err != nil {
				return nil, err
			}
			if err := federation.WriteKey(f.Key, key); err != nil {
				return nil, err
			}
			if err := writeFileAtomic(f.Cert, certPEM, 0o644); err != nil {
				return nil, err
			}
		}
		out[p] = f
	}
	return out, nil
}

// personas returns the demo's users with their tokens. The citizen is the
// first woman with a screening examination in the region of Skåne (or the
// first demo region).
func (d *Demo) personas(key []byte) (map[string]Persona, error) {
	ps := map[string]Persona{
		"quality":        {Role: bildrum.RoleQuality, Organisation: "Regionala cancercentrum i samverkan"},
		"researcher":     {Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"},
		"permit-officer": {Role: bildrum.RolePermitOfficer, Organisation: "Hälsodataåtkomstorgan (health data access body)"},
		"auditor":        {Role: bildrum.RoleAuditor, Organisation: "Inspektionen för vård och omsorg (IVO)"},
	}
	for _, r := range d.cfg.Regions {
		reg, _ := bildrum.RegionByCode(r)
		ps["staff-"+r] = Persona{Role: bildrum.RoleStaff, Organisation: "Region " + reg.Name, Region: r}
	}
	home, _ := bildrum.RegionByCode(d.cfg.Regions[0])
	for _, r := range d.cfg.Regions {
		if r == "12" {
			home, _ = bildrum.RegionByCode(r)
		}
	}
	ps["radiologist"] = Persona{Role: bildrum.RoleRadiologist, Organisation: "Region " + home.Name, Region: home.Code}
	citizen, err := demoCitizen(d.cfg.Seed, d.cfg.Regions, home.Code)
	if err != nil {
		return nil, err
	}
	ps["citizen"] = Persona{Role: bildrum.RoleCitizen, Region: home.Code, PersonID: citizen}
	for name, p := range ps {
		p.Token = auth.DerivedToken(key, name)
		ps[name] = p
	}
	return ps, nil
}

// demoCitizen picks the first woman of the synthetic population with an
// examination in region.
func demoCitizen(seed int64, regions []string, region string) (bildrum.PersonID, error) {
	var found bildrum.PersonID
	stop := errors.New("found")
	_, err := synth.Generate(context.Background(), synth.Config{Seed: seed, Regions: regions}, func(e bildrum.ScreeningEpisode) error {
		if e.Region == region && e.Attended {
			found = e.Person
			return stop
		}
		return nil
	})
	if found == "" {
		return "", fmt.Errorf("no examined woman in region %s to be the demo citizen: %v", region, err)
	}
	return found, nil
}

// PrintEndpoints tells the person who started the demo where to look.
func (d *Demo) PrintEndpoints(w io.Writer) {
	e := d.endpoints
	fmt.Fprintf(w, "bildrum demo is running. Open %s/ in a browser.\n\n", e.Hub.Web)
	fmt.Fprintf(w, "  hub            %s  (API %s)\n", e.Hub.Web, e.Hub.API)
	for _, n := range e.Nodes {
		fmt.Fprintf(w, "  node %s %-17s %s  (federation %s)\n", n.Region, n.Name, n.Web, n.Federation)
	}
	names := make([]string, 0, len(e.Personas))
	for n := range e.Personas {
		names = append(names, n)
	}
	sort.Strings(names)
	path := filepath.Join(d.cfg.DataDir, "endpoints.json")
	fmt.Fprintf(w, "\nPersonas (bearer tokens in %s):\n  ", path)
	for i, n := range names {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprint(w, n)
	}
	fmt.Fprintf(w, "\n\nTry: curl -H \"Authorization: Bearer $(jq -r '.personas[\"staff-%s\"].token' %s)\" '%s/exams?limit=2'\n",
		e.Nodes[0].Region, path, e.Nodes[0].API)
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
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

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only our own plain structs are encoded
	}
	return append(b, '\n')
}
