package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

var _ bildrum.RegisterStore = (*DB)(nil)

// episodeColumns are the columns of episodes written from a ScreeningEpisode,
// in the order of episodeArgs.
var episodeColumns = []string{
	"id", "person_id", "region", "unit", "round", "invitation_date", "attended", "exam_date",
	"technical_repeat", "views", "reader1_birads", "reader2_birads", "consensus_birads", "density",
	"recalled", "result_date", "assessment_date", "additional_imaging", "ultrasound", "needle_biopsy",
	"open_biopsy", "assessment_birads", "outcome", "detection", "diagnosis_date", "tumour_size_mm",
	"nodal_status", "stage", "preop_diagnosis", "interval_months", "digest", "version", "episode_date",
}

// putBatch is how many episodes go into one INSERT: 33 columns × 400 rows
// stays under both engines' limits on bound parameters.
const putBatch = 400

func episodeArgs(e *bildrum.ScreeningEpisode, digest string, version int64) []any {
	return []any{
		e.ID, string(e.Person), e.Region, e.Unit, e.Round, e.Invited, e.Attended, e.Examined,
		e.TechnicalRepeat, strings.Join(e.Views, "+"), string(e.Reader1), string(e.Reader2), string(e.Consensus), string(e.Density),
		e.Recalled, e.ResultDay, e.Assessed, e.AdditionalImaging, e.Ultrasound, e.NeedleBiopsy,
		e.OpenBiopsy, string(e.AssessmentBIRADS), string(e.Outcome), string(e.Detection), e.Diagnosed, e.TumourSizeMM,
		e.NodalStatus, e.Stage, e.PreopDiagnosis, e.IntervalMonths, digest, version, episodeDate(e),
	}
}

// episodeDate is the date an episode is filed under.
func episodeDate(e *bildrum.ScreeningEpisode) bildrum.Date {
	if !e.Examined.IsZero() {
		return e.Examined
	}
	return e.Invited
}

// digestOf is the SHA-256 of an episode's canonical JSON.
func digestOf(e *bildrum.ScreeningEpisode) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// checkEpisode enforces what the store itself relies on; the register
// package validates everything else before rows reach a store.
func checkEpisode(e *bildrum.ScreeningEpisode) error {
	if e.ID == "" {
		return bildrum.Errorf(bildrum.EINVALID, "episode without id")
	}
	if _, err := bildrum.ParsePersonID(string(e.Person)); err != nil {
		return fmt.Errorf("episode %s: %w", e.ID, err)
	}
	if _, err := bildrum.RegionByCode(e.Region); err != nil {
		return fmt.Errorf("episode %s: %w", e.ID, err)
	}
	if e.Invited.IsZero() {
		return bildrum.Errorf(bildrum.EINVALID, "episode %s: invitation date missing", e.ID)
	}
	return nil
}

