package web

import (
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/problem"
)

// Node serves a regional node's own pages and APIs.
type Node struct {
	Region   bildrum.Region
	Register bildrum.RegisterStore
	Auth     *auth.Authenticator
	Log      *slog.Logger
	HubURL   string // the hub's web address, for the way back
	OpenAPI  []byte
	// Consent decides from the node's replica of the consent register.
	Consent *consent.Checker
	// Imported is called after every import that changed the register, so
	// that work depending on it (the indicator counts) can be redone early.
	Imported func()
	// Recorder records every read of register rows, per woman, before the
	// rows are served; when it fails, nothing is served.
	Recorder bildrum.AccessRecorder

	// Demo are personas offered for one-click sign-in (demo only).
	Demo []DemoPersona

	page, rows, studies, viewer *template.Template
}

// Routes adds the node's routes to mux.
func (n *Node) Routes(mux *http.ServeMux) {
	n.page = parse("node.html")
	n.rows = parse("rows.html")
	n.studies = parse("studies.html")
	n.viewer = parse("viewer.html")
	mux.HandleFunc("GET /studies", n.studiesPage)
	mux.HandleFunc("GET /viewer", n.viewerPage)
	mux.HandleFunc("GET /{$}", n.regionPage)
	mux.HandleFunc("GET /exams", n.rowsPage)
	mux.HandleFunc("POST /api/v1/register/import", n.Auth.Require(n.importAPI, bildrum.RoleStaff))
	(&Sessions{Auth: n.Auth, Log: n.Log, Demo: n.Demo, Landing: "/exams"}).Routes(mux)
	mux.HandleFunc("GET /api/v1/status", n.Auth.Require(n.statusAPI))
	mux.HandleFunc("GET /api/v1/exams", n.Auth.Require(n.examsAPI, bildrum.RoleStaff))
	mux.HandleFunc("GET /api/v1/me", n.Auth.Require(me))
	if n.Consent != nil {
		mux.HandleFunc("GET /api/v1/consent/{person}", n.Auth.Require(n.consentAPI, bildrum.RoleStaff, bildrum.RoleRadiologist))
		mux.HandleFunc("GET /api/v1/consent", n.Auth.Require(n.replicaAPI))
	}
	mux.HandleFunc("GET /openapi.yaml", serveBytes(n.OpenAPI, "application/yaml"))
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("/", notFound)
}

func (n *Node) regionPage(w http.ResponseWriter, r *http.Request) {
	sum, err := n.Register.RegisterSummary(r.Context())
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	attendance := 0.0
	if sum.Invitations > 0 {
		attendance = float64(sum.Exams) / float64(sum.Invitations)
	}
	render(w, r, n.Log, n.page, struct {
		Region     bildrum.Region
		Summary    bildrum.RegisterSummary
		Attendance float64
		HubURL     string
		Version    string
	}{n.Region, sum, attendance, n.HubURL, bildrum.Version})
}

func (n *Node) statusAPI(w http.ResponseWriter, r *http.Request) {
	sum, err := n.Register.RegisterSummary(r.Context())
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	sum.Region = n.Region.Code
	writeJSON(w, sum)
}

// examsPage is one page of register rows.
type examsPage struct {
	Region string                     `json:"region"`
	Total  int                        `json:"total"`
	Limit  int                        `json:"limit"`
	Offset int                        `json:"offset"`
	Rows   []bildrum.ScreeningEpisode `json:"rows"`
}

// examsAPI lists the region's register rows to its own screening staff,
// as JSON pages or (?format=csv) the whole selection in the import format.
func (n *Node) examsAPI(w http.ResponseWriter, r *http.Request) {
	p, ok := n.ownRegion(w, r)
	if !ok {
		return
	}
	f, err := episodeFilter(r)
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	if wantsCSV(r) {
		n.exportCSV(w, r, f)
		return
	}
	rows, total, err := n.Register.ListEpisodes(r.Context(), f)
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	if rows == nil {
		rows = []bildrum.ScreeningEpisode{}
	}
	if err := n.recordRows(r, p, rows, "register rows"); err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	writeJSON(w, examsPage{Region: n.Region.Code, Total: total, Limit: f.Limit, Offset: f.Offset, Rows: rows})
}

