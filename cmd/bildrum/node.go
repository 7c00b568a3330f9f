package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/dicomweb"
	"github.com/bildrum/bildrum/docs"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/quality"
	"github.com/bildrum/bildrum/query"
	"github.com/bildrum/bildrum/recruit"
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
	// Blobs is where the node keeps DICOM objects, byte for byte: a
	// directory path (or file:///dir), or S3-compatible object storage,
	// s3://bucket?region=… (docs/deploy.md). Default: a directory beside a
	// SQLite database ("node-12.db" → "node-12.blobs"); required with
	// PostgreSQL.
	Blobs string `json:"blobs,omitempty"`
	// Spool is a local directory for DICOM objects on their way into
	// object storage, when blobs is an s3:// URL: what a crash leaves there
	// is removed at the next start. The feasibility signing key is kept
	// beside it. Default: beside a SQLite database ("node-12.db" →
	// "node-12.spool"); required with PostgreSQL and object storage.
	Spool string `json:"spool,omitempty"`
	// TLS names the node's federation certificate, key, the federation CA
	// and its revocation list (bildrum ca).
	TLS federation.TLSFiles `json:"tls"`
	// HubWeb is the hub's web address, for the pages' link back. Optional.
	HubWeb string `json:"hub_web,omitempty"`
	// Credentials is a file of the bearer credentials (token hashes) the
	// node accepts, loaded at every start. Optional.
	Credentials string `json:"credentials,omitempty"`
	// SmallCellThreshold is the smallest count a node releases outside its
	// region: a numerator or denominator below it reads "fewer than N".
	// Default 10; never below 5.
	SmallCellThreshold int `json:"small_cell_threshold,omitempty"`
	// DemoPersonas is a file of demo users with tokens for one-click
	// sign-in (as for the hub); demo federations only. Optional.
	DemoPersonas string `json:"demo_personas,omitempty"`
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
	// Images is how many of the region's latest examinations get synthetic
	// mammograms (four views each) in an empty archive. Default 0.
	Images int `json:"images,omitempty"`
	// ImageWidth is the images' width in pixels (64 to 3328; the height
	// follows the detector's shape). Default 256.
	ImageWidth int `json:"image_width,omitempty"`
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
	if c.SmallCellThreshold != 0 {
		if err := quality.CheckThreshold(c.SmallCellThreshold); err != nil {
			return bildrum.Errorf(bildrum.EINVALID, "node configuration: small_cell_threshold: %s", bildrum.ErrorMessage(err))
		}
	}
	if c.WebAddr == "" || c.FederationAddr == "" {
		return bildrum.Errorf(bildrum.EINVALID, "node configuration: set web_addr and federation_addr, e.g. \"127.0.0.1:8081\" and \"127.0.0.1:8443\"")
	}
	return nil
}

