package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/problem"
)

// AccessConsentChange is the kind of access event a change of choices makes.
const AccessConsentChange = "consent-change"

// RegionNational stands in an access event's region for data the hub holds
// for the whole country, such as the consent register.
const RegionNational = "national"

// maxConsentBody caps a consent update.
const maxConsentBody = 16 << 10

// Consent serves the national consent register at the hub: the citizen's
// own choices (GET/PUT /api/v1/me/consent) and FHIR R4 Consent resources
// (GET /fhir/Consent).
type Consent struct {
	Register bildrum.ConsentStore
	Auth     *auth.Authenticator
	Log      *slog.Logger
	// Recorder receives an access event for every change (the transparency log).
	Recorder bildrum.AccessRecorder
	// Propagate pushes a change to the nodes' replicas at once, within a
	// short deadline, and says which regions confirmed it; the rest follow
	// with the hub's periodic sync.
	Propagate func(ctx context.Context) []bildrum.RegionAnswer
	// Changed, when set, is told of every change after it is stored: the
	// recruitment broker withdraws pending invitations when she withdraws
	// her trial-contact opt-in.
	Changed func(ctx context.Context, p bildrum.Principal, rec bildrum.ConsentRecord) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Routes adds the consent routes to mux.
func (c *Consent) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/me/consent", c.Auth.Require(c.get, bildrum.RoleCitizen))
	mux.HandleFunc("PUT /api/v1/me/consent", c.Auth.Require(c.put, bildrum.RoleCitizen))
	mux.HandleFunc("GET /api/v1/me/consent/history", c.Auth.Require(c.history, bildrum.RoleCitizen))
	mux.HandleFunc("GET /fhir/Consent", c.Auth.Require(c.fhirSearch, bildrum.RoleCitizen, bildrum.RoleAuditor, bildrum.RolePermitOfficer))
}

// consentView is the citizen API's answer.
type consentView struct {
	bildrum.ConsentChoices
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
	// Propagated says, after a change, which regions' nodes apply it already.
	Propagated []bildrum.RegionAnswer `json:"propagated,omitempty"`
}

func (c *Consent) get(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	rec, err := c.Register.Consent(r.Context(), p.Person)
	if err != nil {
		problem.Error(w, r, c.Log, err)
		return
	}
	writeJSON(w, consentView{ConsentChoices: rec.Choices, Version: rec.Version, ChangedAt: rec.ChangedAt})
}

func (c *Consent) put(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	var in bildrum.ConsentChoices
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConsentBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		problem.Error(w, r, c.Log, bildrum.Errorf(bildrum.EINVALID,
			"the body must be JSON like {\"opt_outs\": [\"research\"], \"trial_contact\": {\"opt_in\": true, \"email\": \"…\"}, \"care_blocks\": [\"14\"]}: %v", err))
		return
	}
	rec, err := c.Register.PutConsent(r.Context(), p.Person, in, p.Name)
	if err != nil {
		problem.Error(w, r, c.Log, err)
		return
	}
	if c.Recorder != nil {
		if err := c.Recorder.RecordAccess(r.Context(), bildrum.AccessEvent{
			Time: rec.ChangedAt, Actor: p, Purpose: "", Region: RegionNational, Person: p.Person,
			Kind: AccessConsentChange, What: "consent register version " + itoa64(rec.Version),
		}); err != nil {
			c.Log.Error("record consent change", "err", err)
		}
	}
	if c.Changed != nil {
		if err := c.Changed(r.Context(), p, rec); err != nil {
			problem.Error(w, r, c.Log, fmt.Errorf("your choices are saved, but applying them failed: %w", err))
			return
		}
	}
	view := consentView{ConsentChoices: rec.Choices, Version: rec.Version, ChangedAt: rec.ChangedAt}
	if c.Propagate != nil {
		view.Propagated = c.Propagate(r.Context())
	}
	writeJSON(w, view)
}

func (c *Consent) history(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	recs, err := c.Register.ConsentHistory(r.Context(), p.Person)
	if err != nil {
		problem.Error(w, r, c.Log, err)
		return
	}
	if recs == nil {
		recs = []bildrum.ConsentRecord{}
	}
	writeJSON(w, recs)
}

// fhirSearch answers GET /fhir/Consent?patient=NUMBER (or
// patient.identifier=SYSTEM|NUMBER). A citizen may only ask for herself and
// gets her own without a parameter.
func (c *Consent) fhirSearch(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	q := r.URL.Query()
	who := q.Get("patient")
	if who == "" {
		who = q.Get("patient.identifier")
	}
	if i := strings.LastIndex(who, "|"); i >= 0 {
		who = who[i+1:]
	}
	if who == "" && p.Role == bildrum.RoleCitizen {
		who = string(p.Person)
	}
	person, err := bildrum.ParsePersonID(who)
	if err != nil {
		problem.Error(w, r, c.Log, bildrum.Errorf(bildrum.EINVALID, "give the woman as ?patient=YYYYMMDDNNNC: %s", bildrum.ErrorMessage(err)))
		return
	}
	if p.Role == bildrum.RoleCitizen && person != p.Person {
		problem.Error(w, r, c.Log, bildrum.Errorf(bildrum.EFORBIDDEN, "you may see your own consents only"))
		return
	}
	rec, err := c.Register.Consent(r.Context(), person)
	if err != nil {
		problem.Error(w, r, c.Log, err)
		return
	}
	base := "https://" + r.Host
	if r.TLS == nil {
		base = "http://" + r.Host
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(consent.SearchBundle(base, consent.Resources(rec)))
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
