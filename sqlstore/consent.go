package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bildrum/bildrum"
)

var (
	_ bildrum.ConsentStore   = (*DB)(nil)
	_ bildrum.ConsentReplica = (*DB)(nil)
)

// maxConsentChanges caps one page of ConsentChanges.
const maxConsentChanges = 5000

// PutConsent stores a person's new choices as the register's next version.
func (d *DB) PutConsent(ctx context.Context, person bildrum.PersonID, c bildrum.ConsentChoices, by string) (bildrum.ConsentRecord, error) {
	if _, err := bildrum.ParsePersonID(string(person)); err != nil {
		return bildrum.ConsentRecord{}, err
	}
	c, err := c.Check()
	if err != nil {
		return bildrum.ConsentRecord{}, err
	}
	choices, err := json.Marshal(c)
	if err != nil {
		return bildrum.ConsentRecord{}, fmt.Errorf("put consent: %w", err)
	}
	rec := bildrum.ConsentRecord{Person: person, Choices: c, ChangedAt: d.Now().UTC().Truncate(time.Microsecond), ChangedBy: by}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return rec, fmt.Errorf("put consent: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `UPDATE consent_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&rec.Version); err != nil {
		return rec, fmt.Errorf("put consent: next version: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO consents (version, person_id, choices, changed_at, changed_by) VALUES (?, ?, ?, ?, ?)`),
		rec.Version, string(person), string(choices), d.timeValue(rec.ChangedAt), by); err != nil {
		return rec, fmt.Errorf("put consent: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return rec, fmt.Errorf("put consent: commit: %w", err)
	}
	return rec, nil
}

func scanConsent(sc interface{ Scan(...any) error }) (bildrum.ConsentRecord, error) {
	var rec bildrum.ConsentRecord
	var person, choices string
	var at nullTime
	if err := sc.Scan(&rec.Version, &person, &choices, &at, &rec.ChangedBy); err != nil {
		return rec, err
	}
	rec.Person, rec.ChangedAt = bildrum.PersonID(person), at.t
	if err := json.Unmarshal([]byte(choices), &rec.Choices); err != nil {
		return rec, fmt.Errorf("consent %d: %w", rec.Version, err)
	}
	return rec, nil
}

// noConsent is the record of a person who never made a choice.
func noConsent(person bildrum.PersonID) bildrum.ConsentRecord {
	return bildrum.ConsentRecord{Person: person, Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{}, CareBlocks: []string{}}}
}

// Consent returns a person's current choices.
func (d *DB) Consent(ctx context.Context, person bildrum.PersonID) (bildrum.ConsentRecord, error) {
	row := d.db.QueryRowContext(ctx, d.rebind(`SELECT version, person_id, choices, changed_at, changed_by FROM consents
		WHERE person_id = ? ORDER BY version DESC LIMIT 1`), string(person))
	rec, err := scanConsent(row)
	if errors.Is(err, sql.ErrNoRows) {
		return noConsent(person), nil
	} else if err != nil {
		return rec, fmt.Errorf("consent: %w", err)
	}
	return rec, nil
}

// trialContactBatch is how many women one statement of TrialContacts asks
// about: one bound value each, well below either engine's limit.
const trialContactBatch = 500

// TrialContacts returns the current trial-contact choice of those of
// persons who opt in to trial contact, read in one snapshot; a woman who
// never chose, or whose current choices do not opt in, is absent. Persons
// may repeat. It asks about many women at once, as the recruitment broker
// does when a request matches a hundred thousand of them, where Consent
// would take a statement each.
func (d *DB) TrialContacts(ctx context.Context, persons []bildrum.PersonID) (map[bildrum.PersonID]bildrum.TrialContact, error) {
	out := make(map[bildrum.PersonID]bildrum.TrialContact, len(persons))
	if len(persons) == 0 {
		return out, nil
	}
	tx, err := d.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("trial contacts: %w", err)
	}
	defer tx.Rollback()
	var full *sql.Stmt // the statement of a full batch, prepared once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	query := func(n int) string {
		return d.rebind(`SELECT c.person_id, c.choices FROM consents c WHERE c.person_id IN (` +
			placeholders(n) + `)
			AND c.version = (SELECT MAX(c2.version) FROM consents c2 WHERE c2.person_id = c.person_id)`)
	}
	args := make([]any, 0, trialContactBatch)
	for len(persons) > 0 {
		n := min(len(persons), trialContactBatch)
		args = args[:0]
		for _, p := range persons[:n] {
			args = append(args, string(p))
		}
		persons = persons[n:]
		var rows *sql.Rows
		if n == trialContactBatch {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, query(n)); err != nil {
					return nil, fmt.Errorf("trial contacts: %w", err)
				}
			}
			rows, err = full.QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, query(n), args...)
		}
		if err != nil {
			return nil, fmt.Errorf("trial contacts: %w", err)
		}
		if err := scanTrialContacts(rows, out); err != nil {
			return nil, fmt.Errorf("trial contacts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("trial contacts: %w", err)
	}
	return out, nil
}

// scanTrialContacts adds to out the opted-in choices of rows of person_id
// and choices, and closes rows.
func scanTrialContacts(rows *sql.Rows, out map[bildrum.PersonID]bildrum.TrialContact) error {
	defer rows.Close()
	var person, choices string
	for rows.Next() {
		if err := rows.Scan(&person, &choices); err != nil {
			return err
		}
		var c struct {
			TrialContact bildrum.TrialContact `json:"trial_contact"`
		}
		if err := json.Unmarshal([]byte(choices), &c); err != nil {
			return fmt.Errorf("choices of %s: %w", person, err)
		}
		if c.TrialContact.OptIn {
			out[bildrum.PersonID(person)] = c.TrialContact
		}
	}
	return rows.Err()
}

