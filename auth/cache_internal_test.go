package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

// everyone is a CredentialStore that knows every token.
type everyone struct{}

func (everyone) PutCredential(context.Context, bildrum.TokenHash, bildrum.Principal) error {
	return nil
}

func (everyone) PrincipalByToken(context.Context, bildrum.TokenHash) (bildrum.Principal, error) {
	return bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Region: "12"}, nil
}

// TestCacheBounded checks that the cache keeps at most maxCached tokens,
// dropping expired ones first, and keeps them by hash.
func TestCacheBounded(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := &Authenticator{Store: everyone{}, Now: func() time.Time { return now }}
	ctx := context.Background()
	old := bildrum.HashToken("the first token")
	if _, err := a.principal(ctx, old); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DefaultCacheTTL) // the first one has expired
	for i := range maxCached + 100 {
		if _, err := a.principal(ctx, bildrum.HashToken(fmt.Sprint("token ", i))); err != nil {
			t.Fatal(err)
		}
		if len(a.cache) > maxCached {
			t.Fatalf("after %d tokens the cache holds %d, more than %d", i+2, len(a.cache), maxCached)
		}
	}
	if _, ok := a.cache[old]; ok {
		t.Errorf("an expired token was kept while the cache was full")
	}
}
