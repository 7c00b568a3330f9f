package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
)

// maxRecountWomen is how many women an import may touch and still have the
// register's counts brought up to date inside it. Beyond that the import
// stores no counts, and the first ScreeningCounts call after it reads the
// whole register: a bulk load costs the same either way, and an import's
// transaction should not grow by a full count.
var maxRecountWomen = 25000

// recountBatch is how many women one facts query reads.
const recountBatch = 500

// recount brings the stored screening counts up to date within an import,
// so that the first ScreeningCounts call after a routine import reads them
// instead of the whole register.
//
// The counts are a sum over women: each woman's tallies depend only on her
// own episodes (tally.endWoman). So the counts after an import are the
// counts before it, minus the tallies of every woman the import touches as
// her rows were before, plus her tallies as they are after. The women
// touched are those whose number appears in the import and those who held
// an imported episode id before. Their rows are read before the import
// changes any of them (touch) and again at its end (finish), in the same
// transaction, which the version row serialises against other imports.
type recount struct {
	db *DB
	// prior are the quarter counts of the version before the import; nil
	// when there are none to start from, or the import became too large,
	// and then recount does nothing.
	prior  []bildrum.ScreeningCounts
	empty  bool // the register held no episodes before the import
	women  map[string]struct{}
	before *tally
}

// startRecount prepares the recount of the import that took version, inside
// its transaction tx, in which the register held no episodes if empty.
func (d *DB) startRecount(ctx context.Context, tx *sql.Tx, version int64, empty bool) (*recount, error) {
	r := &recount{db: d, empty: empty, women: make(map[string]struct{}), before: newTally()}
	if r.empty {
		r.prior = []bildrum.ScreeningCounts{}
		return r, nil
	}
	prior, err := storedCounts(ctx, tx, d.rebind, version-1)
	if err != nil {
		return nil, fmt.Errorf("recount: %w", err)
	}
	r.prior = prior // nil when not stored: nothing to start from
	return r, nil
}

// active reports whether the recount still follows the import.
func (r *recount) active() bool { return r.prior != nil }

// stop gives the recount up; the next ScreeningCounts call counts in full.
func (r *recount) stop() { r.prior, r.women, r.before = nil, nil, nil }

// touch reads, before episodes are written, the rows of every woman they
// touch that this import has not touched yet.
func (r *recount) touch(ctx context.Context, tx *sql.Tx, episodes []bildrum.ScreeningEpisode) error {
	if !r.active() {
		return nil
	}
	var fresh []string
	add := func(p string) {
		if _, ok := r.women[p]; !ok {
			r.women[p] = struct{}{}
			fresh = append(fresh, p)
		}
	}
	for i := range episodes {
		add(string(episodes[i].Person))
	}
	if !r.empty {
		// An episode may move to another woman: its former holder is
		// touched too.
		ids := make([]string, len(episodes))
		for i := range episodes {
			ids[i] = episodes[i].ID
		}
		for batch := range slices.Chunk(ids, recountBatch) {
			rows, err := tx.QueryContext(ctx, r.db.rebind(`SELECT DISTINCT person_id FROM episodes WHERE id IN (`+placeholders(len(batch))+`)`), anys(batch)...)
			if err != nil {
				return fmt.Errorf("recount: holders of episodes: %w", err)
			}
			for rows.Next() {
				var p string
				if err := rows.Scan(&p); err != nil {
					rows.Close()
					return fmt.Errorf("recount: holders of episodes: %w", err)
				}
				add(p)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("recount: holders of episodes: %w", err)
			}
		}
	}
	if len(r.women) > maxRecountWomen {
		r.stop()
		return nil
	}
	if r.empty {
		return nil // nobody had rows to take away
	}
	return r.db.tallyWomen(ctx, tx, fresh, r.before)
}

// finish stores, inside the import's transaction, the counts of version:
// the prior counts with the touched women's tallies taken away as they
// were and added as they are.
func (r *recount) finish(ctx context.Context, tx *sql.Tx, version int64) error {
	if !r.active() {
		return nil
	}
	after := newTally()
	if r.empty {
		// Every woman in the register was touched: one pass reads them
		// faster than lookups by number.
		if err := r.db.tallyRange(ctx, tx, "", "", after); err != nil {
			return fmt.Errorf("recount: %w", err)
		}
	} else {
		women := make([]string, 0, len(r.women))
		for p := range r.women {
			women = append(women, p)
		}
		if err := r.db.tallyWomen(ctx, tx, women, after); err != nil {
			return err
		}
	}
	cells := sumCells([][]bildrum.ScreeningCounts{r.prior, after.cells()}, r.before.cells())
	if len(cells) == 0 {
		return nil
	}
	return r.db.storeCountsIn(ctx, tx, version, cells)
}

// sumCells returns the sum of the lists in plus minus the list minus, cell
// by cell (a cell is a period and an age band), ordered as sortCells does,
// leaving out cells in which nothing is counted (a full count has none).
func sumCells(plus [][]bildrum.ScreeningCounts, minus []bildrum.ScreeningCounts) []bildrum.ScreeningCounts {
	type key struct{ period, band string }
	index := make(map[key]int)
	var out []bildrum.ScreeningCounts
	cell := func(c bildrum.ScreeningCounts) *bildrum.ScreeningCounts {
		k := key{c.Period, c.AgeBand}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, bildrum.ScreeningCounts{Period: c.Period, AgeBand: c.AgeBand})
		}
		return &out[i]
	}
	for _, cells := range plus {
		for _, c := range cells {
			cell(c).Add(c)
		}
	}
	for _, c := range minus {
		cell(c).Sub(c)
	}
	kept := out[:0]
	for _, c := range out {
		if !c.IsEmpty() {
			kept = append(kept, c)
		}
	}
	sortCells(kept)
	return kept
}

// tallyWomen adds to t the tallies of the given women, read with the same
// projection as a full count.
func (d *DB) tallyWomen(ctx context.Context, tx *sql.Tx, women []string, t *tally) error {
	for batch := range slices.Chunk(women, recountBatch) {
		in := ` WHERE ` + d.factsPerson() + ` IN (` + placeholders(len(batch)) + `)`
		query, scan := sqliteFactsQuery+in, scanSQLiteFacts
		if d.dialect == postgresDialect {
			query, scan = postgresFacts+in+` ORDER BY e.person_id`, scanPostgresFacts
		}
		rows, err := tx.QueryContext(ctx, d.rebind(query), anys(batch)...)
		if err != nil {
			return fmt.Errorf("recount: %w", err)
		}
		err = scan(rows, t)
		rows.Close()
		if err != nil {
			return fmt.Errorf("recount: %w", err)
		}
		t.endWoman()
	}
	return nil
}

// placeholders returns n comma-separated question marks, for IN lists and
// rows of VALUES.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
