package sqlstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

var _ bildrum.RecruitmentStore = (*DB)(nil)

// Trial recruitment at the hub (bildrum.RecruitmentStore;
// 0006_recruitment.sql). Every time is kept in UTC to the microsecond,
// PostgreSQL's precision, so that both engines give back the same value;
// SQLite keeps it as text of fixed width (sortableTime), so that ORDER BY
// sorts it as time.

// invitationBatch is how many invitations one INSERT statement carries in
// PostgreSQL (SQLite inserts row by row; see insertInvitations): six bound
// values each, well below the limit.
const invitationBatch = 500

// maxNotifications caps one page of PendingNotifications.
const maxNotifications = 1000

// sortableTimeLayout is RFC 3339 with exactly six fractional digits: text
// of one width, whose order is the order in time.
const sortableTimeLayout = "2006-01-02T15:04:05.000000Z"

// stamp returns t as the recruitment tables keep it: UTC, to the microsecond.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// sortableTime is timeValue for a column that is sorted on: NULL for the
// zero time, in SQLite text of fixed width.
func (d *DB) sortableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.dialect == sqliteDialect {
		return stamp(t).Format(sortableTimeLayout)
	}
	return stamp(t)
}

// forUpdate is the clause that locks the rows a SELECT reads until the
// transaction ends: FOR UPDATE in PostgreSQL; nothing in SQLite, whose
// write transactions begin IMMEDIATE and so hold the database's one write
// lock from the start.
func (d *DB) forUpdate() string {
	if d.dialect == postgresDialect {
		return " FOR UPDATE"
	}
	return ""
}

// values returns the VALUES list of a multi-row INSERT: rows groups of
// width placeholders.
func values(rows, width int) string {
	row := "(" + placeholders(width) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// newInvitationID returns a random invitation ID: 16 bytes in hex.
func newInvitationID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24 on)
	return hex.EncodeToString(b[:])
}

// querier is what the reads need of a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const recruitmentCols = `id, title, sponsor, ethics_approval, criteria, invitation_text, max_invitations, ends,
	researcher_name, researcher_organisation, submitted_at, status,
	decision_approve, decision_reason, decided_by, decided_organisation, decided_at`

func scanRecruitment(sc interface{ Scan(...any) error }) (bildrum.RecruitmentRequest, error) {
	var r bildrum.RecruitmentRequest
	var criteria string
	var submitted, decidedAt nullTime
	var approve sql.NullBool
	var reason, by, org sql.NullString
	if err := sc.Scan(&r.ID, &r.Title, &r.Sponsor, &r.EthicsApproval, &criteria, &r.InvitationText, &r.MaxInvitations, &r.Ends,
		&r.Researcher.Name, &r.Researcher.Organisation, &submitted, &r.Status,
		&approve, &reason, &by, &org, &decidedAt); err != nil {
		return r, err
	}
	r.SubmittedAt = submitted.t
	if err := json.Unmarshal([]byte(criteria), &r.Criteria); err != nil {
		return r, fmt.Errorf("criteria of %s: %w", r.ID, err)
	}
	if !decidedAt.t.IsZero() {
		r.Decision = &bildrum.RecruitmentDecision{Approve: approve.Bool, Reason: reason.String, By: by.String, Organisation: org.String, At: decidedAt.t}
	}
	return r, nil
}

// AddRecruitment stores a new pending request; see bildrum.RecruitmentStore.
// r must have an ID (ECONFLICT when it is taken) and a researcher, and be
// pending, undecided and unmatched; a zero SubmittedAt is now.
func (d *DB) AddRecruitment(ctx context.Context, r bildrum.RecruitmentRequest) error {
	if r.ID == "" {
		return bildrum.Errorf(bildrum.EINVALID, "add recruitment: the request needs an ID")
	}
	if err := r.Researcher.Check(); err != nil {
		return fmt.Errorf("add recruitment %s: %w", r.ID, err)
	}
	if (r.Status != "" && r.Status != bildrum.RecruitmentPending) || r.Decision != nil || len(r.Regions) > 0 {
		return bildrum.Errorf(bildrum.EINVALID, "add recruitment %s: a new request is pending, without a decision or regions", r.ID)
	}
	criteria, err := json.Marshal(r.Criteria)
	if err != nil {
		return fmt.Errorf("add recruitment %s: %w", r.ID, err)
	}
	submitted := r.SubmittedAt
	if submitted.IsZero() {
		submitted = d.Now()
	}
	res, err := d.db.ExecContext(ctx, d.rebind(`INSERT INTO recruitment_requests (id, title, sponsor, ethics_approval, criteria, invitation_text,
		max_invitations, ends, researcher_name, researcher_organisation, submitted_at, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
		r.ID, r.Title, r.Sponsor, r.EthicsApproval, string(criteria), r.InvitationText,
		r.MaxInvitations, r.Ends, r.Researcher.Name, r.Researcher.Organisation, d.sortableTime(submitted), string(bildrum.RecruitmentPending))
	if err != nil {
		return fmt.Errorf("add recruitment %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("add recruitment %s: %w", r.ID, err)
	} else if n == 0 {
		return bildrum.Errorf(bildrum.ECONFLICT, "recruitment request %s exists already", r.ID)
	}
	return nil
}

