// Package dicomweb serves a node's DICOM archive over DICOMweb (PS3.18):
// STOW-RS to store, QIDO-RS to search and WADO-RS to retrieve instances,
// metadata, frames and rendered images; and it has a small DICOMweb client.
//
// Every request needs a bearer token of the node's own region's screening
// staff or radiologists; every read of a person's images or studies is
// recorded through a bildrum.AccessRecorder before anything is sent. Errors
// are PS3.18 statuses with a readable reason: problem details (RFC 9457) for
// request errors, the Store Instances Response Module (PS3.18 Annex I) for
// per-instance STOW-RS failures. Browsers reach it through CORS.
package dicomweb

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
)

// Media types of PS3.18 §8.7.
const (
	MediaDICOM     = "application/dicom"
	MediaDICOMJSON = "application/dicom+json"
	MediaOctet     = "application/octet-stream"
	MediaMultipart = "multipart/related"
	MediaJPEG      = "image/jpeg"
	MediaPNG       = "image/png"
)

// DefaultMaxRequestBytes is the default bound of a STOW-RS request body.
const DefaultMaxRequestBytes = 4 << 30

// Config configures a DICOMweb server.
type Config struct {
	// Archive is what the server serves. Required.
	Archive *archive.Archive
	// Auth authenticates bearer tokens. Required.
	Auth *auth.Authenticator
	// Region is the node's county code: only staff and radiologists of
	// this region may use the server. Required.
	Region string
	// Log receives errors and access records of the logging recorder.
	// Default: slog.Default().
	Log *slog.Logger
	// MaxRequestBytes bounds the body of a STOW-RS request; a larger one is
	// refused with 413 and nothing of it is stored. Default 4 GiB.
	MaxRequestBytes int64
	// Recorder records every read of a person's images before it is
	// served; when it fails, the read is refused (503). Default: a
	// LogRecorder on Log, for nodes without a transparency log yet.
	Recorder bildrum.AccessRecorder
	// CORSOrigins are the origins whose pages may call the server from a
	// browser (viewers such as OHIF); "*" allows any, which is safe with
	// bearer tokens because browsers never send them on their own.
	// Default: "*".
	CORSOrigins []string
	// Now is the clock of access events. Default time.Now.
	Now func() time.Time
}

// Server is a DICOMweb server of one node's archive.
type Server struct {
	cfg    Config
	prefix string
}

// NewServer checks cfg, fills in its defaults, and returns a server.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Archive == nil:
		return nil, bildrum.Errorf(bildrum.EINVALID, "dicomweb: Config.Archive is required")
	case cfg.Auth == nil:
		return nil, bildrum.Errorf(bildrum.EINVALID, "dicomweb: Config.Auth is required")
	}
	if _, err := bildrum.RegionByCode(cfg.Region); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "dicomweb: Config.Region %q: give the node's two-digit county code", cfg.Region)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Recorder == nil {
		cfg.Recorder = LogRecorder{Log: cfg.Log}
	}
	if len(cfg.CORSOrigins) == 0 {
		cfg.CORSOrigins = []string{"*"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg}, nil
}

// Routes adds the server's routes under prefix (such as "/dicomweb") to
// mux: the resources of PS3.18 §10.4 (STOW-RS), §10.6 (QIDO-RS) and §10.4
// (WADO-RS retrieve), and CORS preflight for all of them.
func (s *Server) Routes(mux *http.ServeMux, prefix string) {
	p := strings.TrimSuffix(prefix, "/")
	s.prefix = p
	routes := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		// STOW-RS (PS3.18 §10.5).
		{"POST /studies", s.stow},
		{"POST /studies/{study}", s.stow},
		// QIDO-RS (PS3.18 §10.6).
		{"GET /studies", s.searchStudies},
		{"GET /series", s.searchSeries},
		{"GET /studies/{study}/series", s.searchSeries},
		{"GET /instances", s.searchInstances},
		{"GET /studies/{study}/instances", s.searchInstances},
		{"GET /studies/{study}/series/{series}/instances", s.searchInstances},
		// WADO-RS (PS3.18 §10.4).
		{"GET /studies/{study}", s.retrieve},
		{"GET /studies/{study}/series/{series}", s.retrieve},
		{"GET /studies/{study}/series/{series}/instances/{instance}", s.retrieve},
		{"GET /studies/{study}/metadata", s.metadata},
		{"GET /studies/{study}/series/{series}/metadata", s.metadata},
		{"GET /studies/{study}/series/{series}/instances/{instance}/metadata", s.metadata},
		{"GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}", s.frames},
		{"GET /studies/{study}/rendered", s.rendered},
		{"GET /studies/{study}/series/{series}/rendered", s.rendered},
		{"GET /studies/{study}/series/{series}/instances/{instance}/rendered", s.rendered},
		{"GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered", s.rendered},
		{"GET /studies/{study}/thumbnail", s.thumbnail},
		{"GET /studies/{study}/series/{series}/thumbnail", s.thumbnail},
		{"GET /studies/{study}/series/{series}/instances/{instance}/thumbnail", s.thumbnail},
		{"GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail", s.thumbnail},
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r.pattern, " ")
		mux.HandleFunc(method+" "+p+path, s.cors(s.authorize(r.h)))
	}
	mux.HandleFunc("OPTIONS "+p+"/", s.cors(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc(p+"/", s.cors(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, http.StatusNotFound, bildrum.ENOTFOUND, "no such DICOMweb resource: see docs/dicom-conformance.md for the resources of this server")
	}))
}

