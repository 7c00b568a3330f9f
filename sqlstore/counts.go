package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/bildrum/bildrum"
)

var _ bildrum.CountStore = (*DB)(nil)

// ScreeningCounts returns the register's screening counts per period of kind
// and age band, and the data version they describe; see bildrum.CountStore
// and docs/quality.md for every definition.
//
// The counts of a data version are computed once, in one pass over the
// register inside a read-only snapshot transaction (computeCounts), kept in
// quality_counts per calendar quarter and age band, and read back by later
// calls at the same version; years are sums of their quarters. Storing them
// is best effort: when it fails (for instance because an import holds
// SQLite's write lock for longer than the busy timeout) the call still
// returns the counts it computed, and the next call computes them again.
// Two calls that find the counts missing at the same time both compute them.
func (d *DB) ScreeningCounts(ctx context.Context, kind bildrum.PeriodKind) ([]bildrum.ScreeningCounts, int64, error) {
	if _, err := bildrum.ParsePeriodKind(string(kind)); err != nil {
		return nil, 0, err
	}
	quarters, version, computed, err := d.quarterCounts(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("screening counts: %w", err)
	}
	if computed {
		// Best effort, see above: the counts are right either way.
		_ = d.storeCounts(ctx, version, quarters)
	}
	return regroup(quarters, kind), version, nil
}

// quarterCounts returns the counts per quarter and band and the data version,
// from one snapshot: the stored counts of that version, or else counts
// computed from the register (computed is then true).
func (d *DB) quarterCounts(ctx context.Context) (cells []bildrum.ScreeningCounts, version int64, computed bool, err error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: d.snapshotIsolation()})
	if err != nil {
		return nil, 0, false, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&version); err != nil {
		return nil, 0, false, fmt.Errorf("data version: %w", err)
	}
	cells, err = storedCounts(ctx, tx, d.rebind, version)
	if err != nil {
		return nil, 0, false, err
	}
	if cells == nil {
		computed = true
		if cells, err = d.computeCounts(ctx, tx, version); err != nil {
			return nil, 0, false, err
		}
	}
	return cells, version, computed, tx.Commit()
}

// snapshotIsolation is the isolation level of a read-only transaction in
// which every statement sees the same snapshot. On PostgreSQL that is
// REPEATABLE READ; on SQLite a read-only transaction is a deferred BEGIN,
// which in WAL mode reads one snapshot from its first statement on and never
// blocks writers.
func (d *DB) snapshotIsolation() sql.IsolationLevel {
	if d.dialect == postgresDialect {
		return sql.LevelRepeatableRead
	}
	return sql.LevelDefault
}

// countsFormat is the layout of the counts kept in quality_counts. Change it
// whenever bildrum.ScreeningCounts or a rule of endWoman or countExam
// changes, so that counts kept by an older program are computed again.
const countsFormat = 1

// storedCounts reads the counts kept for version, nil if there are none.
func storedCounts(ctx context.Context, tx *sql.Tx, rebind func(string) string, version int64) ([]bildrum.ScreeningCounts, error) {
	rows, err := tx.QueryContext(ctx, rebind(`SELECT counts FROM quality_counts WHERE version = ? AND format = ?`), version, countsFormat)
	if err != nil {
		return nil, fmt.Errorf("read stored counts: %w", err)
	}
	defer rows.Close()
	var cells []bildrum.ScreeningCounts
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read stored counts: %w", err)
		}
		var c bildrum.ScreeningCounts
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("read stored counts of version %d: %w", version, err)
		}
		cells = append(cells, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stored counts: %w", err)
	}
	sortCells(cells)
	return cells, nil
}

// storeCounts keeps the quarter counts of version and deletes those of older
// versions and other formats. Counts of a newer version, stored meanwhile by
// another call, stay.
func (d *DB) storeCounts(ctx context.Context, version int64, cells []bildrum.ScreeningCounts) error {
	if len(cells) == 0 {
		return nil // an empty register: computing costs nothing
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store counts: %w", err)
	}
	defer tx.Rollback()
	if err := d.storeCountsIn(ctx, tx, version, cells); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store counts: %w", err)
	}
	return nil
}

