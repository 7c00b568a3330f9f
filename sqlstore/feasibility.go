package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
)

var _ bildrum.FeasibilityStore = (*DB)(nil)

// FeasibilityVersions returns the register's data version and the consent
// replica's version.
func (d *DB) FeasibilityVersions(ctx context.Context) (data, consent int64, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT r.version, c.version FROM register_version r, consent_replica_state c WHERE r.id = 1 AND c.id = 1`).Scan(&data, &consent)
	if err != nil {
		return 0, 0, fmt.Errorf("feasibility versions: %w", err)
	}
	return data, consent, nil
}

// snapshot begins a read-only transaction in which every statement sees the
// same state: PostgreSQL needs REPEATABLE READ for that; in SQLite a
// read-only transaction is a deferred BEGIN, which in WAL mode reads one
// snapshot from its first statement on and never blocks writers.
func (d *DB) snapshot(ctx context.Context) (*sql.Tx, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if d.dialect == postgresDialect {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return d.db.BeginTx(ctx, opts)
}

// CountMatching counts the women or examinations matching checked criteria;
// see bildrum.FeasibilityStore.
func (d *DB) CountMatching(ctx context.Context, c bildrum.Criteria, maxPerWoman int) (bildrum.FeasibilityCount, error) {
	var res bildrum.FeasibilityCount
	q, args, err := d.countQuery(c, maxPerWoman)
	if err != nil {
		return res, err
	}
	tx, err := d.snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("count matching: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT r.version, c.version FROM register_version r, consent_replica_state c WHERE r.id = 1 AND c.id = 1`).
		Scan(&res.DataVersion, &res.ConsentVersion); err != nil {
		return res, fmt.Errorf("count matching: versions: %w", err)
	}
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&res.Count); err != nil {
		return res, fmt.Errorf("count matching: %w", err)
	}
	return res, tx.Commit()
}

// countQuery compiles checked criteria into one parameterised statement for
// the DB's dialect. Only fixed SQL fragments are written into the text;
// every value of the criteria, already checked against its allowed values,
// is a bound argument, so no input can change the statement.
//
// The statement groups the matching examinations by woman, leaves out the
// women who opted out of the purpose (one index probe per woman, not per
// examination), and counts the women, or sums each woman's examinations
// capped at maxPerWoman.
func (d *DB) countQuery(c bildrum.Criteria, maxPerWoman int) (string, []any, error) {
	if c.Purpose == "" || (c.Unit != bildrum.UnitWomen && c.Unit != bildrum.UnitExaminations) {
		return "", nil, bildrum.Errorf(bildrum.EINVALID, "count matching: criteria must be checked first (purpose and unit set)")
	}
	if c.Unit == bildrum.UnitExaminations && maxPerWoman < 1 {
		return "", nil, bildrum.Errorf(bildrum.EINVALID, "count matching: examinations need a cap per woman of at least 1")
	}
	where, args, err := d.criteriaWhere("count matching", c)
	if err != nil {
		return "", nil, err
	}

	per := "COUNT(*)" // women
	var outer []any
	if c.Unit == bildrum.UnitExaminations {
		per = "COALESCE(SUM(CASE WHEN m.n > ? THEN ? ELSE m.n END), 0)"
		outer = []any{maxPerWoman, maxPerWoman}
	}
	q := `SELECT CAST(` + per + ` AS BIGINT) FROM (
		SELECT e.person_id AS person_id, COUNT(*) AS n FROM episodes e` + d.countIndex() + `
		WHERE ` + where + `
		GROUP BY e.person_id
	) m WHERE NOT EXISTS (SELECT 1 FROM consent_replica_optout o WHERE o.person_id = m.person_id AND o.purpose = ?)`
	args = append(outer, append(args, string(c.Purpose))...)
	return d.rebind(q), args, nil
}