// Recruitment returns a request with its regions, sorted by region, and
// its decision; ENOTFOUND when there is none of that ID.
func (d *DB) Recruitment(ctx context.Context, id string) (bildrum.RecruitmentRequest, error) {
	tx, err := d.snapshot(ctx)
	if err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("recruitment %s: %w", id, err)
	}
	defer tx.Rollback()
	r, err := d.recruitment(ctx, tx, id)
	if err != nil {
		return r, err
	}
	return r, tx.Commit()
}

// recruitment reads one request and its regions.
func (d *DB) recruitment(ctx context.Context, q querier, id string) (bildrum.RecruitmentRequest, error) {
	r, err := scanRecruitment(q.QueryRowContext(ctx, d.rebind(`SELECT `+recruitmentCols+` FROM recruitment_requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, bildrum.Errorf(bildrum.ENOTFOUND, "no recruitment request %s", id)
	} else if err != nil {
		return r, fmt.Errorf("recruitment %s: %w", id, err)
	}
	regions, err := d.recruitmentRegions(ctx, q, `WHERE g.request = ?`, id)
	if err != nil {
		return r, fmt.Errorf("recruitment %s: %w", id, err)
	}
	r.Regions = regions[id]
	return r, nil
}

// recruitmentRegions reads the regions of the requests that where selects,
// by request, each sorted by region.
func (d *DB) recruitmentRegions(ctx context.Context, q querier, where string, args ...any) (map[string][]bildrum.RecruitmentRegion, error) {
	rows, err := q.QueryContext(ctx, d.rebind(`SELECT g.request, g.region, g.status, g.reason, g.consent_version, g.at
		FROM recruitment_regions g JOIN recruitment_requests r ON r.id = g.request `+where+` ORDER BY g.request, g.region`), args...)
	if err != nil {
		return nil, fmt.Errorf("regions: %w", err)
	}
	defer rows.Close()
	out := map[string][]bildrum.RecruitmentRegion{}
	for rows.Next() {
		var request string
		var g bildrum.RecruitmentRegion
		var at nullTime
		if err := rows.Scan(&request, &g.Region, &g.Status, &g.Reason, &g.ConsentVersion, &at); err != nil {
			return nil, fmt.Errorf("regions: %w", err)
		}
		g.At = at.t
		out[request] = append(out[request], g)
	}
	return out, rows.Err()
}

// Recruitments lists requests newest first, with their regions and
// decisions: every request when by is nil, otherwise that researcher's.
func (d *DB) Recruitments(ctx context.Context, by *bildrum.Requester) ([]bildrum.RecruitmentRequest, error) {
	where, args := "", []any(nil)
	if by != nil {
		where, args = `WHERE r.researcher_name = ? AND r.researcher_organisation = ?`, []any{by.Name, by.Organisation}
	}
	tx, err := d.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("recruitments: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, d.rebind(`SELECT `+recruitmentCols+` FROM recruitment_requests r `+where+` ORDER BY r.submitted_at DESC, r.id DESC`), args...)
	if err != nil {
		return nil, fmt.Errorf("recruitments: %w", err)
	}
	defer rows.Close()
	out := []bildrum.RecruitmentRequest{}
	for rows.Next() {
		r, err := scanRecruitment(rows)
		if err != nil {
			return nil, fmt.Errorf("recruitments: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recruitments: %w", err)
	}
	rows.Close()
	regions, err := d.recruitmentRegions(ctx, tx, where, args...)
	if err != nil {
		return nil, fmt.Errorf("recruitments: %w", err)
	}
	for i := range out {
		out[i].Regions = regions[out[i].ID]
	}
	return out, tx.Commit()
}

// DecideRecruitment records the permit authority's decision on a pending
// request, which becomes approved or rejected, and returns the request;
// ENOTFOUND when there is none, ECONFLICT when it is not pending. A zero
// At is now.
func (d *DB) DecideRecruitment(ctx context.Context, id string, dec bildrum.RecruitmentDecision) (bildrum.RecruitmentRequest, error) {
	status := bildrum.RecruitmentRejected
	if dec.Approve {
		status = bildrum.RecruitmentApproved
	}
	if dec.At.IsZero() {
		dec.At = d.Now()
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("decide recruitment %s: %w", id, err)
	}
	defer tx.Rollback()
	// The condition on status makes deciding once a single statement, so
	// that of two concurrent decisions only one is recorded.
	res, err := tx.ExecContext(ctx, d.rebind(`UPDATE recruitment_requests SET status = ?, decision_approve = ?, decision_reason = ?,
		decided_by = ?, decided_organisation = ?, decided_at = ? WHERE id = ? AND status = ?`),
		string(status), dec.Approve, dec.Reason, dec.By, dec.Organisation, d.sortableTime(dec.At), id, string(bildrum.RecruitmentPending))
	if err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("decide recruitment %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("decide recruitment %s: %w", id, err)
	} else if n == 0 {
		r, err := d.recruitment(ctx, tx, id)
		if err != nil {
			return r, err
		}
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.ECONFLICT, "recruitment request %s is %s already: only a pending request can be decided", id, r.Status)
	}
	r, err := d.recruitment(ctx, tx, id)
	if err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("decide recruitment %s: commit: %w", id, err)
	}
	return r, nil
}

// SetRecruitmentRegion records, replacing what was recorded before, how
// matching went at one region's node; ENOTFOUND when there is no such
// request. A zero At is now.
func (d *DB) SetRecruitmentRegion(ctx context.Context, id string, g bildrum.RecruitmentRegion) error {
	if _, err := bildrum.RegionByCode(g.Region); err != nil {
		return fmt.Errorf("set recruitment region %s: %w", id, err)
	}
	if g.Status == "" {
		return bildrum.Errorf(bildrum.EINVALID, "set recruitment region %s: say how matching went at region %s", id, g.Region)
	}
	if g.At.IsZero() {
		g.At = d.Now()
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set recruitment region %s: %w", id, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM recruitment_requests WHERE id = ?`), id).Scan(&n); err != nil {
		return fmt.Errorf("set recruitment region %s: %w", id, err)
	} else if n == 0 {
		return bildrum.Errorf(bildrum.ENOTFOUND, "no recruitment request %s", id)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO recruitment_regions (request, region, status, reason, consent_version, at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (request, region) DO UPDATE SET status = excluded.status, reason = excluded.reason,
			consent_version = excluded.consent_version, at = excluded.at`),
		id, g.Region, g.Status, g.Reason, g.ConsentVersion, d.sortableTime(g.At)); err != nil {
		return fmt.Errorf("set recruitment region %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set recruitment region %s: commit: %w", id, err)
	}
	return nil
}

const invitationCols = `id, request, person_id, region, status, created, answered, contact_email, contact_phone, released`

func scanInvitation(sc interface{ Scan(...any) error }) (bildrum.Invitation, error) {
	var inv bildrum.Invitation
	var person string
	var created, answered, released nullTime
	if err := sc.Scan(&inv.ID, &inv.Request, &person, &inv.Region, &inv.Status, &created, &answered,
		&inv.Contact.Email, &inv.Contact.Phone, &released); err != nil {
		return inv, err
	}
	inv.Person, inv.Created, inv.Answered, inv.Released = bildrum.PersonID(person), created.t, answered.t, released.t
	return inv, nil
}

// invitations runs a query of invitationCols.
func (d *DB) invitations(ctx context.Context, q querier, query string, args ...any) ([]bildrum.Invitation, error) {
	rows, err := q.QueryContext(ctx, d.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []bildrum.Invitation{}
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// newestFirst orders invitations as Invitations lists them.
func newestFirst(a, b bildrum.Invitation) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// AddInvitations stores pending invitations for a request, a notification
// for each, and the access events that events gives for each, in one
// transaction; see bildrum.RecruitmentStore. It stores invitations in the
// order given until the request holds limit; a woman already invited to
// the request, or given twice, is skipped. It returns those stored, as
// stored: with their request, pending, an ID (a random one when none was
// given) and Created (now when zero). ENOTFOUND when there is no such
// request; EINVALID, and nothing stored, when an invitation names no valid
// personnummer or region.
//
// Concurrent calls for one request are serialised on the request, so that
// together they never store more than limit.
func (d *DB) AddInvitations(ctx context.Context, request string, limit int, invs []bildrum.Invitation, events func(bildrum.Invitation) []bildrum.AccessEvent) ([]bildrum.Invitation, error) {
	now := stamp(d.Now())
	candidates := make([]bildrum.Invitation, 0, len(invs))
	seen := make(map[bildrum.PersonID]bool, len(invs))
	for _, inv := range invs {
		if _, err := bildrum.ParsePersonID(string(inv.Person)); err != nil {
			return nil, fmt.Errorf("add invitations %s: %w", request, err)
		}
		if _, err := bildrum.RegionByCode(inv.Region); err != nil {
			return nil, fmt.Errorf("add invitations %s: %w", request, err)
		}
		if seen[inv.Person] {
			continue
		}
		seen[inv.Person] = true
		c := bildrum.Invitation{ID: inv.ID, Request: request, Person: inv.Person, Region: inv.Region,
			Status: bildrum.InvitationPending, Created: stamp(inv.Created)}
		if c.ID == "" {
			c.ID = newInvitationID()
		}
		if c.Created.IsZero() {
			c.Created = now
		}
		candidates = append(candidates, c)
	}

	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("add invitations %s: %w", request, err)
	}
	defer tx.Rollback()
	// Locking the request serialises concurrent calls for it: the count
	// below then includes every invitation another call stored.
	var status string
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT status FROM recruitment_requests WHERE id = ?`+d.forUpdate()), request).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "no recruitment request %s", request)
	} else if err != nil {
		return nil, fmt.Errorf("add invitations %s: %w", request, err)
	}
	var held int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM recruitment_invitations WHERE request = ?`), request).Scan(&held); err != nil {
		return nil, fmt.Errorf("add invitations %s: %w", request, err)
	}
	room := limit - held
	stored, err := d.insertInvitations(ctx, tx, request, candidates, room)
	if err != nil {
		return nil, fmt.Errorf("add invitations %s: %w", request, err)
	}

	notes := make([][]any, len(stored))
	var evs []bildrum.AccessEvent
	for i, inv := range stored {
		notes[i] = []any{inv.ID, string(inv.Person), d.sortableTime(inv.Created)}
		if events != nil {
			evs = append(evs, events(inv)...)
		}
	}
	if err := d.insertBatches(ctx, tx, `INSERT INTO recruitment_notifications (invitation, person_id, created) VALUES `, 3, invitationBatch, notes); err != nil {
		return nil, fmt.Errorf("add invitations %s: notifications: %w", request, err)
	}
	if err := d.insertAccesses(ctx, tx, evs); err != nil {
		return nil, fmt.Errorf("add invitations %s: %w", request, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("add invitations %s: commit: %w", request, err)
	}
	return stored, nil
}

// insertInvitations stores candidates within tx, in order, until room of
// them are new: a woman the request invited already is skipped. It returns
// those stored.
//
// SQLite runs in-process, so one prepared single-row statement is cheapest
// there; a multi-row one also copies every page it changes into a
// statement journal first, in case it fails halfway, which costs more than
// the inserts (100,000 invitations with their notifications and access
// events: 9.7 s of CPU in 500-row statements, 3.4 s row by row). PostgreSQL
// pays a round trip per statement, so it gets multi-row statements, each
// carrying no more invitations than there is room for, so that the cap
// holds whichever of them turn out to be new.
func (d *DB) insertInvitations(ctx context.Context, tx *sql.Tx, request string, candidates []bildrum.Invitation, room int) ([]bildrum.Invitation, error) {
	stored := make([]bildrum.Invitation, 0, max(min(len(candidates), room), 0))
	const insert = `INSERT INTO recruitment_invitations (id, request, person_id, region, status, created) VALUES `
	if d.dialect == sqliteDialect {
		stmt, err := tx.PrepareContext(ctx, insert+values(1, 6)+` ON CONFLICT (request, person_id) DO NOTHING`)
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		for _, inv := range candidates {
			if room <= 0 {
				break
			}
			res, err := stmt.ExecContext(ctx, inv.ID, request, string(inv.Person), inv.Region, string(inv.Status), d.sortableTime(inv.Created))
			if err != nil {
				return nil, err
			}
			if n, err := res.RowsAffected(); err != nil {
				return nil, err
			} else if n == 1 {
				stored = append(stored, inv)
				room--
			}
		}
		return stored, nil
	}
	for len(candidates) > 0 && room > 0 {
		n := min(len(candidates), room, invitationBatch)
		batch := candidates[:n]
		candidates = candidates[n:]
		args := make([]any, 0, 6*n)
		for _, inv := range batch {
			args = append(args, inv.ID, request, string(inv.Person), inv.Region, string(inv.Status), d.sortableTime(inv.Created))
		}
		rows, err := tx.QueryContext(ctx, d.rebind(insert+values(n, 6)+` ON CONFLICT (request, person_id) DO NOTHING RETURNING id`), args...)
		if err != nil {
			return nil, err
		}
		added := make(map[string]bool, n)
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			added[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, inv := range batch {
			if added[inv.ID] {
				stored = append(stored, inv)
			}
		}
		room -= len(added)
	}
	return stored, nil
}

// insertBatches inserts rows of width values each with head (an INSERT
// ending in VALUES) within tx, in order. In SQLite each row is a run of
// one prepared single-row statement, for the reason insertInvitations
// gives; in PostgreSQL statements carry at most batch rows, and the
// statement of a full batch is prepared once.
func (d *DB) insertBatches(ctx context.Context, tx *sql.Tx, head string, width, batch int, rows [][]any) error {
	if d.dialect == sqliteDialect {
		stmt, err := tx.PrepareContext(ctx, head+values(1, width))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.ExecContext(ctx, r...); err != nil {
				return err
			}
		}
		return nil
	}
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for len(rows) > 0 {
		n := min(len(rows), batch)
		args := make([]any, 0, n*width)
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		rows = rows[n:]
		if n < batch {
			if _, err := tx.ExecContext(ctx, d.rebind(head+values(n, width)), args...); err != nil {
				return err
			}
			continue
		}
		if full == nil {
			var err error
			if full, err = tx.PrepareContext(ctx, d.rebind(head+values(batch, width))); err != nil {
				return err
			}
		}
		if _, err := full.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Invitations lists a woman's invitations, newest first.
func (d *DB) Invitations(ctx context.Context, person bildrum.PersonID) ([]bildrum.Invitation, error) {
	out, err := d.invitations(ctx, d.db, `SELECT `+invitationCols+` FROM recruitment_invitations WHERE person_id = ?
		ORDER BY created DESC, id DESC`, string(person))
	if err != nil {
		return nil, fmt.Errorf("invitations of %s: %w", person, err)
	}
	return out, nil
}

// Invitation returns one invitation; ENOTFOUND when there is none.
func (d *DB) Invitation(ctx context.Context, id string) (bildrum.Invitation, error) {
	return d.invitation(ctx, d.db, id)
}

func (d *DB) invitation(ctx context.Context, q querier, id string) (bildrum.Invitation, error) {
	inv, err := scanInvitation(q.QueryRowContext(ctx, d.rebind(`SELECT `+invitationCols+` FROM recruitment_invitations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, bildrum.Errorf(bildrum.ENOTFOUND, "no invitation %s", id)
	} else if err != nil {
		return inv, fmt.Errorf("invitation %s: %w", id, err)
	}
	return inv, nil
}