// Node is a running regional node.
type Node struct {
	// life ends when the node closes; background work runs under it.
	life       context.Context
	stop       context.CancelFunc
	background sync.WaitGroup // work under life, waited for by Close

	cfg     NodeConfig
	archive *archive.Archive
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
func OpenNode(ctx context.Context, cfg NodeConfig, log *slog.Logger, progress phases, webL, fedL net.Listener) (_ *Node, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log.With("part", "node", "region", cfg.Region)}
	n.life, n.stop = context.WithCancel(context.Background())
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
	var demo []web.DemoPersona
	if cfg.DemoPersonas != "" {
		if err := readConfig(cfg.DemoPersonas, &demo); err != nil {
			return nil, err
		}
	}
	blobs := cfg.Blobs
	if blobs == "" {
		if strings.Contains(cfg.Database, "://") {
			return nil, bildrum.Errorf(bildrum.EINVALID, "node configuration: set blobs, the directory for DICOM objects, when the database is not a SQLite file")
		}
		blobs = strings.TrimSuffix(cfg.Database, filepath.Ext(cfg.Database)) + ".blobs"
	}
	// local is where the node's own files go, beside its blob directory,
	// or beside its spool when the objects are in object storage.
	var local string
	var store archive.BlobStore
	if strings.Contains(blobs, "://") && !strings.HasPrefix(blobs, "file://") {
		spool := cfg.Spool
		if spool == "" {
			if strings.Contains(cfg.Database, "://") {
				return nil, bildrum.Errorf(bildrum.EINVALID, "node configuration: set spool, a local directory for DICOM objects on their way into object storage, when the database is not a SQLite file")
			}
			spool = strings.TrimSuffix(cfg.Database, filepath.Ext(cfg.Database)) + ".spool"
		}
		local = strings.TrimSuffix(spool, ".spool")
		store, err = archive.OpenBucketBlobs(ctx, blobs, spool)
	} else {
		var files *archive.FileBlobs
		if files, err = archive.OpenFileBlobsURL(blobs); err == nil {
			store, local = files, strings.TrimSuffix(files.Dir(), ".blobs")
		}
	}
	if err != nil {
		return nil, err
	}
	n.archive = archive.New(n.db, store)
	if p, err := exec.LookPath("gdcmconv"); err == nil {
		n.archive.SetDecompressor(p) // renders compressed transfer syntaxes
	}
	n.archive.SetLogger(n.log)
	// Objects a crash left held in the index go to the blob store before
	// anything is served, and before Sweep looks for orphans there.
	if moved, err := n.archive.Recover(ctx); err != nil {
		return nil, fmt.Errorf("node: %w: check the blob store's disk (space, permissions) and start again", err)
	} else if moved > 0 {
		n.log.Info("moved objects held in the index into the blob store", "objects", moved)
	}
	if _, err := n.archive.Sweep(ctx, time.Hour); err != nil {
		n.log.Warn("sweep orphan blobs", "err", err)
	}
	if cfg.Synthetic != nil && cfg.Synthetic.Images > 0 {
		if err := buildSyntheticImages(ctx, n.db, n.archive, cfg.Region, *cfg.Synthetic, progress, n.log); err != nil {
			return nil, err
		}
	}
	dw, err := dicomweb.NewServer(dicomweb.Config{Archive: n.archive, Auth: authn, Region: cfg.Region, Log: n.log, Recorder: n.db})
	if err != nil {
		return nil, err
	}
	webMux := http.NewServeMux()
	dw.Routes(webMux, "/dicomweb")
	(&web.Node{Region: region, Register: n.db, Auth: authn, Log: n.log, HubURL: cfg.HubWeb, OpenAPI: docs.OpenAPI, Consent: checker, Demo: demo, Recorder: n.db, Imported: n.warmCounts}).Routes(webMux)
	n.warmCounts()
	fedMux := http.NewServeMux()
	(&federation.NodeServer{Region: cfg.Region, Register: n.db, Log: n.log}).Routes(fedMux)
	federation.ReplicaRoutes(fedMux, n.db, time.Now, n.log)
	signer, err := query.LoadSigner(local+".feasibility.key", cfg.Region)
	if err != nil {
		return nil, err
	}
	feas, err := query.NewNode(cfg.Region, query.Rules{}, n.db, checker.Fresh, signer, n.db)
	if err != nil {
		return nil, err
	}
	federation.FeasibilityRoutes(fedMux, feas, n.log)
	federation.RecruitmentRoutes(fedMux, &recruit.Matcher{Region: cfg.Region, Store: n.db, Fresh: checker.Fresh, Recorder: n.db}, n.log)
	federation.AccessRoutes(fedMux, outboxOf(n.db), n.log)
	targets, err := quality.DefaultTargets()
	if err != nil {
		return nil, err
	}
	threshold := cfg.SmallCellThreshold
	if threshold == 0 {
		threshold = 10
	}
	// Suppression is decided over every period kind at once, so that no
	// answer adds up with another to a hidden cell, and once per data
	// version.
	indicators := quality.NewIndicatorCache(n.db, cfg.Region, targets, threshold)
	federation.IndicatorRoutes(fedMux, func(ctx context.Context, period string) (any, error) {
		return indicators.Indicators(ctx, period)
	}, n.log)
	n.servers = []server{
		newHTTPServer(webMux, webL, nil, n.log),
		newHTTPServer(fedMux, fedL, n.creds.ServerConfig(), n.log),
	}
	return n, nil
}

// outboxOf serves a database's access outbox (a node's, or the hub's own)
// to the hub's pull.
func outboxOf(db *sqlstore.DB) federation.AccessOutbox {
	return func(ctx context.Context, after int64, limit int) ([]federation.AccessEvent, error) {
		events, err := db.AccessEventsAfter(ctx, after, limit)
		out := make([]federation.AccessEvent, len(events))
		for i, e := range events {
			out[i] = federation.AccessEvent{Seq: e.Seq, Event: e.Event}
		}
		return out, err
	}
}

// WebURL is where the node's pages are.
func (n *Node) WebURL() string { return "http://" + n.servers[0].l.Addr().String() }