// upsertEpisodes writes persons and episodes inside tx and returns how many
// episodes were inserted or changed. SQLite runs in-process, so one prepared
// single-row statement is cheapest there; PostgreSQL pays a round trip per
// statement, so it gets multi-row statements.
func (d *DB) upsertEpisodes(ctx context.Context, tx *sql.Tx, episodes []bildrum.ScreeningEpisode, digests []string, version int64) (int, error) {
	var updates []string
	for _, c := range episodeColumns[1:] {
		updates = append(updates, c+" = excluded."+c)
	}
	onConflict := ` ON CONFLICT (id) DO UPDATE SET ` + strings.Join(updates, ", ") + ` WHERE episodes.digest <> excluded.digest`
	row := "(" + strings.Repeat("?, ", len(episodeColumns)-1) + "?)"
	insert := `INSERT INTO episodes (` + strings.Join(episodeColumns, ", ") + `) VALUES `

	if d.dialect == sqliteDialect {
		person, err := tx.PrepareContext(ctx, `INSERT INTO persons (person_id, birth_date) VALUES (?, ?) ON CONFLICT (person_id) DO NOTHING`)
		if err != nil {
			return 0, err
		}
		defer person.Close()
		episode, err := tx.PrepareContext(ctx, insert+row+onConflict)
		if err != nil {
			return 0, err
		}
		defer episode.Close()
		changed := 0
		var last bildrum.PersonID
		for i := range episodes {
			e := &episodes[i]
			if e.Person != last {
				last = e.Person
				if _, err := person.ExecContext(ctx, string(e.Person), bildrum.DateOf(e.Person.BirthDate())); err != nil {
					return 0, fmt.Errorf("person of %s: %w", e.ID, err)
				}
			}
			r, err := episode.ExecContext(ctx, episodeArgs(e, digests[i], version)...)
			if err != nil {
				return 0, fmt.Errorf("episode %s: %w", e.ID, err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return 0, err
			}
			changed += int(n)
		}
		return changed, nil
	}

	changed := 0
	for start := 0; start < len(episodes); start += putBatch {
		batch := episodes[start:min(start+putBatch, len(episodes))]

		persons := make(map[bildrum.PersonID]bool, len(batch))
		var pargs []any
		var pvals []string
		for i := range batch {
			if p := batch[i].Person; !persons[p] {
				persons[p] = true
				pvals = append(pvals, "(?, ?)")
				pargs = append(pargs, string(p), bildrum.DateOf(p.BirthDate()))
			}
		}
		q := `INSERT INTO persons (person_id, birth_date) VALUES ` + strings.Join(pvals, ", ") + ` ON CONFLICT (person_id) DO NOTHING`
		if _, err := tx.ExecContext(ctx, d.rebind(q), pargs...); err != nil {
			return 0, fmt.Errorf("persons: %w", err)
		}
		vals := make([]string, len(batch))
		args := make([]any, 0, len(batch)*len(episodeColumns))
		for i := range batch {
			vals[i] = row
			args = append(args, episodeArgs(&batch[i], digests[start+i], version)...)
		}
		r, err := tx.ExecContext(ctx, d.rebind(insert+strings.Join(vals, ", ")+onConflict), args...)
		if err != nil {
			return 0, err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return 0, err
		}
		changed += int(n)
	}
	return changed, nil
}

// PutEpisodes stores episodes atomically; see bildrum.RegisterStore.
func (d *DB) PutEpisodes(ctx context.Context, episodes []bildrum.ScreeningEpisode) (bildrum.PutResult, error) {
	return d.PutEpisodeStream(ctx, func(yield func(bildrum.ScreeningEpisode, error) bool) {
		for _, e := range episodes {
			if !yield(e, nil) {
				return
			}
		}
	})
}

// streamChunk is how many episodes PutEpisodeStream writes at once; it
// holds at most streamBuffers chunks in memory.
const (
	streamChunk   = 2000
	streamBuffers = 3
)

// analyzeAfter is how many changed episodes make an import on PostgreSQL
// refresh the planner's statistics before it commits, rather than leave
// them to autovacuum's next round.
const analyzeAfter = 10000

// episodeChunk is a run of checked episodes with their digests, or the
// error that ended the stream.
type episodeChunk struct {
	episodes []bildrum.ScreeningEpisode
	digests  []string
	err      error
}

// PutEpisodeStream stores a sequence of episodes in one transaction; see
// bildrum.RegisterStore. It also brings the stored screening counts up to
// date (recount) when the import touches few enough women.
//
// Reading, checking and digesting the episodes (the caller's parsing and
// validation included) runs in a goroutine of its own, a few chunks ahead
// of the database writes, so that the two share the machine's cores; the
// sequence is never run after PutEpisodeStream returns.
func (d *DB) PutEpisodeStream(ctx context.Context, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) (bildrum.PutResult, error) {
	var res bildrum.PutResult
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("put episodes: %w", err)
	}
	defer tx.Rollback()

	var version int64
	// Taking the version row first serialises writers in both engines.
	if err := tx.QueryRowContext(ctx, `UPDATE register_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&version); err != nil {
		return res, fmt.Errorf("put episodes: next version: %w", err)
	}
	var empty bool
	if err := tx.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM episodes)`).Scan(&empty); err != nil {
		return res, fmt.Errorf("put episodes: %w", err)
	}
	recount, err := d.startRecount(ctx, tx, version, empty)
	if err != nil {
		return res, fmt.Errorf("put episodes: %w", err)
	}
	rebuild, err := d.dropIndexesWhenEmpty(ctx, tx, empty)
	if err != nil {
		return res, fmt.Errorf("put episodes: %w", err)
	}

	full, free, stop := make(chan *episodeChunk, streamBuffers), make(chan *episodeChunk, streamBuffers), make(chan struct{})
	for range streamBuffers {
		free <- &episodeChunk{episodes: make([]bildrum.ScreeningEpisode, 0, streamChunk), digests: make([]string, 0, streamChunk)}
	}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		defer close(full)
		produceChunks(episodes, full, free, stop)
	}()
	defer func() {
		close(stop)
		<-produced
	}()

	total := 0
	for c := range full {
		if c.err != nil {
			return bildrum.PutResult{}, c.err
		}
		if err := ctx.Err(); err != nil {
			return bildrum.PutResult{}, fmt.Errorf("put episodes: %w", err)
		}
		changed, err := 0, recount.touch(ctx, tx, c.episodes)
		if err == nil {
			changed, err = d.upsertEpisodes(ctx, tx, c.episodes, c.digests, version)
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				// Cancelled mid-statement; PostgreSQL's driver then
				// reports only a closed connection.
				err = ctxErr
			}
			return bildrum.PutResult{}, fmt.Errorf("put episodes: %w", err)
		}
		res.Changed += changed
		total += len(c.episodes)
		c.episodes, c.digests = c.episodes[:0], c.digests[:0]
		free <- c
	}
	if err := ctx.Err(); err != nil {
		return bildrum.PutResult{}, fmt.Errorf("put episodes: %w", err)
	}
	res.Unchanged = total - res.Changed
	if res.Changed == 0 {
		// Nothing changed: the version must not move, so roll back.
		return res, nil
	}
	for _, create := range rebuild {
		if _, err := tx.ExecContext(ctx, create); err != nil {
			return bildrum.PutResult{}, fmt.Errorf("put episodes: rebuild index: %w", err)
		}
	}
	if d.dialect == postgresDialect && res.Changed >= analyzeAfter {
		// Fresh statistics, in this transaction already: planned on the
		// empty table's, lookups by woman (recount) scan every episode.
		if _, err := tx.ExecContext(ctx, `ANALYZE persons, episodes`); err != nil {
			return bildrum.PutResult{}, fmt.Errorf("put episodes: analyze: %w", err)
		}
	}
	if err := recount.finish(ctx, tx, version); err != nil {
		return bildrum.PutResult{}, fmt.Errorf("put episodes: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE register_version SET updated_at = ? WHERE id = 1`), d.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return bildrum.PutResult{}, fmt.Errorf("put episodes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return bildrum.PutResult{}, fmt.Errorf("put episodes: commit: %w", err)
	}
	return res, nil
}