// storeCountsIn does the work of storeCounts inside tx.
func (d *DB) storeCountsIn(ctx context.Context, tx *sql.Tx, version int64, cells []bildrum.ScreeningCounts) error {
	if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM quality_counts WHERE version < ? OR format <> ?`), version, countsFormat); err != nil {
		return fmt.Errorf("store counts: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, d.rebind(`INSERT INTO quality_counts (version, format, period, age_band, counts) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (version, format, period, age_band) DO NOTHING`))
	if err != nil {
		return fmt.Errorf("store counts: %w", err)
	}
	defer stmt.Close()
	for _, c := range cells {
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("store counts: %w", err)
		}
		if _, err := stmt.ExecContext(ctx, version, countsFormat, c.Period, c.AgeBand, string(b)); err != nil {
			return fmt.Errorf("store counts: %w", err)
		}
	}
	return nil
}

// computeCounts reads every episode once, woman by woman, and tallies the
// quarter and age band counts of the snapshot of tx, which shows data
// version.
//
// The tallying is Go (tally), shared by both engines; SQL only reads.
// Measured on one million examinations (docs/quality.md), SQL aggregation
// with GROUP BY and window functions took more than ten times as long on
// SQLite and three to four times as long on PostgreSQL as streaming compact
// rows in person order, and the rules (which screen is initial, which is
// negative …) are then written once.
//
// A large register is read in parts, one per core (splitCounts).
func (d *DB) computeCounts(ctx context.Context, tx *sql.Tx, version int64) ([]bildrum.ScreeningCounts, error) {
	if parts := min(runtime.GOMAXPROCS(0), maxCountParts); parts > 1 {
		cells, ok, err := d.splitCounts(ctx, tx, version, parts)
		if err != nil {
			return nil, fmt.Errorf("compute counts: %w", err)
		}
		if ok {
			return cells, nil
		}
	}
	t := newTally()
	if err := d.tallyRange(ctx, tx, "", "", t); err != nil {
		return nil, fmt.Errorf("compute counts: %w", err)
	}
	return t.cells(), nil
}

// maxCountParts bounds how many connections one count reads on at once.
const maxCountParts = 4

// minSplitWomen is the smallest register, in women, that splitCounts reads
// in parts; below it the extra transactions cost more than they save.
var minSplitWomen = 1000

// splitCounts counts the register in parts of about equal numbers of women,
// ranges of their numbers, each read on its own connection at once and
// summed: all of a woman's episodes fall in one range, so the parts' tallies
// add up to the whole. Every part must read the snapshot of tx: on
// PostgreSQL the others import it (SET TRANSACTION SNAPSHOT); on SQLite,
// where a snapshot cannot be shared, each part's transaction must show the
// same data version, which every write to the register moves. ok is false,
// and the caller counts in one pass, when the register is small or a write
// came in between.
func (d *DB) splitCounts(ctx context.Context, tx *sql.Tx, version int64, parts int) (cells []bildrum.ScreeningCounts, ok bool, err error) {
	bounds, err := splitPoints(ctx, tx, d.rebind, parts)
	if err != nil || bounds == nil {
		return nil, false, err
	}
	snapshot := ""
	if d.dialect == postgresDialect {
		if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
			return nil, false, fmt.Errorf("export snapshot: %w", err)
		}
	}
	txs := []*sql.Tx{tx}
	defer func() {
		for _, t := range txs[1:] {
			t.Rollback()
		}
	}()
	for range bounds {
		t, same, err := d.beginSnapshot(ctx, snapshot, version)
		if err != nil || !same {
			return nil, false, err
		}
		txs = append(txs, t)
	}
	ranges := append(append([]string{""}, bounds...), "")
	tallies := make([]*tally, len(txs))
	errs := make([]error, len(txs))
	var wg sync.WaitGroup
	for i, t := range txs {
		tallies[i] = newTally()
		wg.Go(func() { errs[i] = d.tallyRange(ctx, t, ranges[i], ranges[i+1], tallies[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	sums := make([][]bildrum.ScreeningCounts, len(tallies))
	for i, t := range tallies {
		sums[i] = t.cells()
	}
	return sumCells(sums, nil), true, nil
}

// splitPoints returns the parts-1 women's numbers that split the register's
// women into parts of about equal size, or nil when the register has fewer
// than minSplitWomen women.
func splitPoints(ctx context.Context, tx *sql.Tx, rebind func(string) string, parts int) ([]string, error) {
	var women int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM persons`).Scan(&women); err != nil {
		return nil, fmt.Errorf("split counts: %w", err)
	}
	if women < minSplitWomen {
		return nil, nil
	}
	bounds := make([]string, parts-1)
	for i := range bounds {
		q := rebind(`SELECT person_id FROM persons ORDER BY person_id LIMIT 1 OFFSET ?`)
		if err := tx.QueryRowContext(ctx, q, women*(i+1)/parts).Scan(&bounds[i]); err != nil {
			return nil, fmt.Errorf("split counts: %w", err)
		}
	}
	return bounds, nil
}