// FederationURL is the base URL of the node's federation API.
func (n *Node) FederationURL() string {
	return "https://" + n.servers[1].l.Addr().String() + "/federation/v1"
}

// warmCounts computes the register's indicator counts in the background,
// so the hub's first request after a change need not wait for them.
func (n *Node) warmCounts() {
	n.background.Go(func() {
		ctx, cancel := context.WithTimeout(n.life, time.Minute)
		defer cancel()
		for _, kind := range []bildrum.PeriodKind{bildrum.PeriodYear, bildrum.PeriodQuarter} {
			if _, _, err := n.db.ScreeningCounts(ctx, kind); err != nil && ctx.Err() == nil {
				n.log.Warn("warm indicator counts", "err", err)
				return
			}
		}
	})
}

// Serve answers requests until ctx ends.
func (n *Node) Serve(ctx context.Context) error { return serveAll(ctx, n.log, n.servers) }

// Close stops the servers and background work and closes the database.
func (n *Node) Close() error {
	n.stop()
	shutdownAll(n.servers)
	// Background work ends before the database closes, so that none of it
	// holds a connection while the last one checkpoints the WAL.
	n.background.Wait()
	if n.archive != nil {
		n.archive.Wait()
		n.archive.Blobs().Close()
	}
	if n.db != nil {
		return n.db.Close()
	}
	return nil
}

// buildSynthetic fills an empty register with its region's share of the
// synthetic population, in one transaction: an interrupted build leaves the
// register empty and the next start builds it again.
func buildSynthetic(ctx context.Context, db *sqlstore.DB, region string, sc SyntheticConfig, progress phases, log *slog.Logger) error {
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
	bar := progress("building the synthetic register of region "+region, own)
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
	var cfg NodeConfig
	log, err := partConfig("node", args, stdout, stderr, &cfg)
	if err != nil {
		return err
	}
	n, err := OpenNode(ctx, cfg, log, progressTo(stderr), nil, nil)
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(stdout, "bildrum node %s: web %s, federation %s\n", cfg.Region, n.WebURL(), n.FederationURL())
	return n.Serve(ctx)
}

// buildSyntheticImages fills an empty archive with synthetic mammograms of
// the region's latest examinations, one examination (four views) per
// transaction: an interrupted build keeps what it finished, and the next
// start, finding the archive not empty, leaves it.
func buildSyntheticImages(ctx context.Context, db *sqlstore.DB, arch *archive.Archive, region string, sc SyntheticConfig, progress phases, log *slog.Logger) error {
	studies, _, err := db.SearchStudies(ctx, bildrum.ImageQuery{Limit: 1})
	if err != nil {
		return err
	}
	if len(studies) > 0 {
		return nil
	}
	width := sc.ImageWidth
	if width == 0 {
		width = 256
	}
	// The latest examinations: keep the last sc.Images attended episodes.
	var latest []bildrum.ScreeningEpisode
	for f := (bildrum.EpisodeFilter{Limit: 1000}); ; f.Offset += f.Limit {
		page, total, err := db.ListEpisodes(ctx, f)
		if err != nil {
			return err
		}
		for _, e := range page {
			if e.Attended {
				latest = append(latest, e)
				if len(latest) > sc.Images {
					latest = latest[1:]
				}
			}
		}
		if f.Offset+len(page) >= total || len(page) == 0 {
			break
		}
	}
	bar := progress("synthetic mammograms of region "+region, len(latest))
	for _, e := range latest {
		imgs, err := synth.Mammograms(e, synth.ImageOptions{Width: width})
		if err != nil {
			return fmt.Errorf("synthetic mammograms of %s: %w", e.ID, err)
		}
		b := arch.NewBatch()
		for _, img := range imgs {
			if _, err := b.Add(ctx, bytes.NewReader(img.Data)); err != nil {
				b.Close()
				return fmt.Errorf("store synthetic mammogram %s: %w", img.SOPInstanceUID, err)
			}
		}
		failed, err := b.Commit(ctx)
		b.Close()
		if err != nil {
			return fmt.Errorf("store synthetic mammograms of %s: %w", e.ID, err)
		}
		for _, f := range failed {
			if f != nil {
				return fmt.Errorf("store synthetic mammograms of %s: %w", e.ID, f)
			}
		}
		bar.Add(1)
	}
	bar.Finish()
	log.Info("built synthetic mammograms", "exams", len(latest), "width", width)
	return nil
}
