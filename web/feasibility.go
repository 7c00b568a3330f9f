package web

import (
	"context"
	"html/template"
	"io"
	"log/slog"
	"net/http"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
)

// maxCriteriaBody caps a feasibility question.
const maxCriteriaBody = 16 << 10

// Feasibility serves researchers' feasibility counts at the hub: a question
// is fanned out to the nodes, which count, suppress, add noise, charge the
// researcher's budget and sign; the hub answers per region and in total.
type Feasibility struct {
	// Ask parses the criteria and fans the question out for p.
	Ask func(ctx context.Context, criteria []byte, p bildrum.Principal) (any, error)
	// Overview returns p's earlier questions and remaining budgets.
	Overview func(ctx context.Context, p bildrum.Principal) (any, error)
	Auth     *auth.Authenticator
	Log      *slog.Logger

	page *template.Template
}

// Routes adds POST and GET /api/v1/feasibility to mux.
func (f *Feasibility) Routes(mux *http.ServeMux) {
	f.page = parse("research.html")
	mux.HandleFunc("GET /research", f.researchPage)
	mux.HandleFunc("POST /api/v1/feasibility", f.Auth.Require(f.ask, bildrum.RoleResearcher))
	mux.HandleFunc("GET /api/v1/feasibility", f.Auth.Require(f.overview, bildrum.RoleResearcher))
}

func (f *Feasibility) ask(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCriteriaBody+1))
	if err != nil {
		problem.Error(w, r, f.Log, bildrum.Errorf(bildrum.EINVALID, "could not read the criteria: %v", err))
		return
	}
	if len(body) > maxCriteriaBody {
		problem.Write(w, r, http.StatusRequestEntityTooLarge, bildrum.EINVALID, "the criteria are larger than 16 KiB")
		return
	}
	res, err := f.Ask(r.Context(), body, p)
	if err != nil {
		problem.Error(w, r, f.Log, err)
		return
	}
	writeJSON(w, res)
}

func (f *Feasibility) overview(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	res, err := f.Overview(r.Context(), p)
	if err != nil {
		problem.Error(w, r, f.Log, err)
		return
	}
	writeJSON(w, res)
}
