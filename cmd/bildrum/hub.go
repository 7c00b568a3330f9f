package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/docs"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/quality"
	"github.com/bildrum/bildrum/query"
	"github.com/bildrum/bildrum/recruit"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
	"github.com/bildrum/bildrum/tlog"
	"github.com/bildrum/bildrum/web"
)

// HubConfig configures `bildrum hub`: the national hub. docs/deploy.md
// describes each field with an example.
type HubConfig struct {
	// Name is the hub's name in the federation's certificates, a country
	// code such as "SE".
	Name string `json:"name"`
	// Database is the hub's own database: a SQLite file path or a
	// postgres:// URL.
	Database string `json:"database"`
	// WebAddr is where people and programs reach the hub's pages and APIs
	// (HTTP), e.g. "127.0.0.1:8080".
	WebAddr string `json:"web_addr"`
	// TLS names the hub's federation certificate, key, the federation CA
	// and its revocation list (bildrum ca).
	TLS federation.TLSFiles `json:"tls"`
	// Nodes are the regional nodes of the federation.
	Nodes []NodeEntry `json:"nodes"`
	// PeerAddr is where other countries' hubs call this hub over mutual
	// TLS, e.g. "0.0.0.0:8444". Needed only when Peers is set.
	PeerAddr string `json:"peer_addr,omitempty"`
	// Peers are other countries' data spaces: each is asked like a node for
	// the calls that make sense across borders, and may ask this hub the same.
	Peers []PeerEntry `json:"peers,omitempty"`
	// NodeTimeout bounds each node's answer in a fan-out, as a Go duration
	// ("2s"). Default 2s.
	NodeTimeout string `json:"node_timeout,omitempty"`
	// Credentials is a file of the bearer credentials (token hashes) the hub
	// accepts, loaded at every start. Optional.
	Credentials string `json:"credentials,omitempty"`
	// Log is the transparency log the hub keeps of every access to a
	// woman's data. Required.
	Log LogConfig `json:"log"`
	// ConsentSync is how often the hub confirms every node's copy of the
	// consent register current, as a Go duration (changes are pushed at
	// once as well). Default "10s"; keep it well under the nodes'
	// consent_max_age.
	ConsentSync string `json:"consent_sync,omitempty"`
	// DemoPersonas is a file of demo users with their tokens, offered for
	// one-click sign-in (a JSON list of {"name", "role", "organisation",
	// "token"}). Only for demo federations with synthetic data; a real one
	// signs people in with their e-identification. Optional.
	DemoPersonas string `json:"demo_personas,omitempty"`
	// Notifications is the file to which the recruitment broker appends
	// the notifications of new invitations (one JSON object a line), the
	// demo's stand-in for SMS and e-mail. Without it notifications wait,
	// unsent, in the hub's database. Optional.
	Notifications string `json:"notifications,omitempty"`
	// SyntheticConsent, for demo federations, fills an empty consent
	// register with the synthetic population's choices (synth.ConsentChoices):
	// some women opted in to trial contact, a few opted out. Optional.
	SyntheticConsent *SyntheticConfig `json:"synthetic_consent,omitempty"`
	// Links are shown on the first page as what exists so far. Optional.
	Links []web.Link `json:"links,omitempty"`
}

// NodeEntry is a node as the hub's configuration names it.
type NodeEntry struct {
	Region     string `json:"region"`
	Federation string `json:"federation"` // https://HOST:PORT/federation/v1
	Web        string `json:"web"`        // the node's pages, for links
}

// LogConfig places the hub's transparency log (docs/transparency.md).
type LogConfig struct {
	// Dir holds the public log (checkpoint and tiles), served under /log/.
	Dir string `json:"dir"`
	// Origin names the log for ever, e.g. "bildrum.se/log".
	Origin string `json:"origin"`
	// Key is the log's signing key file, made (0600) on first start.
	Key string `json:"key"`
	// CommitmentKey is the secret key of the commitments to persons, made
	// (0600) on first start. Back it up with Key.
	CommitmentKey string `json:"commitment_key"`
	// Index is the file of which leaves are whose (by keyed tag only).
	Index string `json:"index"`
}

// PeerEntry is another country's hub as the configuration names it, with
// the one CA trusted for it.
type PeerEntry struct {
	Name       string `json:"name"`       // the peer hub's name, e.g. "NO"
	Federation string `json:"federation"` // https://HOST:PORT/federation/v1
	CA         string `json:"ca"`         // the peer federation's CA certificate (PEM)
}