// produceChunks runs episodes, checks and digests each, and sends them in
// chunks, taken from free, to full; a chunk with an error ends the stream.
// It stops early, without sending more, once stop is closed.
func produceChunks(episodes iter.Seq2[bildrum.ScreeningEpisode, error], full, free chan *episodeChunk, stop <-chan struct{}) {
	var c *episodeChunk
	take := func() bool {
		select {
		case c = <-free:
			return true
		case <-stop:
			return false
		}
	}
	send := func() bool {
		select {
		case full <- c:
			c = nil
			return true
		case <-stop:
			return false
		}
	}
	fail := func(err error) {
		if c == nil && !take() {
			return
		}
		c.err = err
		send()
	}
	for e, err := range episodes {
		if err == nil {
			err = checkEpisode(&e)
		}
		var dg string
		if err == nil {
			if dg, err = digestOf(&e); err != nil {
				err = fmt.Errorf("put episodes: %w", err)
			}
		}
		if err != nil {
			fail(err)
			return
		}
		if c == nil && !take() {
			return
		}
		c.episodes, c.digests = append(c.episodes, e), append(c.digests, dg)
		if len(c.episodes) == streamChunk && !send() {
			return
		}
	}
	if c != nil && len(c.episodes) > 0 {
		send()
	}
}

