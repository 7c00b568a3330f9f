// Package auth authenticates bearer tokens against a part's credential store
// and checks roles, so that every API of bildrum knows who asks before it
// answers. Tokens are random or derived from a secret key; stores keep only
// their SHA-256. A verified token is trusted for a few seconds
// (Authenticator.CacheTTL) without asking the store again, which is how
// long a revocation may take to reach a part.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

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
//
// It keeps the principals of tokens it has verified for CacheTTL, so that a
// client sending many requests costs one store lookup per TTL rather than
// one per request. The cache is keyed by the token's SHA-256
// (bildrum.TokenHash), never by the token, and holds only tokens the store
// accepted: an unknown token is looked up every time and never cached. A
// credential removed or changed in the store therefore takes effect within
// CacheTTL: a revoked token is refused at the latest CacheTTL after its
// last successful lookup. An Authenticator is safe for concurrent use and
// must not be copied after first use.
type Authenticator struct {
	// Store holds the credentials the part accepts. Required.
	Store bildrum.CredentialStore
	// Log receives the internal errors of the requests Require refuses;
	// nil logs none.
	Log *slog.Logger
	// CacheTTL is how long a verified token is trusted without asking the
	// store again, and so the longest a revocation may take to reach this
	// part. Default (0) DefaultCacheTTL; negative: no cache, every request
	// asks the store.
	CacheTTL time.Duration
	// Now is the clock of the cache. Default time.Now.
	Now func() time.Time

	mu    sync.Mutex // guards cache
	cache map[bildrum.TokenHash]cachedPrincipal
}

// DefaultCacheTTL is the default of Authenticator.CacheTTL.
const DefaultCacheTTL = 10 * time.Second

// maxCached bounds the tokens an Authenticator keeps: when full, expired
// ones are dropped, and then arbitrary ones.
const maxCached = 4096

// cachedPrincipal is the principal of a verified token and when the store
// said so.
type cachedPrincipal struct {
	p        bildrum.Principal
	verified time.Time
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
	return a.principal(r.Context(), bildrum.HashToken(strings.TrimSpace(token)))
}

// principal returns the principal of a token hash: from the cache while it
// was verified less than the TTL ago, else from the store, caching it.
func (a *Authenticator) principal(ctx context.Context, hash bildrum.TokenHash) (bildrum.Principal, error) {
	ttl := a.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if ttl > 0 {
		t := now()
		a.mu.Lock()
		c, ok := a.cache[hash]
		a.mu.Unlock()
		// A clock that went back does not stretch the TTL.
		if ok && !t.Before(c.verified) && t.Sub(c.verified) < ttl {
			return c.p, nil
		}
	}
	p, err := a.Store.PrincipalByToken(ctx, hash)
	if bildrum.ErrorCode(err) == bildrum.ENOTFOUND {
		a.forget(hash)
		return bildrum.Principal{}, bildrum.Errorf(bildrum.EUNAUTHORIZED, "unknown or revoked bearer token")
	} else if err != nil {
		return bildrum.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if ttl > 0 {
		a.remember(hash, cachedPrincipal{p: p, verified: now()}, ttl)
	}
	return p, nil
}

// remember caches the principal of a verified token hash.
func (a *Authenticator) remember(hash bildrum.TokenHash, c cachedPrincipal, ttl time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[bildrum.TokenHash]cachedPrincipal{}
	}
	if _, ok := a.cache[hash]; !ok && len(a.cache) >= maxCached {
		for h, old := range a.cache {
			if c.verified.Sub(old.verified) >= ttl || c.verified.Before(old.verified) {
				delete(a.cache, h)
			}
		}
		for h := range a.cache {
			if len(a.cache) < maxCached {
				break
			}
			delete(a.cache, h)
		}
	}
	a.cache[hash] = c
}

// forget drops a token hash the store no longer knows.
func (a *Authenticator) forget(hash bildrum.TokenHash) {
	a.mu.Lock()
	delete(a.cache, hash)
	a.mu.Unlock()
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