func (c HubConfig) check() (time.Duration, error) {
	if c.Name == "" {
		return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: set name, e.g. \"SE\"")
	}
	if c.WebAddr == "" {
		return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: set web_addr, e.g. \"127.0.0.1:8080\"")
	}
	if c.Log.Dir == "" || c.Log.Origin == "" || c.Log.Key == "" || c.Log.CommitmentKey == "" || c.Log.Index == "" {
		return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: log needs dir, origin, key, commitment_key and index (see docs/deploy.md)")
	}
	timeout := 2 * time.Second
	if c.NodeTimeout != "" {
		d, err := time.ParseDuration(c.NodeTimeout)
		if err != nil || d <= 0 {
			return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: node_timeout %q: want a duration such as \"2s\"", c.NodeTimeout)
		}
		timeout = d
	}
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		if _, err := bildrum.RegionByCode(n.Region); err != nil {
			return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: nodes: %s", bildrum.ErrorMessage(err))
		}
		if seen[n.Region] {
			return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: region %s is listed twice", n.Region)
		}
		seen[n.Region] = true
	}
	if c.ConsentSync != "" {
		if d, err := time.ParseDuration(c.ConsentSync); err != nil || d <= 0 {
			return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: consent_sync %q: want a duration such as \"10s\"", c.ConsentSync)
		}
	}
	if len(c.Peers) > 0 && c.PeerAddr == "" {
		return 0, bildrum.Errorf(bildrum.EINVALID, "hub configuration: peers need peer_addr, the address where they call this hub, e.g. \"0.0.0.0:8444\"")
	}
	return timeout, nil
}

// Hub is a running national hub.
type Hub struct {
	cfg     HubConfig
	log     *slog.Logger
	db      *sqlstore.DB
	tlog    *tlog.Log
	servers []server
	sync    *federation.ConsentSync
	pull    *federation.AccessPull
	broker  *recruit.Broker
}