// beginSnapshot begins a read-only transaction on another connection that
// reads the snapshot exported by the counting transaction (PostgreSQL) and
// reports whether it shows data version (both engines); when it does not,
// the transaction is rolled back.
func (d *DB) beginSnapshot(ctx context.Context, snapshot string, version int64) (*sql.Tx, bool, error) {
	t, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: d.snapshotIsolation()})
	if err != nil {
		return nil, false, fmt.Errorf("split counts: %w", err)
	}
	if snapshot != "" {
		if strings.Trim(snapshot, "0123456789ABCDEF-") != "" {
			t.Rollback()
			return nil, false, fmt.Errorf("split counts: unexpected snapshot name %q", snapshot)
		}
		if _, err := t.ExecContext(ctx, `SET TRANSACTION SNAPSHOT '`+snapshot+`'`); err != nil {
			t.Rollback()
			return nil, false, fmt.Errorf("split counts: import snapshot: %w", err)
		}
	}
	var v int64
	if err := t.QueryRowContext(ctx, `SELECT version FROM register_version WHERE id = 1`).Scan(&v); err != nil {
		t.Rollback()
		return nil, false, fmt.Errorf("split counts: %w", err)
	}
	if v != version {
		t.Rollback()
		return nil, false, nil
	}
	return t, true, nil
}

// factsPerson is the column of the facts queries to select women by: the
// one the query's plan reads first, persons on SQLite and episodes on
// PostgreSQL, whose planner does not carry a range or an IN list across the
// join's equality and would otherwise read every episode.
func (d *DB) factsPerson() string {
	if d.dialect == postgresDialect {
		return "e.person_id"
	}
	return "p.person_id"
}

