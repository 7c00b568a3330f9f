package web

import (
	"fmt"
	"html/template"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/problem"
	"github.com/bildrum/bildrum/register"
)

// maxImportBytes bounds one register import over HTTP.
const maxImportBytes = 2 << 30

// ownRegion returns the principal when it is staff of this node's region;
// otherwise it answers 403 and returns false.
func (n *Node) ownRegion(w http.ResponseWriter, r *http.Request) (bildrum.Principal, bool) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	if p.Region != n.Region.Code {
		problem.Error(w, r, n.Log, bildrum.Errorf(bildrum.EFORBIDDEN,
			"register rows of region %s are for that region's staff; %s works for region %s and sees other regions only as indicators at the hub", n.Region.Code, p.Name, p.Region))
		return p, false
	}
	return p, true
}

// importAPI imports a register file, CSV (text/csv) or a FHIR R4 transaction
// Bundle (application/fhir+json), atomically: a file with a bad row imports
// nothing and the answer lists the bad rows.
func (n *Node) importAPI(w http.ResponseWriter, r *http.Request) {
	p, ok := n.ownRegion(w, r)
	if !ok {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	name := r.URL.Query().Get("name")
	opts := register.Options{Region: n.Region.Code, FileName: name}
	body := http.MaxBytesReader(w, r.Body, maxImportBytes)
	var rep register.Report
	var err error
	switch mt {
	case "text/csv":
		rep, err = register.ImportCSV(r.Context(), body, opts, n.Register)
	case "application/fhir+json", "application/json":
		rep, err = register.ImportFHIR(r.Context(), body, opts, n.Register)
	default:
		problem.Write(w, r, http.StatusUnsupportedMediaType, bildrum.EINVALID,
			"send the register as text/csv (the columns of docs/register.md) or as a FHIR R4 transaction Bundle (application/fhir+json)")
		return
	}
	n.Log.Info("register import", "actor", p.Name, "region", n.Region.Code, "file", rep.File, "rows", rep.Rows, "changed", rep.Changed, "invalid", rep.Invalid, "err", err)
	if err != nil {
		if bildrum.ErrorCode(err) == bildrum.EINVALID {
			problem.WriteExtended(w, r, http.StatusBadRequest, bildrum.EINVALID, bildrum.ErrorMessage(err), map[string]any{
				"errors": rep.Errors, "more_errors": rep.MoreErrors, "rows": rep.Rows, "invalid": rep.Invalid,
			})
			return
		}
		problem.Error(w, r, n.Log, err)
		return
	}
	if rep.Changed > 0 && n.Imported != nil {
		n.Imported()
	}
	writeJSON(w, rep)
}

// wantsCSV reports whether a request for rows asks for the CSV export.
func wantsCSV(r *http.Request) bool {
	return r.URL.Query().Get("format") == "csv" || strings.HasPrefix(r.Header.Get("Accept"), "text/csv")
}

// exportCSV answers every row matching the filter (limit and offset
// ignored) in the import format, so the export re-imports unchanged.
func (n *Node) exportCSV(w http.ResponseWriter, r *http.Request, f bildrum.EpisodeFilter) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="register-%s.csv"`, n.Region.Code))
	w.Header().Set("Cache-Control", "no-store")
	rows := 0
	recorded := n.allRows(r, f, &rows)
	seen := map[bildrum.PersonID]bool{}
	seq := func(yield func(bildrum.ScreeningEpisode, error) bool) {
		for e, err := range recorded {
			if err == nil && !seen[e.Person] {
				seen[e.Person] = true
				err = n.recordRows(r, p, []bildrum.ScreeningEpisode{e}, "register export")
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
	if err := register.WriteCSV(w, seq); err != nil {
		n.Log.Error("export register", "err", err)
	}
}

// allRows pages through every row matching f.
func (n *Node) allRows(r *http.Request, f bildrum.EpisodeFilter, count *int) iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		f.Limit, f.Offset = 1000, 0
		for {
			page, total, err := n.Register.ListEpisodes(r.Context(), f)
			if err != nil {
				yield(bildrum.ScreeningEpisode{}, err)
				return
			}
			for _, e := range page {
				*count++
				if !yield(e, nil) {
					return
				}
			}
			f.Offset += len(page)
			if len(page) == 0 || f.Offset >= total {
				return
			}
		}
	}
}

// rowsPage is the region staff's page of their own register.
func (n *Node) rowsPage(w http.ResponseWriter, r *http.Request) {
	p, ok := pagePrincipal(w, r, n.Auth, bildrum.RoleStaff)
	if !ok {
		return
	}
	if p.Region != n.Region.Code {
		http.Error(w, "These are region "+n.Region.Code+"'s rows; you work for region "+p.Region+".", http.StatusForbidden)
		return
	}
	f, err := episodeFilter(r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
	}
	f.Limit = 50
	var rows []bildrum.ScreeningEpisode
	total := 0
	if err == nil {
		rows, total, err = n.Register.ListEpisodes(r.Context(), f)
	}
	q := r.URL.Query()
	q.Del("offset")
	q.Del("limit")
	page := func(offset int) template.URL {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("offset", strconv.Itoa(max(offset, 0)))
		return template.URL("?" + v.Encode())
	}
	exp := url.Values{}
	for k, vs := range q {
		exp[k] = vs
	}
	exp.Set("format", "csv")
	if err == nil {
		if rerr := n.recordRows(r, p, rows, "register rows page"); rerr != nil {
			rows, err = nil, rerr
		}
	}
	render(w, r, n.Log, n.rows, struct {
		Region        bildrum.Region
		Filter        bildrum.EpisodeFilter
		Rows          []bildrum.ScreeningEpisode
		Total         int
		From, To      int
		Prev, Next    template.URL
		HasPrev, More bool
		Export        template.URL
		Problem       string
		Units         []string
	}{
		Region: n.Region, Filter: f, Rows: rows, Total: total, From: f.Offset + 1, To: f.Offset + len(rows),
		Prev: page(f.Offset - 50), Next: page(f.Offset + 50), HasPrev: f.Offset > 0, More: f.Offset+len(rows) < total,
		Export: template.URL("/api/v1/exams?" + exp.Encode()), Problem: bildrum.ErrorMessage(err),
	})
}