// AnswerInvitation moves a pending invitation to accepted, keeping the
// e-mail address and phone number of contact (and nothing else of it), or
// to declined, keeping no contact; answered at at, with events, in one
// transaction. It returns the invitation as answered. EINVALID for
// another status, ENOTFOUND for an unknown invitation, ECONFLICT when it
// is not pending.
func (d *DB) AnswerInvitation(ctx context.Context, id string, status bildrum.InvitationStatus, contact bildrum.TrialContact, at time.Time, events []bildrum.AccessEvent) (bildrum.Invitation, error) {
	switch status {
	case bildrum.InvitationAccepted:
	case bildrum.InvitationDeclined:
		contact = bildrum.TrialContact{}
	default:
		return bildrum.Invitation{}, bildrum.Errorf(bildrum.EINVALID, "answer invitation %s: answer accepted or declined, not %q", id, status)
	}
	if at.IsZero() {
		at = d.Now()
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return bildrum.Invitation{}, fmt.Errorf("answer invitation %s: %w", id, err)
	}
	defer tx.Rollback()
	// The condition on status makes answering once a single statement.
	res, err := tx.ExecContext(ctx, d.rebind(`UPDATE recruitment_invitations SET status = ?, answered = ?, contact_email = ?, contact_phone = ?
		WHERE id = ? AND status = ?`), string(status), d.sortableTime(at), contact.Email, contact.Phone, id, string(bildrum.InvitationPending))
	if err != nil {
		return bildrum.Invitation{}, fmt.Errorf("answer invitation %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return bildrum.Invitation{}, fmt.Errorf("answer invitation %s: %w", id, err)
	}
	inv, err := d.invitation(ctx, tx, id)
	if err != nil {
		return bildrum.Invitation{}, err
	}
	if n == 0 {
		return bildrum.Invitation{}, bildrum.Errorf(bildrum.ECONFLICT, "invitation %s is %s already: only a pending invitation can be answered", id, inv.Status)
	}
	if err := d.insertAccesses(ctx, tx, events); err != nil {
		return bildrum.Invitation{}, fmt.Errorf("answer invitation %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return bildrum.Invitation{}, fmt.Errorf("answer invitation %s: commit: %w", id, err)
	}
	return inv, nil
}

// WithdrawInvitations moves all of a woman's pending invitations to
// withdrawn, answered at at, and records the events that events gives for
// each, in one transaction. It returns them as withdrawn, newest first.
func (d *DB) WithdrawInvitations(ctx context.Context, person bildrum.PersonID, at time.Time, events func(bildrum.Invitation) []bildrum.AccessEvent) ([]bildrum.Invitation, error) {
	if at.IsZero() {
		at = d.Now()
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("withdraw invitations of %s: %w", person, err)
	}
	defer tx.Rollback()
	out, err := d.invitations(ctx, tx, `UPDATE recruitment_invitations SET status = ?, answered = ?
		WHERE person_id = ? AND status = ? RETURNING `+invitationCols,
		string(bildrum.InvitationWithdrawn), d.sortableTime(at), string(person), string(bildrum.InvitationPending))
	if err != nil {
		return nil, fmt.Errorf("withdraw invitations of %s: %w", person, err)
	}
	slices.SortFunc(out, newestFirst)
	var evs []bildrum.AccessEvent
	for _, inv := range out {
		if events != nil {
			evs = append(evs, events(inv)...)
		}
	}
	if err := d.insertAccesses(ctx, tx, evs); err != nil {
		return nil, fmt.Errorf("withdraw invitations of %s: %w", person, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("withdraw invitations of %s: commit: %w", person, err)
	}
	return out, nil
}

// CountInvitations counts a request's invitations by status (all zero for
// a request without invitations, or none of that ID).
func (d *DB) CountInvitations(ctx context.Context, request string) (bildrum.InvitationCounts, error) {
	var c bildrum.InvitationCounts
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT status, COUNT(*) FROM recruitment_invitations WHERE request = ? GROUP BY status`), request)
	if err != nil {
		return c, fmt.Errorf("count invitations %s: %w", request, err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return c, fmt.Errorf("count invitations %s: %w", request, err)
		}
		c.Invited += n
		switch bildrum.InvitationStatus(status) {
		case bildrum.InvitationPending:
			c.Pending = n
		case bildrum.InvitationAccepted:
			c.Accepted = n
		case bildrum.InvitationDeclined:
			c.Declined = n
		case bildrum.InvitationWithdrawn:
			c.Withdrawn = n
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count invitations %s: %w", request, err)
	}
	return c, nil
}

// ReleaseContacts returns a request's accepted invitations, earliest answer
// first, marking those never released before as released at at and
// recording the events that events gives for each of those, and for no
// other, in one transaction. Of concurrent calls, only one releases a
// contact for the first time.
func (d *DB) ReleaseContacts(ctx context.Context, request string, at time.Time, events func(bildrum.Invitation) []bildrum.AccessEvent) ([]bildrum.Invitation, error) {
	if at.IsZero() {
		at = d.Now()
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("release contacts %s: %w", request, err)
	}
	defer tx.Rollback()
	first, err := d.invitations(ctx, tx, `UPDATE recruitment_invitations SET released = ?
		WHERE request = ? AND status = ? AND released IS NULL RETURNING `+invitationCols,
		d.sortableTime(at), request, string(bildrum.InvitationAccepted))
	if err != nil {
		return nil, fmt.Errorf("release contacts %s: %w", request, err)
	}
	firstIDs := make(map[string]bool, len(first))
	for _, inv := range first {
		firstIDs[inv.ID] = true
	}
	out, err := d.invitations(ctx, tx, `SELECT `+invitationCols+` FROM recruitment_invitations
		WHERE request = ? AND status = ? ORDER BY answered, id`, request, string(bildrum.InvitationAccepted))
	if err != nil {
		return nil, fmt.Errorf("release contacts %s: %w", request, err)
	}
	var evs []bildrum.AccessEvent
	for _, inv := range out {
		if firstIDs[inv.ID] && events != nil {
			evs = append(evs, events(inv)...)
		}
	}
	if err := d.insertAccesses(ctx, tx, evs); err != nil {
		return nil, fmt.Errorf("release contacts %s: %w", request, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("release contacts %s: commit: %w", request, err)
	}
	return out, nil
}

// PendingNotifications returns at most limit notifications not yet sent
// (at most maxNotifications; all of those when limit is not positive),
// oldest first.
func (d *DB) PendingNotifications(ctx context.Context, limit int) ([]bildrum.RecruitmentNotification, error) {
	if limit <= 0 || limit > maxNotifications {
		limit = maxNotifications
	}
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT seq, invitation, person_id, created FROM recruitment_notifications
		WHERE sent_at IS NULL ORDER BY seq LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("pending notifications: %w", err)
	}
	defer rows.Close()
	out := []bildrum.RecruitmentNotification{}
	for rows.Next() {
		var n bildrum.RecruitmentNotification
		var person string
		var created nullTime
		if err := rows.Scan(&n.Seq, &n.Invitation, &person, &created); err != nil {
			return nil, fmt.Errorf("pending notifications: %w", err)
		}
		n.Person, n.Created = bildrum.PersonID(person), created.t
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending notifications: %w", err)
	}
	return out, nil
}

// NotificationsSent marks notifications sent in one transaction, so that
// delivering a page of them costs one commit; see bildrum.RecruitmentStore.
func (d *DB) NotificationsSent(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("notifications sent: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, d.rebind(`UPDATE recruitment_notifications SET sent_at = ? WHERE seq = ? AND sent_at IS NULL`))
	if err != nil {
		return fmt.Errorf("notifications sent: %w", err)
	}
	defer stmt.Close()
	at := d.sortableTime(d.Now())
	for _, seq := range seqs {
		if _, err := stmt.ExecContext(ctx, at, seq); err != nil {
			return fmt.Errorf("notification %d sent: %w", seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("notifications sent: %w", err)
	}
	return nil
}