// cors adds the headers of the CORS protocol (Fetch standard) that let
// browser viewers call the server, and answers preflight requests.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			allowed := slices.Contains(s.cfg.CORSOrigins, "*") || slices.Contains(s.cfg.CORSOrigins, origin)
			if allowed {
				hd := w.Header()
				if slices.Contains(s.cfg.CORSOrigins, "*") {
					hd.Set("Access-Control-Allow-Origin", "*")
				} else {
					hd.Set("Access-Control-Allow-Origin", origin)
					hd.Add("Vary", "Origin")
				}
				hd.Set("Access-Control-Expose-Headers", "Content-Type, Content-Length, Content-Location, Warning, Location")
				if r.Method == http.MethodOptions {
					hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
					hd.Set("Access-Control-Allow-Headers", "Authorization, Accept, Content-Type")
					hd.Set("Access-Control-Max-Age", "600")
				}
			}
		}
		h(w, r)
	}
}

// authorize lets through only staff and radiologists of the node's region.
func (s *Server) authorize(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			problem.Error(w, r, s.cfg.Log, err)
			return
		}
		if p.Role != bildrum.RoleStaff && p.Role != bildrum.RoleRadiologist {
			problem.Error(w, r, s.cfg.Log, bildrum.Errorf(bildrum.EFORBIDDEN, "the role %s may not use the archive: DICOMweb is for screening staff and radiologists of region %s", p.Role, s.cfg.Region))
			return
		}
		if p.Region != s.cfg.Region {
			problem.Error(w, r, s.cfg.Log, bildrum.Errorf(bildrum.EFORBIDDEN, "%s works in region %q, and this is the archive of region %s: ask for priors through the hub", p.Name, p.Region, s.cfg.Region))
			return
		}
		h(w, r.WithContext(bildrum.WithPrincipal(r.Context(), p)))
	}
}

// fail answers err as problem details. Errors of the archive that are not
// domain errors map to their PS3.18 meaning here.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, archive.ErrCompressed):
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, "the instance is stored in a compressed transfer syntax, kept as received, and this server does not decode it for this request: retrieve the instance itself (WADO-RS) or ask for transfer-syntax=*")
	case errors.Is(err, archive.ErrNotRenderable):
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, err.Error())
	case errors.Is(err, errRecorder):
		s.cfg.Log.Error("access recorder failed: refusing the read", "path", r.URL.Path, "err", err)
		problem.Write(w, r, http.StatusServiceUnavailable, bildrum.EUNAVAILABLE, "the access log cannot record this read, so the images are not served: try again later")
	default:
		problem.Error(w, r, s.cfg.Log, err)
	}
}

var errRecorder = errors.New("record access")

// batchRecorder is an AccessRecorder that also records many events at once,
// durably when it returns nil, waiting for the disk once for them all
// (sqlstore's DB): a search that finds many women's studies.
type batchRecorder interface {
	RecordAccesses(ctx context.Context, events []bildrum.AccessEvent) error
}

// record records an access to the persons' data before it is served: one
// event per person.
func (s *Server) record(ctx context.Context, kind, what string, patientIDs ...string) error {
	p, _ := bildrum.PrincipalFrom(ctx)
	seen := map[string]bool{}
	var events []bildrum.AccessEvent
	for _, id := range patientIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		person := bildrum.PersonID(id)
		if pid, err := bildrum.ParsePersonID(id); err == nil {
			person = pid
		}
		events = append(events, bildrum.AccessEvent{Time: s.cfg.Now().UTC(), Actor: p, Purpose: bildrum.PurposeCare, Region: s.cfg.Region, Person: person, Kind: kind, What: what})
	}
	if b, ok := s.cfg.Recorder.(batchRecorder); ok && len(events) > 1 {
		if err := b.RecordAccesses(ctx, events); err != nil {
			return errors.Join(errRecorder, err)
		}
		return nil
	}
	for _, e := range events {
		if err := s.cfg.Recorder.RecordAccess(ctx, e); err != nil {
			return errors.Join(errRecorder, err)
		}
	}
	return nil
}

// LogRecorder is an AccessRecorder that writes each event to a log: for
// nodes not yet connected to the transparency log.
type LogRecorder struct {
	Log *slog.Logger
}

// RecordAccess logs e.
func (l LogRecorder) RecordAccess(ctx context.Context, e bildrum.AccessEvent) error {
	l.Log.Info("access", "kind", e.Kind, "actor", e.Actor.Name, "role", e.Actor.Role, "region", e.Region, "purpose", e.Purpose, "what", e.What)
	return nil
}

// baseURL returns the absolute URL of the server's root for Retrieve URLs.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.prefix
}
