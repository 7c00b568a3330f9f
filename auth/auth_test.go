package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

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
