package bildrum

import (
	"context"
	"crypto/sha256"
)

// Role is what a principal does in the federation; APIs allow roles, never names.
type Role string

// The roles of bildrum's users and services.
const (
	RoleStaff         Role = "staff"          // screening staff of one region
	RoleQuality       Role = "quality"        // national quality follow-up
	RoleRadiologist   Role = "radiologist"    // clinician reading priors
	RoleResearcher    Role = "researcher"     // feasibility, recruitment, permits
	RolePermitOfficer Role = "permit-officer" // the permit authority
	RoleCitizen       Role = "citizen"        // a woman seeing and steering her data
	RoleAuditor       Role = "auditor"        // supervisor verifying the log
	RoleHub           Role = "hub"            // the national hub calling a node
)

// Principal is who asks: a person in a role, or a service. Region is set for
// region-bound roles (staff, radiologist, hub-to-node calls are not bound);
// Person is set for a citizen.
type Principal struct {
	Name         string   `json:"name"`
	Role         Role     `json:"role"`
	Organisation string   `json:"organisation"`
	Region       string   `json:"region,omitempty"`
	Person       PersonID `json:"person_id,omitempty"`
}

// TokenHash is the SHA-256 of a bearer token: stores keep only hashes, so a
// stolen database holds no usable credential.
type TokenHash [sha256.Size]byte

// HashToken returns the hash under which a bearer token is stored.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// CredentialStore keeps the bearer credentials a part accepts.
//
// Implementations are safe for concurrent use. PutCredential replaces the
// principal of an existing hash and is durable when it returns.
// PrincipalByToken returns an ENOTFOUND error for an unknown hash.
type CredentialStore interface {
	PutCredential(ctx context.Context, hash TokenHash, p Principal) error
	PrincipalByToken(ctx context.Context, hash TokenHash) (Principal, error)
}

type principalKey struct{}

// WithPrincipal returns a context carrying the authenticated principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal authenticated for ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
