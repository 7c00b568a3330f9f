// Package auth authenticates bearer tokens against a part's credential store
// and checks roles, so that every API of bildrum knows who asks before it
// answers. Tokens are random or derived from a secret key; stores keep only
// their SHA-256.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/problem"
)

// tokenPrefix marks bildrum bearer tokens, so a leaked one is recognisable
// by secret scanners.
const tokenPrefix = "bdr_"

// NewToken returns a fresh random bearer token with 256 bits of entropy.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// DerivedToken returns the token of name under a secret key: the demo keeps
// one key on disk and so gives its personas the same tokens across restarts
// without storing the tokens themselves.
func DerivedToken(key []byte, name string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("bildrum persona token\x00" + name))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Authenticator checks bearer tokens against the credentials of one part.
type Authenticator struct {
	Store bildrum.CredentialStore
	Log   *slog.Logger
}

// SessionCookie is the cookie a browser carries after signing in: the same
// bearer token, HttpOnly and SameSite=Strict.
const SessionCookie = "bildrum_session"

// CSRFHeader must accompany every state-changing request authenticated by
// the session cookie; a cross-site form cannot set it.
const CSRFHeader = "X-Bildrum-Request"

// Authenticate returns the principal of the request's bearer token (or
// session cookie), or an EUNAUTHORIZED error saying what is missing.
func (a *Authenticator) Authenticate(r *http.Request) (bildrum.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(CSRFHeader) == "" {
				return bildrum.Principal{}, bildrum.Errorf(bildrum.EFORBIDDEN, "a change made with the session cookie needs the %s header", CSRFHeader)
			}
			h = "Bearer " + c.Value
		}
	}
	if h == "" {
		return bildrum.Principal{}, bildrum.Errorf(bildrum.EUNAUTHORIZED, "this API needs a bearer token: send 'Authorization: Bearer TOKEN' (the demo's tokens are in endpoints.json), or sign in at /login")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 512 {
		return bildrum.Principal{}, bildrum.Errorf(bildrum.EUNAUTHORIZED, "the Authorization header must be 'Bearer TOKEN'")
	}
	p, err := a.Store.PrincipalByToken(r.Context(), bildrum.HashToken(strings.TrimSpace(token)))
	if bildrum.ErrorCode(err) == bildrum.ENOTFOUND {
		return bildrum.Principal{}, bildrum.Errorf(bildrum.EUNAUTHORIZED, "unknown or revoked bearer token")
	} else if err != nil {
		return bildrum.Principal{}, err
	}
	return p, nil
}

// Require wraps h so that it runs only for a principal holding one of the
// roles (any authenticated principal when none are given), with the
// principal in the request's context. Others get 401 or 403 problem details.
func (a *Authenticator) Require(h http.HandlerFunc, roles ...bildrum.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			problem.Error(w, r, a.Log, err)
			return
		}
		if len(roles) > 0 && !slices.Contains(roles, p.Role) {
			problem.Error(w, r, a.Log, bildrum.Errorf(bildrum.EFORBIDDEN, "the role %s may not use %s %s", p.Role, r.Method, r.URL.Path))
			return
		}
		h(w, r.WithContext(bildrum.WithPrincipal(r.Context(), p)))
	}
}