// OpenHub opens a hub from its configuration; webL may be a listener opened
// already, nil to listen on the configured address.
func OpenHub(ctx context.Context, cfg HubConfig, log *slog.Logger, webL net.Listener) (_ *Hub, err error) {
	timeout, err := cfg.check()
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: log.With("part", "hub")}
	defer func() {
		if err != nil {
			h.Close()
			if webL != nil {
				webL.Close()
			}
		}
	}()
	creds, err := federation.LoadCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if creds.Identity != federation.HubIdentity(cfg.Name) {
		return nil, bildrum.Errorf(bildrum.EINVALID, "hub %s has the certificate of %s: issue one for this hub with 'bildrum ca'", cfg.Name, creds.Identity)
	}
	if h.db, err = openDatabase(ctx, cfg.Database, sqlstore.PartHub); err != nil {
		return nil, err
	}
	if h.tlog, err = tlog.Open(ctx, tlog.Config{Dir: cfg.Log.Dir, Origin: cfg.Log.Origin, KeyFile: cfg.Log.Key,
		CommitmentKeyFile: cfg.Log.CommitmentKey, IndexFile: cfg.Log.Index, Log: h.log.With("part", "log")}); err != nil {
		return nil, err
	}
	for _, n := range cfg.Nodes {
		if err := h.db.PutNode(ctx, bildrum.Node{Region: n.Region, Federation: n.Federation, Web: n.Web}); err != nil {
			return nil, err
		}
	}
	if err := loadCredentials(ctx, cfg.Credentials, h.db); err != nil {
		return nil, err
	}
	if cfg.SyntheticConsent != nil {
		if err := seedConsent(ctx, h.db, *cfg.SyntheticConsent); err != nil {
			return nil, err
		}
	}
	if webL == nil {
		if webL, err = listen(cfg.WebAddr, "hub web"); err != nil {
			return nil, err
		}
	}
	fed := &federation.Hub{Directory: h.db, Client: &federation.Client{Credentials: creds, NodeTimeout: timeout}, Log: h.log}
	var trusts []federation.PeerTrust
	for _, p := range cfg.Peers {
		tr, err := federation.LoadPeerTrust(p.Name, p.CA)
		if err != nil {
			return nil, err
		}
		trusts = append(trusts, tr)
		fed.Peers = append(fed.Peers, federation.Peer{Trust: tr, Federation: p.Federation})
	}
	syncEvery, _ := time.ParseDuration(cfg.ConsentSync)
	h.sync = &federation.ConsentSync{Hub: fed, Register: h.db, Interval: syncEvery, Log: h.log}
	h.sync.Init()
	h.pull = &federation.AccessPull{Hub: fed, Cursors: h.db, Append: h.appendEvents, Local: outboxOf(h.db), Log: h.log}
	h.broker = &recruit.Broker{Store: h.db, Consent: h.db, Log: h.log,
		Match: func(ctx context.Context, req bildrum.TrialMatchRequest, regions []string) ([]recruit.RegionMatch, error) {
			results, err := fed.MatchRecruitment(ctx, req, regions)
			out := make([]recruit.RegionMatch, len(results))
			for i, r := range results {
				out[i] = recruit.RegionMatch{RegionAnswer: r.RegionAnswer, Answer: r.Value}
			}
			return out, err
		}}
	if cfg.Notifications != "" {
		h.broker.Notifier = &recruit.FileNotifier{Path: cfg.Notifications}
	}
	authn := &auth.Authenticator{Store: h.db, Log: h.log}
	mux := http.NewServeMux()
	(&web.Recruitment{Broker: h.broker, Auth: authn, Log: h.log}).Routes(mux)
	(&web.Consent{Register: h.db, Auth: authn, Log: h.log, Recorder: h.tlog, Changed: h.broker.ConsentChanged, Propagate: func(ctx context.Context) []bildrum.RegionAnswer {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		results, err := fed.SyncConsent(ctx, h.db)
		if err != nil {
			h.log.Warn("propagate consent", "err", err)
			h.sync.Trigger()
			return nil
		}
		var out []bildrum.RegionAnswer
		for _, r := range results {
			out = append(out, r.RegionAnswer)
			if r.Status != bildrum.AnswerOK {
				h.sync.Trigger()
			}
		}
		return out
	}}).Routes(mux)
	var demo []web.DemoPersona
	if cfg.DemoPersonas != "" {
		if err := readConfig(cfg.DemoPersonas, &demo); err != nil {
			return nil, err
		}
	}
	(&web.Sessions{Auth: authn, Log: h.log, Demo: demo}).Routes(mux)
	(&web.Citizen{Register: h.db, Auth: authn, Log: h.log, Events: "/api/v1/me/events", Inbox: "/api/v1/me/invitations"}).Routes(mux)
	(&web.Feasibility{Auth: authn, Log: h.log,
		Ask: func(ctx context.Context, body []byte, p bildrum.Principal) (any, error) {
			c, err := query.ParseCriteria(body)
			if err != nil {
				return nil, err
			}
			req := bildrum.FeasibilityRequest{Criteria: c.Canonical(), QueryHash: c.Hash(), Requester: bildrum.RequesterOf(p)}
			res, err := fed.Feasibility(ctx, req)
			if err != nil {
				return nil, err
			}
			if err := h.db.AddFeasibility(ctx, p.Name+"\x00"+p.Organisation, req.QueryHash, res); err != nil {
				return nil, err
			}
			return res, nil
		},
		Overview: func(ctx context.Context, p bildrum.Principal) (any, error) {
			budgets, err := fed.RemainingBudgets(ctx, bildrum.RequesterOf(p))
			if err != nil {
				return nil, err
			}
			history, err := h.db.FeasibilityHistory(ctx, p.Name+"\x00"+p.Organisation, 50)
			if err != nil {
				return nil, err
			}
			return struct {
				Budgets []bildrum.RegionBudget      `json:"budgets"`
				History []sqlstore.FeasibilityEntry `json:"history"`
			}{budgets, history}, nil
		}}).Routes(mux)
	(&web.Events{Log: h.tlog, Auth: authn, Logs: h.log}).Routes(mux)
	h.tlog.Routes(mux)
	targets, err := quality.DefaultTargets()
	if err != nil {
		return nil, err
	}
	(&web.Quality{Targets: targets, Auth: authn, Log: h.log, Indicators: func(ctx context.Context, period string) ([]web.RegionIndicators, error) {
		results, err := fed.Indicators(ctx, period)
		if err != nil {
			return nil, err
		}
		out := make([]web.RegionIndicators, 0, len(results))
		for _, r := range results {
			reg, _ := bildrum.RegionByCode(r.Region)
			ri := web.RegionIndicators{RegionAnswer: r.RegionAnswer, Name: reg.Name}
			if r.Status == bildrum.AnswerOK {
				if err := json.Unmarshal(r.Value, &ri.Reports); err != nil {
					ri.Status, ri.Reason = bildrum.AnswerRefused, "its indicators could not be read: "+err.Error()
				}
			}
			out = append(out, ri)
		}
		return out, nil
	}}).Routes(mux)
	(&web.Hub{Federation: fed, Auth: authn, Log: h.log, OpenAPI: docs.OpenAPI, Links: cfg.Links}).Routes(mux)
	h.servers = []server{newHTTPServer(mux, webL, nil, h.log)}
	if len(trusts) > 0 {
		peerL, err := listen(cfg.PeerAddr, "hub peer endpoint")
		if err != nil {
			return nil, err
		}
		peerMux := http.NewServeMux()
		(&federation.HubServer{Name: cfg.Name, Nodes: fed.Nodes, Log: h.log}).Routes(peerMux)
		h.servers = append(h.servers, newHTTPServer(peerMux, peerL, creds.PeerServerConfig(trusts), h.log))
	}
	return h, nil
}

