package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/bildrum/bildrum"
)

var _ bildrum.CredentialStore = (*DB)(nil)

// PutCredential stores the principal a token hash stands for, replacing an
// earlier principal of the same hash.
func (d *DB) PutCredential(ctx context.Context, hash bildrum.TokenHash, p bildrum.Principal) error {
	_, err := d.db.ExecContext(ctx, d.rebind(`
		INSERT INTO credentials (token_hash, name, role, organisation, region, person_id)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET name = excluded.name, role = excluded.role,
			organisation = excluded.organisation, region = excluded.region, person_id = excluded.person_id`),
		hash[:], p.Name, string(p.Role), p.Organisation, p.Region, string(p.Person))
	if err != nil {
		return fmt.Errorf("put credential %s: %w", p.Name, err)
	}
	return nil
}

// PrincipalByToken returns the principal of a token hash, or ENOTFOUND.
func (d *DB) PrincipalByToken(ctx context.Context, hash bildrum.TokenHash) (bildrum.Principal, error) {
	var p bildrum.Principal
	var role, person string
	err := d.db.QueryRowContext(ctx, d.rebind(`
		SELECT name, role, organisation, region, person_id FROM credentials WHERE token_hash = ?`), hash[:]).
		Scan(&p.Name, &role, &p.Organisation, &p.Region, &person)
	if errors.Is(err, sql.ErrNoRows) {
		return bildrum.Principal{}, bildrum.Errorf(bildrum.ENOTFOUND, "unknown credential")
	} else if err != nil {
		return bildrum.Principal{}, fmt.Errorf("principal by token: %w", err)
	}
	p.Role, p.Person = bildrum.Role(role), bildrum.PersonID(person)
	return p, nil
}