// ConsentHistory lists every version of a person's choices, oldest first.
func (d *DB) ConsentHistory(ctx context.Context, person bildrum.PersonID) ([]bildrum.ConsentRecord, error) {
	return d.consentRows(ctx, `SELECT version, person_id, choices, changed_at, changed_by FROM consents
		WHERE person_id = ? ORDER BY version`, string(person))
}

// ConsentChanges returns each person's newest record changed after since.
func (d *DB) ConsentChanges(ctx context.Context, since int64, limit int) ([]bildrum.ConsentRecord, int64, error) {
	if limit <= 0 || limit > maxConsentChanges {
		limit = maxConsentChanges
	}
	var current int64
	if err := d.db.QueryRowContext(ctx, `SELECT version FROM consent_version WHERE id = 1`).Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("consent changes: %w", err)
	}
	recs, err := d.consentRows(ctx, `SELECT c.version, c.person_id, c.choices, c.changed_at, c.changed_by FROM consents c
		WHERE c.version > ? AND c.version <= ? AND c.version = (SELECT MAX(c2.version) FROM consents c2 WHERE c2.person_id = c.person_id AND c2.version <= ?)
		ORDER BY c.version LIMIT ?`, since, current, current, limit)
	return recs, current, err
}

func (d *DB) consentRows(ctx context.Context, q string, args ...any) ([]bildrum.ConsentRecord, error) {
	rows, err := d.db.QueryContext(ctx, d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("consents: %w", err)
	}
	defer rows.Close()
	var out []bildrum.ConsentRecord
	for rows.Next() {
		rec, err := scanConsent(rows)
		if err != nil {
			return nil, fmt.Errorf("consents: %w", err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// ApplyConsentChanges stores records in the node's replica and marks it
// current to version upTo as of at, in one transaction.
func (d *DB) ApplyConsentChanges(ctx context.Context, records []bildrum.ConsentRecord, upTo int64, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply consent changes: %w", err)
	}
	defer tx.Rollback()
	var held int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM consent_replica_state WHERE id = 1`).Scan(&held); err != nil {
		return fmt.Errorf("apply consent changes: %w", err)
	}
	if upTo < held {
		return bildrum.Errorf(bildrum.ECONFLICT, "consent replica holds version %d, newer than the %d offered", held, upTo)
	}
	for _, r := range records {
		if r.Version > upTo {
			return bildrum.Errorf(bildrum.EINVALID, "consent change %d is beyond the version %d it is sent with", r.Version, upTo)
		}
		choices, err := json.Marshal(r.Choices)
		if err != nil {
			return fmt.Errorf("apply consent changes: %w", err)
		}
		res, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO consent_replica (person_id, choices, trial_opt_in, version, changed_at, changed_by)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (person_id) DO UPDATE SET choices = excluded.choices, trial_opt_in = excluded.trial_opt_in,
				version = excluded.version, changed_at = excluded.changed_at, changed_by = excluded.changed_by
			WHERE consent_replica.version < excluded.version`),
			string(r.Person), string(choices), r.Choices.TrialContact.OptIn, r.Version, d.timeValue(r.ChangedAt), r.ChangedBy)
		if err != nil {
			return fmt.Errorf("apply consent change %d: %w", r.Version, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // the replica already holds a newer version for her
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM consent_replica_optout WHERE person_id = ?`), string(r.Person)); err != nil {
			return fmt.Errorf("apply consent change %d: %w", r.Version, err)
		}
		for _, p := range r.Choices.OptOuts {
			if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO consent_replica_optout (person_id, purpose) VALUES (?, ?)`), string(r.Person), string(p)); err != nil {
				return fmt.Errorf("apply consent change %d: %w", r.Version, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE consent_replica_state SET version = ?, synced_at = ? WHERE id = 1`), upTo, d.timeValue(at.UTC())); err != nil {
		return fmt.Errorf("apply consent changes: %w", err)
	}
	return tx.Commit()
}

// ReplicaState says which version the replica holds and since when.
func (d *DB) ReplicaState(ctx context.Context) (bildrum.ReplicaState, error) {
	var s bildrum.ReplicaState
	var at nullTime
	if err := d.db.QueryRowContext(ctx, `SELECT version, synced_at FROM consent_replica_state WHERE id = 1`).Scan(&s.Version, &at); err != nil {
		return s, fmt.Errorf("replica state: %w", err)
	}
	s.SyncedAt = at.t
	return s, nil
}

// ReplicaConsent returns a person's choices as the replica holds them.
func (d *DB) ReplicaConsent(ctx context.Context, person bildrum.PersonID) (bildrum.ConsentRecord, error) {
	row := d.db.QueryRowContext(ctx, d.rebind(`SELECT version, person_id, choices, changed_at, changed_by FROM consent_replica WHERE person_id = ?`), string(person))
	rec, err := scanConsent(row)
	if errors.Is(err, sql.ErrNoRows) {
		return noConsent(person), nil
	} else if err != nil {
		return rec, fmt.Errorf("replica consent: %w", err)
	}
	return rec, nil
}