// seedConsent fills an empty consent register with the synthetic
// population's choices.
func seedConsent(ctx context.Context, register bildrum.ConsentStore, cfg SyntheticConfig) error {
	_, version, err := register.ConsentChanges(ctx, 0, 1)
	if err != nil || version > 0 {
		return err
	}
	seen := map[bildrum.PersonID]bool{}
	var persons []bildrum.PersonID
	if _, err := synth.Generate(ctx, synth.Config{Seed: cfg.Seed, Regions: cfg.Regions}, func(e bildrum.ScreeningEpisode) error {
		if !seen[e.Person] {
			seen[e.Person] = true
			persons = append(persons, e.Person)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("synthetic consent: %w", err)
	}
	for _, p := range persons {
		if c, ok := synth.ConsentChoices(cfg.Seed, p); ok {
			if _, err := register.PutConsent(ctx, p, c, "synthetic population"); err != nil {
				return fmt.Errorf("synthetic consent: %w", err)
			}
		}
	}
	return nil
}

// WebURL is where the hub's pages are.
func (h *Hub) WebURL() string { return "http://" + h.servers[0].l.Addr().String() }

// Serve answers requests and keeps the nodes' consent replicas current
// until ctx ends.
func (h *Hub) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 3)
	go func() { h.sync.Run(ctx); done <- struct{}{} }()
	go func() { h.pull.Run(ctx); done <- struct{}{} }()
	go func() { h.broker.Run(ctx); done <- struct{}{} }()
	err := serveAll(ctx, h.log, h.servers)
	cancel()
	for range cap(done) {
		<-done
	}
	return err
}

// SyncConsentNow brings every node's consent replica up to date now,
// instead of at the next periodic sync.
func (h *Hub) SyncConsentNow(ctx context.Context) error {
	results, err := h.sync.Hub.SyncConsent(ctx, h.db)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status != bildrum.AnswerOK {
			return fmt.Errorf("sync consent of region %s: %s %s", r.Region, r.Status, r.Reason)
		}
	}
	return nil
}

// appendEvents appends a page of carried access events to the log in one
// round.
func (h *Hub) appendEvents(ctx context.Context, events []bildrum.AccessEvent) error {
	_, err := h.tlog.AppendAll(ctx, events)
	return err
}

// CarryAccessEvents carries the nodes' (and the hub's own) new access
// events into the transparency log now, instead of at the next pull, and
// waits until a published checkpoint covers them.
func (h *Hub) CarryAccessEvents(ctx context.Context) error {
	results, err := h.pull.Once(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status != bildrum.AnswerOK {
			return fmt.Errorf("carry access events of region %s: %s %s", r.Region, r.Status, r.Reason)
		}
	}
	size, err := h.tlog.Size(ctx)
	if err != nil || size == 0 {
		return err
	}
	_, err = h.tlog.WaitCheckpoint(ctx, size-1)
	return err
}

// MatchRecruitmentNow has the nodes match every approved recruitment
// request that some region has not matched yet, and sends the
// notifications, now instead of at the broker's next round.
func (h *Hub) MatchRecruitmentNow(ctx context.Context) error {
	if err := h.broker.MatchPending(ctx); err != nil {
		return err
	}
	_, err := h.broker.Notify(ctx)
	return err
}

// Close stops the servers, closes the transparency log (after its last
// events are in a published checkpoint) and the database.
func (h *Hub) Close() error {
	shutdownAll(h.servers)
	var errs []error
	if h.tlog != nil {
		errs = append(errs, h.tlog.Close())
	}
	if h.db != nil {
		errs = append(errs, h.db.Close())
	}
	return errors.Join(errs...)
}

func runHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg HubConfig
	log, err := partConfig("hub", args, stdout, stderr, &cfg)
	if err != nil {
		return err
	}
	h, err := OpenHub(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Fprintf(stdout, "bildrum hub %s: web %s, %d nodes\n", cfg.Name, h.WebURL(), len(cfg.Nodes))
	return h.Serve(ctx)
}
