package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/sqlstore"
)

func TestRequire(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	staff := auth.NewToken()
	citizen := auth.DerivedToken([]byte("k"), "citizen")
	db.PutCredential(context.Background(), bildrum.HashToken(staff), bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Region: "12"})
	db.PutCredential(context.Background(), bildrum.HashToken(citizen), bildrum.Principal{Name: "citizen", Role: bildrum.RoleCitizen})
	a := &auth.Authenticator{Store: db}
	h := a.Require(func(w http.ResponseWriter, r *http.Request) {
		p, _ := bildrum.PrincipalFrom(r.Context())
		w.Write([]byte(p.Name))
	}, bildrum.RoleCitizen)

	tests := []struct {
		name   string
		method string
		header map[string]string
		cookie string
		want   int
	}{
		{"no credential", "GET", nil, "", http.StatusUnauthorized},
		{"bearer of the right role", "GET", map[string]string{"Authorization": "Bearer " + citizen}, "", http.StatusOK},
		{"bearer of another role", "GET", map[string]string{"Authorization": "Bearer " + staff}, "", http.StatusForbidden},
		{"unknown bearer", "GET", map[string]string{"Authorization": "Bearer " + auth.NewToken()}, "", http.StatusUnauthorized},
		{"basic auth", "GET", map[string]string{"Authorization": "Basic Y2l0aXplbg=="}, "", http.StatusUnauthorized},
		{"cookie, read", "GET", nil, citizen, http.StatusOK},
		{"cookie, change without the CSRF header", "PUT", nil, citizen, http.StatusForbidden},
		{"cookie, change with the CSRF header", "PUT", map[string]string{auth.CSRFHeader: "1"}, citizen, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/x", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: tt.cookie})
			}
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%s = %d, want %d (%s)", tt.name, rec.Code, tt.want, rec.Body.String())
			}
		})
	}
	if auth.DerivedToken([]byte("k"), "a") == auth.DerivedToken([]byte("k"), "b") || auth.DerivedToken([]byte("k"), "a") == auth.DerivedToken([]byte("j"), "a") {
		t.Errorf("derived tokens collide across names or keys")
	}
}

// memCredentials is a CredentialStore in memory that counts its lookups,
// can lose credentials (revocation) and can fail as a broken database would.
type memCredentials struct {
	mu      sync.Mutex
	byHash  map[bildrum.TokenHash]bildrum.Principal
	lookups int
	broken  bool
}

func (m *memCredentials) PutCredential(ctx context.Context, hash bildrum.TokenHash, p bildrum.Principal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byHash[hash] = p
	return nil
}

func (m *memCredentials) PrincipalByToken(ctx context.Context, hash bildrum.TokenHash) (bildrum.Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.broken {
		return bildrum.Principal{}, errors.New("database is locked")
	}
	p, ok := m.byHash[hash]
	if !ok {
		return p, bildrum.Errorf(bildrum.ENOTFOUND, "unknown credential")
	}
	return p, nil
}

func (m *memCredentials) revoke(token string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byHash, bildrum.HashToken(token))
}

// TestTokenCache checks the cache of verified tokens against a store that
// counts its lookups, on a clock the test moves: a verified token is asked
// of the store once per TTL; a revoked or changed credential takes effect
// when the TTL has passed; an unknown token, and a failing store, are never
// cached; a negative TTL turns the cache off.
func TestTokenCache(t *testing.T) {
	const ttl = 10 * time.Second
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	staff := bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Region: "12"}

	// step is one request at time at with token, and what must come of it.
	type step struct {
		at      time.Duration // after t0
		token   string        // "known", "other" or "unknown"
		do      func(m *memCredentials, tokens map[string]string)
		want    string // the principal's role, or the error code
		lookups int    // lookups of the store so far
	}
	revoke := func(m *memCredentials, tok map[string]string) { m.revoke(tok["known"]) }
	promote := func(m *memCredentials, tok map[string]string) {
		m.PutCredential(context.Background(), bildrum.HashToken(tok["known"]), bildrum.Principal{Name: "staff-12", Role: bildrum.RoleRadiologist, Region: "12"})
	}
	breakStore := func(m *memCredentials, _ map[string]string) { m.broken = true }
	mendStore := func(m *memCredentials, _ map[string]string) { m.broken = false }
	tests := []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"verified token is asked once per TTL", ttl, []step{
			{0, "known", nil, "staff", 1},
			{ttl - time.Nanosecond, "known", nil, "staff", 1},
			{ttl, "known", nil, "staff", 2},
			{ttl + time.Second, "known", nil, "staff", 2},
		}},
		{"revoked token is refused once the TTL has passed", ttl, []step{
			{0, "known", nil, "staff", 1},
			{time.Second, "known", revoke, "staff", 1}, // within the TTL: documented
			{ttl, "known", nil, bildrum.EUNAUTHORIZED, 2},
			{ttl + time.Second, "known", nil, bildrum.EUNAUTHORIZED, 3},
		}},
		{"changed role takes effect once the TTL has passed", ttl, []step{
			{0, "known", nil, "staff", 1},
			{time.Second, "known", promote, "staff", 1},
			{ttl, "known", nil, "radiologist", 2},
		}},
		{"unknown token is never cached", ttl, []step{
			{0, "unknown", nil, bildrum.EUNAUTHORIZED, 1},
			{0, "unknown", nil, bildrum.EUNAUTHORIZED, 2},
			{0, "known", nil, "staff", 3},
			{time.Second, "unknown", nil, bildrum.EUNAUTHORIZED, 4},
			{time.Second, "other", nil, "staff", 5}, // each token its own entry
			{2 * time.Second, "other", nil, "staff", 5},
		}},
		{"a failing store is not cached", ttl, []step{
			{0, "known", breakStore, bildrum.EINTERNAL, 1},
			{0, "known", mendStore, "staff", 2},
			{time.Second, "known", nil, "staff", 2},
		}},
		{"a clock that went back does not stretch the TTL", ttl, []step{
			{time.Hour, "known", nil, "staff", 1},
			{0, "known", nil, "staff", 2},
		}},
		{"negative TTL: no cache", -1, []step{
			{0, "known", nil, "staff", 1},
			{0, "known", nil, "staff", 2},
			{0, "known", revoke, bildrum.EUNAUTHORIZED, 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := map[string]string{"known": auth.NewToken(), "other": auth.NewToken(), "unknown": auth.NewToken()}
			store := &memCredentials{byHash: map[bildrum.TokenHash]bildrum.Principal{
				bildrum.HashToken(tokens["known"]): staff,
				bildrum.HashToken(tokens["other"]): staff,
			}}
			now := t0
			a := &auth.Authenticator{Store: store, CacheTTL: tt.ttl, Now: func() time.Time { return now }}
			for i, s := range tt.steps {
				if s.do != nil {
					s.do(store, tokens)
				}
				now = t0.Add(s.at)
				req := httptest.NewRequest("GET", "/x", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[s.token])
				p, err := a.Authenticate(req)
				got := string(p.Role)
				if err != nil {
					got = bildrum.ErrorCode(err)
				}
				if got != s.want || store.lookups != s.lookups {
					t.Errorf("step %d: Authenticate(%s token at t0+%v) = %q after %d lookups, want %q after %d", i, s.token, s.at, got, store.lookups, s.want, s.lookups)
				}
			}
		})
	}
}
