package sqlstore

import (
	"context"
	"database/sql"
	"testing"

	"github.com/bildrum/bildrum"
)

// FullCounts counts the whole register as a first call after a bulk load
// does, whatever is stored, for tests that compare the two.
func (d *DB) FullCounts(ctx context.Context) ([]bildrum.ScreeningCounts, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&version); err != nil {
		return nil, err
	}
	return d.computeCounts(ctx, tx, version)
}

// StoredCounts returns the quarter counts kept for version, nil if none.
func (d *DB) StoredCounts(ctx context.Context, version int64) ([]bildrum.ScreeningCounts, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return storedCounts(ctx, tx, d.rebind, version)
}

// SetRecountLimit lowers how many women an import may touch and still be
// recounted, until the test ends.
func SetRecountLimit(t *testing.T, n int) {
	old := maxRecountWomen
	maxRecountWomen = n
	t.Cleanup(func() { maxRecountWomen = old })
}

// CountInParts counts the register in parts, as a large register is
// counted, claiming the snapshot shows version; ok is false when a part
// saw another version and nothing was counted.
func (d *DB) CountInParts(ctx context.Context, parts int, version int64) (cells []bildrum.ScreeningCounts, ok bool, err error) {
	old := minSplitWomen
	minSplitWomen = 1
	defer func() { minSplitWomen = old }()
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: d.snapshotIsolation()})
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	return d.splitCounts(ctx, tx, version, parts)
}

// CountInOnePass counts the register in one pass.
func (d *DB) CountInOnePass(ctx context.Context) ([]bildrum.ScreeningCounts, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t := newTally()
	if err := d.tallyRange(ctx, tx, "", "", t); err != nil {
		return nil, err
	}
	return t.cells(), nil
}

// QueryRowForTest runs a query on the database, for tests that look at
// the engine's own catalogue.
func (d *DB) QueryRowForTest(ctx context.Context, query string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, query, args...)
}