// RegisterSummary counts the region's women, invitations and examinations.
func (d *DB) RegisterSummary(ctx context.Context) (bildrum.RegisterSummary, error) {
	var s bildrum.RegisterSummary
	var updated string
	var region *string
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return s, fmt.Errorf("register summary: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT version, updated_at FROM register_version WHERE id = 1`).Scan(&s.DataVersion, &updated); err != nil {
		return s, fmt.Errorf("register summary: %w", err)
	}
	err = tx.QueryRowContext(ctx, `
		SELECT MIN(region), COUNT(DISTINCT person_id), COUNT(*),
			COALESCE(SUM(CASE WHEN attended THEN 1 ELSE 0 END), 0), MIN(exam_date), MAX(exam_date)
		FROM episodes`).Scan(&region, &s.Women, &s.Invitations, &s.Exams, &s.FirstExam, &s.LastExam)
	if err != nil {
		return s, fmt.Errorf("register summary: %w", err)
	}
	if region != nil {
		s.Region = *region
	}
	var t nullTime
	if err := t.Scan(updated); err != nil {
		return s, fmt.Errorf("register summary: %w", err)
	}
	s.UpdatedAt = t.t
	return s, tx.Commit()
}

// maxListLimit caps one page of ListEpisodes.
const maxListLimit = 1000

// ListEpisodes returns a page of episodes matching f and the number of matches.
func (d *DB) ListEpisodes(ctx context.Context, f bildrum.EpisodeFilter) ([]bildrum.ScreeningEpisode, int, error) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "episode_date >= ?"), append(args, f.From)
	}
	if !f.To.IsZero() {
		where, args = append(where, "episode_date <= ?"), append(args, f.To)
	}
	if f.Unit != "" {
		where, args = append(where, "unit = ?"), append(args, f.Unit)
	}
	if f.Outcome != "" {
		where, args = append(where, "outcome = ?"), append(args, string(f.Outcome))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := d.db.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM episodes`+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list episodes: %w", err)
	}
	limit := f.Limit
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	q := `SELECT ` + strings.Join(episodeColumns[:30], ", ") + ` FROM episodes` + cond +
		` ORDER BY episode_date, id LIMIT ? OFFSET ?`
	rows, err := d.db.QueryContext(ctx, d.rebind(q), append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list episodes: %w", err)
	}
	defer rows.Close()
	var out []bildrum.ScreeningEpisode
	for rows.Next() {
		var e bildrum.ScreeningEpisode
		var person, views, r1, r2, cons, dens, ab, outcome, detection string
		if err := rows.Scan(&e.ID, &person, &e.Region, &e.Unit, &e.Round, &e.Invited, &e.Attended, &e.Examined,
			&e.TechnicalRepeat, &views, &r1, &r2, &cons, &dens,
			&e.Recalled, &e.ResultDay, &e.Assessed, &e.AdditionalImaging, &e.Ultrasound, &e.NeedleBiopsy,
			&e.OpenBiopsy, &ab, &outcome, &detection, &e.Diagnosed, &e.TumourSizeMM,
			&e.NodalStatus, &e.Stage, &e.PreopDiagnosis, &e.IntervalMonths); err != nil {
			return nil, 0, fmt.Errorf("list episodes: %w", err)
		}
		e.Person = bildrum.PersonID(person)
		if views != "" {
			e.Views = strings.Split(views, "+")
		}
		e.Reader1, e.Reader2, e.Consensus = bildrum.BIRADS(r1), bildrum.BIRADS(r2), bildrum.BIRADS(cons)
		e.Density, e.AssessmentBIRADS = bildrum.Density(dens), bildrum.BIRADS(ab)
		e.Outcome, e.Detection = bildrum.Outcome(outcome), bildrum.Detection(detection)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list episodes: %w", err)
	}
	return out, total, nil
}

// dropIndexesWhenEmpty speeds up the first load of a register on SQLite:
// when the episodes table is empty (as tx read it), it drops the table's secondary indexes
// inside tx and returns the statements that create them again, which the
// caller runs before committing. Building an index once from all rows
// (a sort) costs far less than keeping it up to date row by row. Readers
// keep seeing the indexed, empty table until the commit; a rollback
// restores the indexes with everything else. It returns nothing to do on
// PostgreSQL or when the table has rows, where incremental upkeep is the
// cheaper way.
func (d *DB) dropIndexesWhenEmpty(ctx context.Context, tx *sql.Tx, empty bool) ([]string, error) {
	if d.dialect != sqliteDialect || !empty {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'episodes' AND sql IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	var names, creates []string
	for rows.Next() {
		var name, create string
		if err := rows.Scan(&name, &create); err != nil {
			rows.Close()
			return nil, err
		}
		names, creates = append(names, name), append(creates, create)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+strings.ReplaceAll(name, `"`, `""`)+`"`); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return creates, nil
}
