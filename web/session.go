package web

import (
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
)

// DemoPersona is a demo user offered for one-click sign-in. Only a demo
// federation, with synthetic data on loopback, configures them; a real one
// signs people in with their e-identification (OIDC).
type DemoPersona struct {
	Name         string       `json:"name"`
	Role         bildrum.Role `json:"role"`
	Organisation string       `json:"organisation"`
	Token        string       `json:"token"`
}

// Sessions signs browsers in and out: the session cookie carries the same
// bearer token the APIs accept.
type Sessions struct {
	Auth *auth.Authenticator
	Log  *slog.Logger
	// Demo are the personas offered for one-click sign-in (demo only).
	Demo []DemoPersona
	// Landing is where a signed-in user goes when no page was asked for
	// (default: by role, see landing).
	Landing string

	page *template.Template
}

// Routes adds /login and /logout to mux.
func (s *Sessions) Routes(mux *http.ServeMux) {
	s.page = parse("login.html")
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
}

func (s *Sessions) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "")
}

func (s *Sessions) render(w http.ResponseWriter, r *http.Request, problem string) {
	render(w, r, s.Log, s.page, struct {
		Demo    []DemoPersona
		Next    string
		Problem string
	}{s.Demo, safeNext(r.FormValue("next")), problem})
}

// login checks the token, sets the session cookie and goes to the page the
// principal's role lands on (or the page asked for).
func (s *Sessions) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.FormValue("token"))
	req := r.Clone(r.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	p, err := s.Auth.Authenticate(req)
	if err != nil || token == "" {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, "That token is not known here. Copy it from endpoints.json, or choose a demo persona.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	next := safeNext(r.FormValue("next"))
	if next == "" {
		next = s.Landing
	}
	if next == "" {
		next = landing(p.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// landing is where a role starts after signing in.
func landing(role bildrum.Role) string {
	switch role {
	case bildrum.RoleCitizen:
		return "/me"
	case bildrum.RoleQuality, bildrum.RoleStaff:
		return "/quality"
	case bildrum.RoleResearcher:
		return "/research"
	case bildrum.RolePermitOfficer:
		return "/recruitment"
	}
	return "/"
}

// safeNext keeps a redirect target on this site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return ""
	}
	return next
}

// pagePrincipal returns the signed-in principal of a page request, or
// sends the browser to sign in and returns false.
func pagePrincipal(w http.ResponseWriter, r *http.Request, a *auth.Authenticator, roles ...bildrum.Role) (bildrum.Principal, bool) {
	p, err := a.Authenticate(r)
	if err != nil {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return p, false
	}
	for _, role := range roles {
		if p.Role == role {
			return p, true
		}
	}
	if len(roles) == 0 {
		return p, true
	}
	http.Error(w, "This page is for another role than yours ("+string(p.Role)+"). Sign out and in again as the right person.", http.StatusForbidden)
	return p, false
}
