// Package web serves bildrum's pages and JSON APIs: the hub's federation
// overview and the regional node's own pages and register API. Pages are
// server-rendered HTML with charts drawn as SVG in Go and no JS build step;
// every API checks the bearer token and answers errors as problem details.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Link is an entry of a page's list of what exists so far.
type Link struct {
	Title, URL, Note string
}

var funcs = template.FuncMap{
	"thousands": thousands,
	"since":     since,
	// pnr writes an identity number as people read it: YYYYMMDD-NNNN.
	"pnr": func(id bildrum.PersonID) string {
		if len(id) != 12 {
			return string(id)
		}
		return string(id[:8]) + "-" + string(id[8:])
	},
	// expiresSoon flags a certificate with less than 30 days left.
	"expiresSoon": func(t time.Time) bool { return !t.IsZero() && time.Until(t) < 30*24*time.Hour },
	"pct":         func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" },
}

// parse builds a page template on the shared layout.
func parse(page string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page))
}

// thousands writes n with a thin space between groups of three, as Swedish
// and SI typography do.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "−" + thousands(-n)
	}
	out := ""
	for len(s) > 3 {
		out = "\u202f" + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	return s + out
}

// since says how long ago t was, for a person reading the page.
func since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return t.Format("2006-01-02")
}

func render(w http.ResponseWriter, r *http.Request, log *slog.Logger, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := t.Execute(w, data); err != nil && log != nil {
		log.Error("render page", "path", r.URL.Path, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

func health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// notFound answers unknown paths: a page for people, problem details for APIs.
func notFound(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, http.StatusNotFound, bildrum.ENOTFOUND, "no such page or API: see / for what exists and /openapi.yaml for the API")
}

// overviewer is what the hub page needs from the federation.
type overviewer interface {
	Overview(ctx context.Context) (bildrum.FederationOverview, error)
}

// Hub serves the national hub's pages and APIs.
type Hub struct {
	Federation overviewer
	Auth       *auth.Authenticator
	Log        *slog.Logger
	// Links are what exists so far, shown on the first page.
	Links []Link
	// OpenAPI is the API description served at /openapi.yaml.
	OpenAPI []byte

	page *template.Template
}

// Routes adds the hub's routes to mux.
func (h *Hub) Routes(mux *http.ServeMux) {
	h.page = parse("hub.html")
	mux.HandleFunc("GET /{$}", h.overviewPage)
	mux.HandleFunc("GET /api/v1/federation", h.Auth.Require(h.overviewAPI))
	mux.HandleFunc("GET /api/v1/me", h.Auth.Require(me))
	mux.HandleFunc("GET /openapi.yaml", serveBytes(h.OpenAPI, "application/yaml"))
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("/", notFound)
}

func serveBytes(b []byte, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write(b)
	}
}

func me(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	writeJSON(w, p)
}

func (h *Hub) overviewAPI(w http.ResponseWriter, r *http.Request) {
	ov, err := h.Federation.Overview(r.Context())
	if err != nil {
		problem.Error(w, r, h.Log, err)
		return
	}
	writeJSON(w, ov)
}

// regionTile is one of the 21 regions on the hub's map of the federation.
type regionTile struct {
	bildrum.Region
	Report *bildrum.NodeReport // nil when the region has no node yet
}

func (h *Hub) overviewPage(w http.ResponseWriter, r *http.Request) {
	ov, err := h.Federation.Overview(r.Context())
	if err != nil {
		problem.Error(w, r, h.Log, err)
		return
	}
	byRegion := map[string]*bildrum.NodeReport{}
	for i := range ov.Nodes {
		byRegion[ov.Nodes[i].Region] = &ov.Nodes[i]
	}
	var tiles []regionTile
	for _, reg := range bildrum.Regions() {
		tiles = append(tiles, regionTile{Region: reg, Report: byRegion[reg.Code]})
	}
	render(w, r, h.Log, h.page, struct {
		Overview bildrum.FederationOverview
		Tiles    []regionTile
		Chart    barChart
		Links    []Link
	}{ov, tiles, federationChart(ov), h.Links})
}