// episodeFilter reads from, to, unit, outcome, limit and offset.
func episodeFilter(r *http.Request) (bildrum.EpisodeFilter, error) {
	q := r.URL.Query()
	f := bildrum.EpisodeFilter{Unit: q.Get("unit"), Outcome: bildrum.Outcome(q.Get("outcome")), Limit: 100}
	var err error
	if f.From, err = bildrum.ParseDate(q.Get("from")); err != nil {
		return f, err
	}
	if f.To, err = bildrum.ParseDate(q.Get("to")); err != nil {
		return f, err
	}
	switch f.Outcome {
	case bildrum.OutcomeNone, bildrum.OutcomeBenign, bildrum.OutcomeDCIS, bildrum.OutcomeInvasive:
	default:
		return f, bildrum.Errorf(bildrum.EINVALID, "outcome %q: use benign, dcis or invasive", f.Outcome)
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if s := q.Get(name); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return f, bildrum.Errorf(bildrum.EINVALID, "%s=%q: want a whole number of 0 or more", name, s)
			}
			*dst = v
		}
	}
	if f.Limit == 0 || f.Limit > 1000 {
		return f, bildrum.Errorf(bildrum.EINVALID, "limit=%d: want 1 to 1000 rows per page", f.Limit)
	}
	return f, nil
}

// consentAPI answers whether a woman's data at this node may be used for a
// purpose (?purpose=, default care), as the node's replica says, to the
// region's own staff and radiologists.
func (n *Node) consentAPI(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	if p.Region != n.Region.Code {
		problem.Error(w, r, n.Log, bildrum.Errorf(bildrum.EFORBIDDEN, "consent decisions of region %s are for that region's staff", n.Region.Code))
		return
	}
	person, err := bildrum.ParsePersonID(r.PathValue("person"))
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	purpose := bildrum.PurposeCare
	if q := r.URL.Query().Get("purpose"); q != "" {
		if purpose, err = bildrum.ParsePurpose(q); err != nil {
			problem.Error(w, r, n.Log, err)
			return
		}
	}
	d, err := n.Consent.Allows(r.Context(), person, purpose)
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	writeJSON(w, d)
}

// replicaAPI says how current the node's copy of the consent register is.
func (n *Node) replicaAPI(w http.ResponseWriter, r *http.Request) {
	st, err := n.Consent.Replica.ReplicaState(r.Context())
	if err != nil {
		problem.Error(w, r, n.Log, err)
		return
	}
	_, fresh := n.Consent.Fresh(r.Context(), bildrum.PurposeResearch)
	writeJSON(w, struct {
		bildrum.ReplicaState
		SecondaryUseOpen bool   `json:"secondary_use_open"`
		Reason           string `json:"reason,omitempty"`
	}{st, fresh == nil, bildrum.ErrorMessage(fresh)})
}

// AccessRegisterRead is the kind of access event a read of register rows makes.
const AccessRegisterRead = "register-read"

// recordRows records one access event per woman whose rows are about to be
// served; an error means they must not be.
func (n *Node) recordRows(r *http.Request, p bildrum.Principal, rows []bildrum.ScreeningEpisode, what string) error {
	if n.Recorder == nil {
		return nil
	}
	seen := map[bildrum.PersonID]bool{}
	for _, e := range rows {
		if seen[e.Person] {
			continue
		}
		seen[e.Person] = true
		if err := n.Recorder.RecordAccess(r.Context(), bildrum.AccessEvent{
			Time: time.Now().UTC(), Actor: p, Purpose: bildrum.PurposeCare, Region: n.Region.Code,
			Person: e.Person, Kind: AccessRegisterRead, What: what,
		}); err != nil {
			n.Log.Error("record access", "err", err)
			return bildrum.Errorf(bildrum.EUNAVAILABLE, "the access could not be recorded, so the rows are not shown: try again later")
		}
	}
	return nil
}