// criteriaWhere compiles the examination conditions of checked criteria
// into the WHERE clause of a statement over episodes e, read through the
// index episodes_feasibility (countIndex), and its bound arguments: the
// conditions that CountMatching and TrialCandidates share, so that a count
// and a recruitment match select the very same examinations. Only fixed SQL
// fragments are written into the text; every value of the criteria is a
// bound argument. op names the operation in errors.
func (d *DB) criteriaWhere(op string, c bildrum.Criteria) (string, []any, error) {
	where := []string{"e.attended", "e.exam_date IS NOT NULL"}
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	in := func(column string, n int) string {
		return column + " IN (" + placeholders(n) + ")"
	}
	if r := c.ExamDate; r != nil {
		if !r.From.IsZero() {
			add("e.exam_date >= ?", r.From)
		}
		if !r.To.IsZero() {
			add("e.exam_date <= ?", r.To)
		}
	}
	if r := c.Age; r != nil {
		age := d.ageKey()
		if r.Min > 0 {
			add(age+" >= ?", r.Min*10000)
		}
		if r.Max > 0 {
			add(age+" < ?", (r.Max+1)*10000)
		}
	}
	switch c.Round {
	case bildrum.RoundFirst:
		add("e.round = 1")
	case bildrum.RoundSubsequent:
		add("e.round > 1")
	case "":
	default:
		return "", nil, bildrum.Errorf(bildrum.EINVALID, "%s: unknown round %q", op, c.Round)
	}
	if len(c.BIRADS) > 0 {
		add(in("e.consensus_birads", len(c.BIRADS)), anys(c.BIRADS)...)
	}
	if len(c.Density) > 0 {
		add(in("e.density", len(c.Density)), anys(c.Density)...)
	}
	if len(c.NodalStatus) > 0 {
		add(in("e.nodal_status", len(c.NodalStatus)), anys(c.NodalStatus)...)
	}
	if r := c.TumourSizeMM; r != nil {
		add("e.tumour_size_mm >= ?", max(r.Min, 1))
		if r.Max > 0 {
			add("e.tumour_size_mm <= ?", r.Max)
		}
	}
	if len(c.Outcomes) > 0 {
		var ors []string
		for _, f := range c.Outcomes {
			switch f {
			case bildrum.FindingScreenInvasive:
				ors, args = append(ors, "(e.outcome = ? AND e.detection = ?)"), append(args, string(bildrum.OutcomeInvasive), string(bildrum.DetectedAtScreen))
			case bildrum.FindingScreenDCIS:
				ors, args = append(ors, "(e.outcome = ? AND e.detection = ?)"), append(args, string(bildrum.OutcomeDCIS), string(bildrum.DetectedAtScreen))
			case bildrum.FindingInterval:
				ors, args = append(ors, "(e.detection = ? AND e.outcome IN (?, ?))"), append(args, string(bildrum.DetectedInterval), string(bildrum.OutcomeInvasive), string(bildrum.OutcomeDCIS))
			case bildrum.FindingBenign:
				ors, args = append(ors, "e.outcome = ?"), append(args, string(bildrum.OutcomeBenign))
			default:
				return "", nil, bildrum.Errorf(bildrum.EINVALID, "%s: unknown finding %q", op, f)
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	for _, v := range c.Views {
		// views holds codes joined by '+'. A plain substring search is
		// exact for the four standard codes, none of which is part of
		// another, and cheaper than delimiting each row's text; any other
		// code is refused, so that this stays so.
		if !slices.Contains(bildrum.StandardViews(), v) {
			return "", nil, bildrum.Errorf(bildrum.EINVALID, "%s: unknown view %q", op, v)
		}
		add(d.contains("e.views")+" > 0", v)
	}
	return strings.Join(where, " AND "), args, nil
}

// sqliteAgeKey is the SQL of an examination's age key: (YYYYMMDD of the
// exam) − (YYYYMMDD of her birth), whose ⌊/10000⌋ is her age in whole years
// on the day, exactly as bildrum.AgeAt counts it (a birthday on 29 February
// included). The birth date is read from the personnummer as
// bildrum.PersonID.BirthDate reads it: a samordningsnummer's day less 60, a
// month of 00 taken as 01. (A day of 00 is taken as 01 too, but no date
// lies between the two, so the age is the same either way.) The index
// episodes_feasibility
// (0005_feasibility.sql) holds the same expression, spelt exactly so, and the
// planner reads the value from there instead of computing it per row.
const sqliteAgeKey = `(CAST(REPLACE(exam_date, '-', '') AS INTEGER) - CAST(SUBSTR(person_id, 1, 8) AS INTEGER) + CASE WHEN SUBSTR(person_id, 7, 1) >= '6' THEN 60 ELSE 0 END - CASE WHEN SUBSTR(person_id, 5, 2) = '00' THEN 100 ELSE 0 END)`

// postgresAgeKey is sqliteAgeKey for PostgreSQL, where exam_date is a DATE.
const postgresAgeKey = `(CAST(TO_CHAR(exam_date, 'YYYYMMDD') AS INTEGER) - CAST(SUBSTR(person_id, 1, 8) AS INTEGER) + CASE WHEN SUBSTR(person_id, 7, 1) >= '6' THEN 60 ELSE 0 END - CASE WHEN SUBSTR(person_id, 5, 2) = '00' THEN 100 ELSE 0 END)`

// countIndex names, in SQLite, the index a count must read (see
// 0005_feasibility.sql): without statistics the planner may choose a wider
// one, and a missing index fails the count instead of making it slow.
func (d *DB) countIndex() string {
	if d.dialect == postgresDialect {
		return ""
	}
	return " INDEXED BY episodes_feasibility"
}

// contains returns the SQL of the position of a bound string in the text of
// expr (0 when absent): a plain substring search, without LIKE's wildcards.
func (d *DB) contains(expr string) string {
	if d.dialect == postgresDialect {
		return "STRPOS(" + expr + ", ?)"
	}
	return "INSTR(" + expr + ", ?)"
}

// ageKey returns the age key's SQL for the DB's dialect.
func (d *DB) ageKey() string {
	if d.dialect == postgresDialect {
		return postgresAgeKey
	}
	return sqliteAgeKey
}

func anys[T ~string](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// StoredAnswer returns the answer stored under key, if any.
func (d *DB) StoredAnswer(ctx context.Context, key bildrum.FeasibilityKey) (bildrum.FeasibilityAnswer, bool, error) {
	a, err := storedAnswer(ctx, d.db, d.rebind, key)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	} else if err != nil {
		return a, false, fmt.Errorf("stored answer: %w", err)
	}
	return a, true, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func storedAnswer(ctx context.Context, q queryRower, rebind func(string) string, key bildrum.FeasibilityKey) (bildrum.FeasibilityAnswer, error) {
	var a bildrum.FeasibilityAnswer
	var prov string
	err := q.QueryRowContext(ctx, rebind(`SELECT provenance, signed FROM feasibility_answers
		WHERE query_hash = ? AND data_version = ? AND consent_version = ?`), key.QueryHash, key.DataVersion, key.ConsentVersion).
		Scan(&prov, &a.Signed)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(prov), &a.Provenance); err != nil {
		return a, fmt.Errorf("provenance of %s: %w", key.QueryHash, err)
	}
	return a, nil
}

// micro converts ε to the millionths the ledger keeps.
func micro(epsilon float64) int64 { return int64(math.Round(epsilon * 1e6)) }

// StoreAnswerAndCharge stores an answer and charges the requester in one
// transaction; see bildrum.FeasibilityStore.
func (d *DB) StoreAnswerAndCharge(ctx context.Context, key bildrum.FeasibilityKey, answer bildrum.FeasibilityAnswer, r bildrum.Requester, epsilon, budget float64) (bildrum.FeasibilityCharge, error) {
	var ch bildrum.FeasibilityCharge
	if err := r.Check(); err != nil {
		return ch, err
	}
	if key.QueryHash == "" || answer.Signed == "" {
		return ch, bildrum.Errorf(bildrum.EINVALID, "store answer: a query hash and a signed answer are needed")
	}
	eps, limit := micro(epsilon), micro(budget)
	if eps <= 0 {
		return ch, bildrum.Errorf(bildrum.EINVALID, "store answer: ε must be positive, got %g", epsilon)
	}
	prov, err := json.Marshal(answer.Provenance)
	if err != nil {
		return ch, fmt.Errorf("store answer: %w", err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return ch, fmt.Errorf("store answer: %w", err)
	}
	defer tx.Rollback()

	// The answer first: of concurrent identical questions one inserts, the
	// others wait for its commit (PostgreSQL) or its lock (SQLite) and
	// then find its answer stored.
	res, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO feasibility_answers (query_hash, data_version, consent_version, provenance, signed, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (query_hash, data_version, consent_version) DO NOTHING`),
		key.QueryHash, key.DataVersion, key.ConsentVersion, string(prov), answer.Signed, d.timeValue(d.Now()))
	if err != nil {
		return ch, fmt.Errorf("store answer: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return ch, fmt.Errorf("store answer: %w", err)
	} else if n == 0 {
		stored, err := storedAnswer(ctx, tx, d.rebind, key)
		if err != nil {
			return ch, fmt.Errorf("store answer: read the stored one: %w", err)
		}
		spent, err := d.spent(ctx, tx, r)
		if err != nil {
			return ch, err
		}
		return bildrum.FeasibilityCharge{Answer: stored, Spent: float64(spent) / 1e6}, nil
	}

	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO feasibility_budgets (name, organisation, spent_micro) VALUES (?, ?, 0)
		ON CONFLICT (name, organisation) DO NOTHING`), r.Name, r.Organisation); err != nil {
		return ch, fmt.Errorf("store answer: budget: %w", err)
	}
	// One conditional update both checks and charges, so two concurrent
	// questions of one requester cannot both pass the check.
	res, err = tx.ExecContext(ctx, d.rebind(`UPDATE feasibility_budgets SET spent_micro = spent_micro + ?
		WHERE name = ? AND organisation = ? AND spent_micro + ? <= ?`), eps, r.Name, r.Organisation, eps, limit)
	if err != nil {
		return ch, fmt.Errorf("store answer: charge: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return ch, fmt.Errorf("store answer: charge: %w", err)
	} else if n == 0 {
		spent, err := d.spent(ctx, tx, r)
		if err != nil {
			return ch, err
		}
		return ch, bildrum.Errorf(bildrum.EFORBIDDEN, "privacy budget spent: this question costs ε %g, and %g of the budget of %g remains; asking a question again that was answered before costs nothing",
			epsilon, float64(max(limit-spent, 0))/1e6, budget)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO feasibility_charges (name, organisation, query_hash, data_version, consent_version, epsilon_micro, charged_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), r.Name, r.Organisation, key.QueryHash, key.DataVersion, key.ConsentVersion, eps, d.timeValue(d.Now())); err != nil {
		return ch, fmt.Errorf("store answer: ledger: %w", err)
	}
	spent, err := d.spent(ctx, tx, r)
	if err != nil {
		return ch, err
	}
	if err := tx.Commit(); err != nil {
		return ch, fmt.Errorf("store answer: commit: %w", err)
	}
	return bildrum.FeasibilityCharge{Answer: answer, Charged: float64(eps) / 1e6, Spent: float64(spent) / 1e6}, nil
}

// spent returns the requester's spent budget in millionths of ε.
func (d *DB) spent(ctx context.Context, q queryRower, r bildrum.Requester) (int64, error) {
	var spent int64
	err := q.QueryRowContext(ctx, d.rebind(`SELECT spent_micro FROM feasibility_budgets WHERE name = ? AND organisation = ?`), r.Name, r.Organisation).Scan(&spent)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("privacy budget of %s: %w", r.Name, err)
	}
	return spent, nil
}

// FeasibilitySpent returns the ε charged to the requester so far.
func (d *DB) FeasibilitySpent(ctx context.Context, r bildrum.Requester) (float64, error) {
	spent, err := d.spent(ctx, d.db, r)
	return float64(spent) / 1e6, err
}
