package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
	"github.com/bildrum/bildrum/web"
)

// links are what exists so far, for the hub's first page.
func (d *Demo) links() []web.Link {
	links := []web.Link{
		{Title: "Federation overview (JSON)", URL: "/api/v1/federation", Note: "needs a bearer token from endpoints.json"},
		{Title: "API description (OpenAPI 3.1)", URL: "/openapi.yaml"},
	}
	for _, n := range d.endpoints.Nodes {
		links = append(links, web.Link{Title: "Node " + n.Region + " " + n.Name, URL: n.Web + "/", Note: "the region's own page; its register rows at " + n.API + "/exams for its staff"})
	}
	return links
}

func (d *Demo) nodeDBsInOrder() []*sqlstore.DB {
	var out []*sqlstore.DB
	for _, r := range d.cfg.Regions {
		out = append(out, d.nodeDBs[r])
	}
	return out
}

// dataDir makes sure the data directory exists and is writable.
func (d *Demo) dataDir() (string, error) {
	dir := d.cfg.DataDir
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
	d.cfg.DataDir = dir
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

// listen opens the hub's and every node's listener: consecutive ports from
// the configured one, or free ports when it is 0.
func (d *Demo) listen() error {
	host, portStr, err := net.SplitHostPort(d.cfg.Addr)
	if err != nil {
		return usageError{fmt.Sprintf("demo: -addr %q: want HOST:PORT such as 127.0.0.1:8080", d.cfg.Addr)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+len(d.cfg.Regions) > 65535 {
		return usageError{fmt.Sprintf("demo: -addr %q: port must be a number from 0 to %d", d.cfg.Addr, 65535-len(d.cfg.Regions))}
	}
	for i := 0; i <= len(d.cfg.Regions); i++ {
		p := 0
		if port != 0 {
			p = port + i
		}
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return bildrum.Errorf(bildrum.EUNAVAILABLE, "address %s is in use by another program: stop it, or choose another port with -addr (the nodes take the next %d ports; port 0 picks free ones)", addr, len(d.cfg.Regions))
		} else if err != nil {
			return bildrum.Errorf(bildrum.EINVALID, "cannot listen on %s (%v): choose another address with -addr", addr, errors.Unwrap(err))
		}
		d.listeners = append(d.listeners, l)
	}
	return nil
}

// openNode opens a node's database.
func (d *Demo) openNode(ctx context.Context, dir, region string) (*sqlstore.DB, error) {
	return sqlstore.Open(ctx, filepath.Join(dir, "node-"+region+".db"), sqlstore.PartNode)
}

// build fills the node databases that are still empty with the synthetic
// population. Each region's register is stored in one transaction, so an
// interrupted build leaves that region empty and the next start builds it.
func (d *Demo) build(ctx context.Context) error {
	var empty []string
	for _, r := range d.cfg.Regions {
		sum, err := d.nodeDBs[r].RegisterSummary(ctx)
		if err != nil {
			return err
		}
		if sum.DataVersion == 0 {
			empty = append(empty, r)
		}
	}
	if len(empty) == 0 {
		return nil
	}
	cfg := synth.Config{Seed: d.cfg.Seed, Regions: d.cfg.Regions}
	women, err := synth.Women(cfg)
	if err != nil {
		return err
	}
	bar := newProgress(d.cfg.Progress, len(women), "building synthetic registers")
	byRegion := map[string][]bildrum.ScreeningEpisode{}
	var last bildrum.PersonID
	if _, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
		if e.Person != last {
			last = e.Person
			bar.Add(1)
		}
		byRegion[e.Region] = append(byRegion[e.Region], e)
		return nil
	}); err != nil {
		return fmt.Errorf("build synthetic data: %w", err)
	}
	bar.Finish()
	for _, r := range empty {
		if _, err := d.nodeDBs[r].PutEpisodes(ctx, byRegion[r]); err != nil {
			return fmt.Errorf("build register of region %s: %w", r, err)
		}
		d.log.Info("built synthetic register", "region", r, "episodes", len(byRegion[r]))
	}
	return nil
}

// personas returns the demo's users with their tokens. The citizen is a
// woman with an examination in the first demo region that has one.
func (d *Demo) personas(ctx context.Context, key []byte) (map[string]Persona, error) {
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
	first, _ := bildrum.RegionByCode(d.cfg.Regions[0])
	for _, r := range d.cfg.Regions {
		if r == "12" {
			first, _ = bildrum.RegionByCode(r)
		}
	}
	ps["radiologist"] = Persona{Role: bildrum.RoleRadiologist, Organisation: "Region " + first.Name, Region: first.Code}
	citizen, err := d.demoCitizen(ctx, first.Code)
	if err != nil {
		return nil, err
	}
	ps["citizen"] = Persona{Role: bildrum.RoleCitizen, Organisation: "", Region: first.Code, PersonID: citizen}
	for name, p := range ps {
		p.Token = auth.DerivedToken(key, name)
		ps[name] = p
	}
	return ps, nil
}

// demoCitizen picks the first woman of the region's register who was examined.
func (d *Demo) demoCitizen(ctx context.Context, region string) (bildrum.PersonID, error) {
	for offset := 0; ; offset += 200 {
		rows, total, err := d.nodeDBs[region].ListEpisodes(ctx, bildrum.EpisodeFilter{Limit: 200, Offset: offset})
		if err != nil {
			return "", err
		}
		for _, e := range rows {
			if e.Attended {
				return e.Person, nil
			}
		}
		if offset+200 >= total {
			return "", fmt.Errorf("no examined woman in the register of region %s to be the demo citizen", region)
		}
	}
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve answers requests until ctx ends, then shuts the servers down.
func (d *Demo) Serve(ctx context.Context) error {
	errc := make(chan error, len(d.servers))
	for i, srv := range d.servers {
		go func() { errc <- srv.Serve(d.listeners[i]) }()
	}
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping")
			return nil
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) { // a part closed on purpose is not a failure
				return fmt.Errorf("serve: %w", err)
			}
		}
	}
}

// Close stops every server, waiting briefly for requests under way, and
// closes the databases.
func (d *Demo) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range d.servers {
		srv.Shutdown(ctx)
	}
	for _, l := range d.listeners {
		l.Close()
	}
	var errs []error
	if d.hubDB != nil {
		errs = append(errs, d.hubDB.Close())
	}
	for _, db := range d.nodeDBs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
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
	fmt.Fprintf(w, "\nPersonas (bearer tokens in %s):\n  ", filepath.Join(d.cfg.DataDir, "endpoints.json"))
	for i, n := range names {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprint(w, n)
	}
	fmt.Fprintf(w, "\n\nTry: curl -H \"Authorization: Bearer $(jq -r '.personas[\"staff-%s\"].token' %s)\" '%s/exams?limit=2'\n",
		e.Nodes[0].Region, filepath.Join(d.cfg.DataDir, "endpoints.json"), e.Nodes[0].API)
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