// tallyRange adds to t the tallies of the women whose numbers are in
// [from, to); an empty bound is open.
func (d *DB) tallyRange(ctx context.Context, tx *sql.Tx, from, to string, t *tally) error {
	var where []string
	var args []any
	if from != "" {
		where, args = append(where, d.factsPerson()+" >= ?"), append(args, from)
	}
	if to != "" {
		where, args = append(where, d.factsPerson()+" < ?"), append(args, to)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	query, scan := sqliteFactsQuery+cond, scanSQLiteFacts
	if d.dialect == postgresDialect {
		query, scan = postgresFacts+cond+` ORDER BY e.person_id`, scanPostgresFacts
		// Compiling the projection costs more than running it, and the
		// sort by person should stay in memory.
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
			return err
		}
	}
	rows, err := tx.QueryContext(ctx, d.rebind(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows, t); err != nil {
		return err
	}
	t.endWoman()
	return nil
}

// scanSQLiteFacts feeds the rows of sqliteFactsQuery to t.
func scanSQLiteFacts(rows *sql.Rows, t *tally) error {
	var keyFlags, dates1, dates2 int64
	last := int64(-1)
	for rows.Next() {
		if err := rows.Scan(&keyFlags, &dates1, &dates2); err != nil {
			return err
		}
		if key := keyFlags >> flagBits; key != last {
			t.endWoman()
			last = key
		}
		f, err := decodeSQLiteDates(dates1, dates2)
		if err != nil {
			return err
		}
		f.flags = uint32(keyFlags & (1<<flagBits - 1))
		t.woman = append(t.woman, f)
	}
	return rows.Err()
}

// scanPostgresFacts feeds the rows of postgresFacts to t.
func scanPostgresFacts(rows *sql.Rows, t *tally) error {
	var (
		person, last          sql.RawBytes // her number, reusing the buffers
		dates1, dates2, flags int64
	)
	for rows.Next() {
		if err := rows.Scan(&person, &dates1, &dates2, &flags); err != nil {
			return err
		}
		if string(person) != string(last) {
			t.endWoman()
			last = append(last[:0], person...)
		}
		f, err := decodePostgresDates(dates1, dates2)
		if err != nil {
			return err
		}
		f.flags = uint32(flags)
		t.woman = append(t.woman, f)
	}
	return rows.Err()
}

// The flags of an episode, packed by the facts queries into one integer.
const (
	flagRound1    = 1 << 0 // round 1: her first invitation
	flagAttended  = 1 << 1
	flagRepeat    = 1 << 2 // technical repeat
	flagRecalled  = 1 << 3
	flagAssessed  = 1 << 4 // assessment date recorded
	flagNeedle    = 1 << 5
	flagOpen      = 1 << 6
	flagPreop     = 1 << 7
	shiftOutcome  = 8  // 2 bits: 0 none, 1 benign, 2 DCIS, 3 invasive
	shiftDetected = 10 // 2 bits: 0 none, 1 screen, 2 interval
	shiftNodes    = 12 // 2 bits: 0 not recorded, 1 negative, 2 positive
	shiftSize     = 14 // 2 bits: 0 not recorded, 1 1–10 mm, 2 11–14 mm, 3 ≥ 15 mm
	shiftInterval = 16 // 2 bits: 0 none, 1 0–11 months, 2 12–23 months, 3 later
	flagBits      = 20 // the flags fit in so many bits
)

// flagsSQL packs an episode's flags as the constants above say. It is the
// same in both dialects: booleans are compared with TRUE (SQLite's TRUE is
// 1). SQLite's migration 0007 indexes the same expression.
const flagsSQL = `
	(CASE WHEN e.round = 1 THEN 1 ELSE 0 END)
	+ (CASE WHEN e.attended = TRUE THEN 2 ELSE 0 END)
	+ (CASE WHEN e.technical_repeat = TRUE THEN 4 ELSE 0 END)
	+ (CASE WHEN e.recalled = TRUE THEN 8 ELSE 0 END)
	+ (CASE WHEN e.assessment_date IS NOT NULL THEN 16 ELSE 0 END)
	+ (CASE WHEN e.needle_biopsy = TRUE THEN 32 ELSE 0 END)
	+ (CASE WHEN e.open_biopsy = TRUE THEN 64 ELSE 0 END)
	+ (CASE WHEN e.preop_diagnosis = TRUE THEN 128 ELSE 0 END)
	+ (CASE e.outcome WHEN 'benign' THEN 256 WHEN 'dcis' THEN 512 WHEN 'invasive' THEN 768 ELSE 0 END)
	+ (CASE e.detection WHEN 'screen' THEN 1024 WHEN 'interval' THEN 2048 ELSE 0 END)
	+ (CASE e.nodal_status WHEN 'negative' THEN 4096 WHEN 'positive' THEN 8192 ELSE 0 END)
	+ (CASE WHEN e.tumour_size_mm <= 0 THEN 0 WHEN e.tumour_size_mm <= 10 THEN 16384 WHEN e.tumour_size_mm < 15 THEN 32768 ELSE 49152 END)
	+ (CASE WHEN e.detection <> 'interval' OR e.interval_months < 0 THEN 0 WHEN e.interval_months <= 11 THEN 65536
		WHEN e.interval_months <= 23 THEN 131072 ELSE 196608 END)`

// sqliteFactsQuery reads every episode with its woman's birth date, woman by
// woman: the persons drive the join (CROSS JOIN fixes the order), and each
// woman's episodes follow. Every expression is stored in the indexes
// persons_quality and episodes_quality of migration 0007, so SQLite reads
// the values from them instead of computing them and never reads a table
// row; the expressions there and here must match exactly, parentheses
// included (TestFactsQueryPlan). There is no INDEXED BY: on a database with
// other indexes the query still runs, only slower. Every column of a row
// costs, so the woman's key (the persons rowid) shares the first column with
// the flags (key times 2^flagBits), and the dates are YYYYMMDD integers two
// to a column (the first times 2^25); a missing date is 0.
const sqliteFactsQuery = `
SELECT p.rowid * 1048576 + (` + flagsSQL + `),
	CAST(replace(p.birth_date, '-', '') AS INTEGER) * 33554432 + CAST(replace(e.invitation_date, '-', '') AS INTEGER),
	COALESCE(CAST(replace(e.exam_date, '-', '') AS INTEGER), 0) * 33554432 + COALESCE(CAST(replace(e.result_date, '-', '') AS INTEGER), 0)
FROM persons p CROSS JOIN episodes e ON e.person_id = p.person_id`

// postgresFacts reads every episode with its woman's birth date; sorted by
// woman (ORDER BY e.person_id) it feeds scanPostgresFacts. The person key is
// her number. Dates are day numbers (1 is 1800-01-01, so 2^20 days reach
// beyond 4600), two to a column (the first times 2^20); a missing date is 0.
const postgresFacts = `
SELECT e.person_id,
	(p.birth_date - DATE '1799-12-31')::bigint * 1048576 + (e.invitation_date - DATE '1799-12-31'),
	COALESCE(e.exam_date - DATE '1799-12-31', 0)::bigint * 1048576 + COALESCE(e.result_date - DATE '1799-12-31', 0),` +
	flagsSQL + `
FROM episodes e JOIN persons p ON p.person_id = e.person_id`

// facts is what the counts need of one episode: its dates as YYYYMMDD
// integers (0 when not recorded) and its packed flags.
type facts struct {
	birth, invited, examined, result int32
	flags                            uint32
}

func (f facts) has(flag uint32) bool      { return f.flags&flag != 0 }
func (f facts) field(shift uint32) uint32 { return f.flags >> shift & 3 }
func (f facts) screenCancer() bool        { return f.field(shiftDetected) == 1 && f.field(shiftOutcome) >= 2 }
func (f facts) intervalCancer() bool {
	return f.field(shiftDetected) == 2 && f.field(shiftOutcome) >= 2
}
func (f facts) screened() bool { return f.has(flagAttended) && f.examined != 0 }
func (f facts) invasive() bool { return f.field(shiftOutcome) == 3 }

// decodeSQLiteDates unpacks the two date columns of sqliteFactsQuery.
func decodeSQLiteDates(d1, d2 int64) (facts, error) {
	const m = 1 << 25
	f := facts{birth: int32(d1 / m), invited: int32(d1 % m), examined: int32(d2 / m), result: int32(d2 % m)}
	if d1 < 0 || d2 < 0 || f.birth == 0 || f.invited == 0 {
		return facts{}, fmt.Errorf("episode with dates %d, %d: birth and invitation dates must be recorded", d1, d2)
	}
	return f, nil
}

// decodePostgresDates unpacks the two date columns of postgresFacts.
func decodePostgresDates(d1, d2 int64) (facts, error) {
	const m = 1 << 20
	if d1 < 0 || d2 < 0 || d1/m == 0 || d1%m == 0 {
		return facts{}, fmt.Errorf("episode with dates %d, %d: birth and invitation dates must be recorded", d1, d2)
	}
	return facts{birth: ymdOfDay(d1 / m), invited: ymdOfDay(d1 % m), examined: ymdOfDay(d2 / m), result: ymdOfDay(d2 % m)}, nil
}

// ymdOfDay turns a day number of postgresFacts (1 is 1800-01-01; 0 is
// no date) into YYYYMMDD.
func ymdOfDay(n int64) int32 {
	if n == 0 {
		return 0
	}
	if table := ymdTable(); n < int64(len(table)) {
		return table[n]
	}
	y, m, d := civil(n - 1 + dayOf(18000101))
	return int32(y*10000 + m*100 + d)
}

// ymdTable is ymdOfDay's answer for every day number up to 2199-12-31,
// computed once: a count converts four dates per episode, and a table
// lookup costs a fraction of the calendar arithmetic.
var ymdTable = sync.OnceValue(func() []int32 {
	first := dayOf(18000101)
	table := make([]int32, dayOf(22000101)-first+1)
	for n := 1; n < len(table); n++ {
		y, m, d := civil(int64(n) - 1 + first)
		table[n] = int32(y*10000 + m*100 + d)
	}
	return table
})

// civil returns the proleptic Gregorian date of day z counted from
// 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms",
// civil_from_days).
func civil(z int64) (year, month, day int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	year = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if month > 12 {
		month -= 12
	}
	if month <= 2 {
		year++
	}
	return year, month, day
}

// dayOf returns the day number counted from 1970-01-01 of a YYYYMMDD date
// (days_from_civil, ibid.).
func dayOf(ymd int32) int64 {
	y, m, d := int64(ymd/10000), int64(ymd/100%100), int64(ymd%100)
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// cellKey names a quarter (year*4 + quarter-1) and an age band.
type cellKey struct {
	quarter int32
	band    string
}

// tally accumulates the counts of one pass over the register. Each woman's
// episodes are collected in woman and counted by endWoman, because whether
// an examination is her initial screen depends on all of them.
type tally struct {
	counts map[cellKey]*bildrum.ScreeningCounts
	// byAge finds the cell of a quarter and an age in whole years (the
	// quarter times 256 plus the age) without hashing a band's name: it is
	// looked up for every invitation and examination.
	byAge map[int64]*bildrum.ScreeningCounts
	woman []facts
}

func newTally() *tally {
	return &tally{counts: make(map[cellKey]*bildrum.ScreeningCounts), byAge: make(map[int64]*bildrum.ScreeningCounts)}
}

// cell returns the cell of the quarter and the age band of the woman born on
// birth, at date.
func (t *tally) cell(birth, date int32) *bildrum.ScreeningCounts {
	quarter, age := date/10000*4+(date/100%100-1)/3, (date-birth)/10000
	ageKey := int64(quarter)<<8 | int64(min(max(age, 0), 255))
	if c := t.byAge[ageKey]; c != nil && age >= 0 && age <= 255 {
		return c
	}
	k := cellKey{quarter: quarter, band: bildrum.AgeBandOf(int(age))}
	c := t.counts[k]
	if c == nil {
		c = &bildrum.ScreeningCounts{
			Period:  fmt.Sprintf("%04d-Q%d", k.quarter/4, k.quarter%4+1),
			AgeBand: k.band,
		}
		t.counts[k] = c
	}
	if age >= 0 && age <= 255 {
		t.byAge[ageKey] = c
	}
	return c
}

// endWoman counts the collected episodes of one woman; docs/quality.md
// states each rule.
func (t *tally) endWoman() {
	if len(t.woman) == 0 {
		return
	}
	// Her initial screen is her earliest examination, if her register
	// history starts at round 1; otherwise she was invited, and so probably
	// screened, before it began.
	round1 := false
	var first int32
	for _, f := range t.woman {
		round1 = round1 || f.has(flagRound1)
		if f.screened() && (first == 0 || f.examined < first) {
			first = f.examined
		}
	}
	for _, f := range t.woman {
		inv := t.cell(f.birth, f.invited)
		inv.Invited++
		if f.has(flagAttended) {
			inv.Attended++
		}
		if !f.screened() {
			continue
		}
		c := t.cell(f.birth, f.examined)
		e := &c.Subsequent
		if round1 && f.examined == first {
			e = &c.Initial
		}
		countExam(e, f)
	}
	t.woman = t.woman[:0]
}

// countExam adds one examination to e.
func countExam(e *bildrum.ExamCounts, f facts) {
	e.Screened++
	if f.has(flagRepeat) {
		e.TechnicalRepeats++
	}
	if f.has(flagRecalled) {
		e.Recalled++
	}
	cancer := f.screenCancer()
	benign := f.field(shiftOutcome) == 1
	if cancer {
		e.Cancers++
		if f.has(flagPreop) {
			e.PreopDiagnosed++
		}
		if f.invasive() {
			e.Invasive++
			if n := f.field(shiftNodes); n != 0 {
				e.NodeKnown++
				if n == 1 {
					e.NodeNegative++
				}
			}
			if s := f.field(shiftSize); s != 0 {
				e.SizeKnown++
				if s == 1 {
					e.InvasiveUpTo10MM++
				}
				if s <= 2 {
					e.InvasiveUnder15MM++
				}
			}
		} else {
			e.DCIS++
		}
	}
	if f.has(flagOpen) {
		if benign {
			e.OpenBiopsyBenign++
		} else if cancer {
			e.OpenBiopsyCancer++
		}
	}
	if f.has(flagOpen) || f.has(flagNeedle) {
		if benign {
			e.BiopsyBenign++
		} else if cancer {
			e.BiopsyCancer++
		}
	}
	// A negative screening episode: no screen-detected cancer, and either
	// read as normal (a result, no recall) or recalled and assessed without
	// a cancer found.
	negative := !cancer && (f.has(flagRecalled) && (f.has(flagAssessed) || benign) ||
		!f.has(flagRecalled) && f.result != 0)
	if negative {
		e.NegativeScreens++
		if f.intervalCancer() {
			switch f.field(shiftInterval) {
			case 1:
				e.Interval0to11++
			case 2:
				e.Interval12to23++
			}
		}
	}
	if f.result != 0 && f.result >= f.examined {
		e.ResultKnown++
		e.ResultDays[min(dayOf(f.result)-dayOf(f.examined), bildrum.ResultDayBuckets-1)]++
	}
}

// cells returns the tallied cells, ordered by quarter and band.
func (t *tally) cells() []bildrum.ScreeningCounts {
	out := make([]bildrum.ScreeningCounts, 0, len(t.counts))
	for _, c := range t.counts {
		out = append(out, *c)
	}
	sortCells(out)
	return out
}

// regroup returns the quarter cells as they are, or summed into years.
func regroup(quarters []bildrum.ScreeningCounts, kind bildrum.PeriodKind) []bildrum.ScreeningCounts {
	if kind == bildrum.PeriodQuarter {
		return quarters
	}
	years := make([]bildrum.ScreeningCounts, len(quarters))
	for i, q := range quarters {
		q.Period, _, _ = strings.Cut(q.Period, "-")
		years[i] = q
	}
	return sumCells([][]bildrum.ScreeningCounts{years}, nil)
}

// sortCells orders cells by period, then by band in bildrum.AgeBands order.
func sortCells(cells []bildrum.ScreeningCounts) {
	bands := bildrum.AgeBands()
	slices.SortFunc(cells, func(a, b bildrum.ScreeningCounts) int {
		if c := strings.Compare(a.Period, b.Period); c != 0 {
			return c
		}
		return slices.Index(bands, a.AgeBand) - slices.Index(bands, b.AgeBand)
	})
}
