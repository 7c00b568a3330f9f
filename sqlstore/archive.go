package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

var _ bildrum.ImageIndex = (*DB)(nil)

// PutInstances indexes instances in one transaction; see bildrum.ImageIndex.
func (d *DB) PutInstances(ctx context.Context, instances []bildrum.Instance) ([]error, error) {
	return d.putInstances(ctx, d.db.BeginTx, instances, nil)
}

// PutInstancesGated is the archive's group commit's way to index: it is
// PutInstances, except that
//
//   - it calls gate, when not nil, after the instances' statements and
//     before the commit. When gate returns more instances, it indexes them
//     in the same transaction and calls gate again; it commits when gate
//     returns none, and when gate returns an error it rolls back and
//     returns that error. The committer waits there for the instances'
//     objects to become durable, their syncs running while the statements
//     do, and adds the batches that arrived meanwhile; the index entries
//     still reach the disk only after the objects. errs holds one result
//     per instance: those of instances, then those of each return of gate
//     in turn.
//   - on SQLite, the commit does not wait for the disk: when it returns nil,
//     the instances are committed (readers see them), and they are durable
//     once sync returns nil. The next transaction can run meanwhile, so
//     that the disk's wait of one round of the committer overlaps the work
//     of the next (see indexWriter). On PostgreSQL the commit is durable and
//     sync returns nil at once.
//
// When sync fails, the instances may or may not survive a crash; it fails
// from then on, as a failed fsync may have lost writes that a later one
// would not report.
func (d *DB) PutInstancesGated(ctx context.Context, instances []bildrum.Instance, gate func() (more []bildrum.Instance, err error)) (errs []error, sync func() error, err error) {
	if d.dialect != sqliteDialect {
		errs, err := d.putInstances(ctx, d.db.BeginTx, instances, gate)
		return errs, func() error { return nil }, err
	}
	return d.writer.put(ctx, d, instances, gate)
}

// putInstances indexes instances, and those gate adds, in one transaction
// started by begin, committing it when gate, if not nil, returns neither
// more instances nor an error.
func (d *DB) putInstances(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), instances []bildrum.Instance, gate func() ([]bildrum.Instance, error)) ([]error, error) {
	tx, err := begin(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("put instances: %w", err)
	}
	defer tx.Rollback()
	if d.dialect == postgresDialect {
		// One writer at a time, as SQLite has it: the checks below then
		// see every committed instance, study and series.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7412)`); err != nil {
			return nil, fmt.Errorf("put instances: lock: %w", err)
		}
	}
	txs := &txStmts{d: d, tx: tx}
	defer txs.close()
	var results []error
	for {
		for i := range instances {
			err := d.putInstance(ctx, txs, &instances[i])
			if code := bildrum.ErrorCode(err); err != nil && code != bildrum.ECONFLICT && code != bildrum.EINVALID {
				return nil, fmt.Errorf("put instance %s: %w", instances[i].SOPInstanceUID, err)
			}
			results = append(results, err)
		}
		if gate == nil {
			break
		}
		more, err := gate()
		if err != nil {
			return nil, fmt.Errorf("put instances: %w", err)
		}
		if len(more) == 0 {
			break
		}
		instances = more
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("put instances: commit: %w", err)
	}
	if results == nil {
		results = []error{}
	}
	return results, nil
}

// putInstance checks and inserts one instance inside tx. Domain errors
// (ECONFLICT, EINVALID) are returned before anything is written.
func (d *DB) putInstance(ctx context.Context, tx *txStmts, in *bildrum.Instance) error {
	st, se := &in.Study, &in.Series
	if in.SOPInstanceUID == "" || st.StudyInstanceUID == "" || se.SeriesInstanceUID == "" {
		return bildrum.Errorf(bildrum.EINVALID, "instance %q has no SOP Instance, Study Instance or Series Instance UID", in.SOPInstanceUID)
	}
	// What the index holds of the instance, its study and its series, in
	// one statement: each costs more than the rows it reads.
	var sum, patientID, mods sql.NullString
	var studyRow, seriesRow, seriesStudy sql.NullInt64
	err := tx.queryRow(ctx, `
		SELECT (SELECT sha256 FROM archive_instances WHERE sop_uid = ?), st.id, st.patient_id, st.modalities, se.id, se.study
		FROM (SELECT 1 AS one) AS one
		LEFT JOIN archive_studies st ON st.study_uid = ?
		LEFT JOIN archive_series se ON se.series_uid = ?`,
		in.SOPInstanceUID, st.StudyInstanceUID, se.SeriesInstanceUID,
	).Scan(&sum, &studyRow, &patientID, &mods, &seriesRow, &seriesStudy)
	if err != nil {
		return err
	}
	switch {
	case sum.Valid && sum.String == in.Object.SHA256:
		return nil // stored before, byte for byte: idempotent
	case sum.Valid:
		return bildrum.Errorf(bildrum.ECONFLICT, "SOP Instance %s is already stored with other content (SHA-256 %.12s…, this one %.12s…): a changed instance needs a new SOP Instance UID", in.SOPInstanceUID, sum.String, in.Object.SHA256)
	}
	studyID, newStudy := studyRow.Int64, !studyRow.Valid
	if !newStudy && patientID.String != st.Patient.ID {
		return bildrum.Errorf(bildrum.ECONFLICT, "study %s is stored for patient ID %q, not %q: correct the Patient ID or the Study Instance UID", st.StudyInstanceUID, patientID.String, st.Patient.ID)
	}
	seriesID, newSeries := seriesRow.Int64, !seriesRow.Valid
	if !newSeries && (newStudy || seriesStudy.Int64 != studyID) {
		return bildrum.Errorf(bildrum.ECONFLICT, "series %s belongs to another study than %s", se.SeriesInstanceUID, st.StudyInstanceUID)
	}

	// The study's and series' rows are inserted with their counts
	// including this instance, or their counts updated: the fewest
	// statements, as each costs more than the row it writes. A new study
	// always has a new series (an existing series belongs to another
	// study, refused above).
	switch {
	case newStudy:
		err = tx.queryRow(ctx, `
			INSERT INTO archive_studies (study_uid, patient_id, patient_name, patient_name_key, patient_birth_date, patient_sex,
				study_date, study_time, accession_number, study_id, study_description, referring_physician, referring_key,
				modalities, num_series, num_instances)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1) RETURNING id`,
			st.StudyInstanceUID, st.Patient.ID, st.Patient.Name, nameKey(st.Patient.Name), st.Patient.BirthDate, st.Patient.Sex,
			st.StudyDate, st.StudyTime, st.AccessionNumber, st.StudyID, st.StudyDescription, st.ReferringPhysicianName, nameKey(st.ReferringPhysicianName),
			addModality("", se.Modality),
		).Scan(&studyID)
		if err != nil {
			return fmt.Errorf("insert study: %w", err)
		}
	case newSeries:
		if _, err := tx.exec(ctx, `UPDATE archive_studies SET num_series = num_series + 1, num_instances = num_instances + 1, modalities = ? WHERE id = ?`,
			addModality(mods.String, se.Modality), studyID); err != nil {
			return fmt.Errorf("update study: %w", err)
		}
	default:
		if _, err := tx.exec(ctx, `UPDATE archive_series SET num_instances = num_instances + 1 WHERE id = ?`, seriesID); err != nil {
			return fmt.Errorf("update series: %w", err)
		}
		if _, err := tx.exec(ctx, `UPDATE archive_studies SET num_instances = num_instances + 1 WHERE id = ?`, studyID); err != nil {
			return fmt.Errorf("update study: %w", err)
		}
	}
	if newSeries {
		err = tx.queryRow(ctx, `
			INSERT INTO archive_series (study, series_uid, modality, series_number, series_description, body_part, num_instances)
			VALUES (?, ?, ?, ?, ?, ?, 1) RETURNING id`,
			studyID, se.SeriesInstanceUID, se.Modality, se.SeriesNumber, se.SeriesDescription, se.BodyPartExamined,
		).Scan(&seriesID)
		if err != nil {
			return fmt.Errorf("insert series: %w", err)
		}
	}
	received := in.Object.Received
	if received.IsZero() {
		received = d.Now()
	}
	if _, err := tx.exec(ctx, `
		INSERT INTO archive_instances (series, study, sop_uid, sop_class_uid, instance_number, n_rows, n_columns, bits_allocated,
			number_of_frames, image_laterality, view_position, transfer_syntax, blob_key, size, sha256, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seriesID, studyID, in.SOPInstanceUID, in.SOPClassUID, in.InstanceNumber, in.Rows, in.Columns, in.BitsAllocated,
		in.NumberOfFrames, in.ImageLaterality, in.ViewPosition, in.TransferSyntaxUID, in.Object.Key, in.Object.Size, in.Object.SHA256,
		received.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("insert instance: %w", err)
	}
	if in.Object.Data != nil {
		if _, err := tx.exec(ctx, `INSERT INTO archive_held_objects (blob_key, data) VALUES (?, ?) ON CONFLICT (blob_key) DO NOTHING`,
			in.Object.Key, in.Object.Data); err != nil {
			return fmt.Errorf("hold object: %w", err)
		}
	}
	return nil
}

// HeldObjects calls fn with the key and bytes of every object the index
// holds (bildrum.Object.Data) that ReleaseHeldObjects has not released:
// the archive moves them into its blob store when it starts, after a crash
// left some. The rows are read first, so fn may write to the database.
func (d *DB) HeldObjects(ctx context.Context, fn func(key string, data []byte) error) error {
	rows, err := d.db.QueryContext(ctx, `SELECT blob_key, data FROM archive_held_objects ORDER BY blob_key`)
	if err != nil {
		return fmt.Errorf("held objects: %w", err)
	}
	type held struct {
		key  string
		data []byte
	}
	var all []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.key, &h.data); err != nil {
			rows.Close()
			return fmt.Errorf("held objects: %w", err)
		}
		all = append(all, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("held objects: %w", err)
	}
	for _, h := range all {
		if err := fn(h.key, h.data); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseHeldObjects forgets the held bytes of the objects with keys,
// which the blob store now keeps durably; keys the index does not hold are
// ignored. The release need not be durable: bytes it loses in a crash are
// moved again, to the same content-addressed keys.
func (d *DB) ReleaseHeldObjects(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 500)
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		q := d.rebind(`DELETE FROM archive_held_objects WHERE blob_key IN (` + placeholders(n) + `)`)
		var err error
		if d.dialect == sqliteDialect {
			err = d.writer.execLazily(ctx, d, q, args...)
		} else {
			_, err = d.db.ExecContext(ctx, q, args...)
		}
		if err != nil {
			return fmt.Errorf("release held objects: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

// txStmts binds the statements of a transaction to it once, on first use,
// and reuses them: a group commit indexes many instances with the same few
// statements. The statements come from the DB's cache (DB.prepared), so
// that each is parsed once per connection, not once per transaction:
// preparing costs SQLite more than executing.
type txStmts struct {
	d     *DB
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *txStmts) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	shared, err := t.d.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	st := t.tx.StmtContext(ctx, shared)
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

// queryRow runs a query of one row; its error comes with Scan.
func (t *txStmts) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (t *txStmts) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *txStmts) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// nameKey is the form of a person name that PN matching compares:
// upper case, so that matching ignores case (PS3.4 C.2.2.2.1).
func nameKey(s string) string { return strings.ToUpper(s) }

// addModality adds m to the sorted, backslash-separated list mods.
func addModality(mods, m string) string {
	if m == "" {
		return mods
	}
	list := splitModalities(mods)
	if slices.Contains(list, m) {
		return mods
	}
	list = append(list, m)
	slices.Sort(list)
	return strings.Join(list, `\`)
}

func splitModalities(mods string) []string {
	if mods == "" {
		return nil
	}
	return strings.Split(mods, `\`)
}

// Columns read back into bildrum types, per table alias.
const (
	studyCols = `st.study_uid, st.patient_id, st.patient_name, st.patient_birth_date, st.patient_sex, st.study_date, st.study_time,
		st.accession_number, st.study_id, st.study_description, st.referring_physician, st.modalities, st.num_series, st.num_instances`
	seriesCols   = `se.series_uid, se.modality, se.series_number, se.series_description, se.body_part, se.num_instances`
	instanceCols = `i.sop_uid, i.sop_class_uid, i.instance_number, i.n_rows, i.n_columns, i.bits_allocated, i.number_of_frames,
		i.image_laterality, i.view_position, i.transfer_syntax, i.blob_key, i.size, i.sha256, i.received_at`
)

func studyDest(s *bildrum.Study, mods *string) []any {
	return []any{&s.StudyInstanceUID, &s.Patient.ID, &s.Patient.Name, &s.Patient.BirthDate, &s.Patient.Sex, &s.StudyDate, &s.StudyTime,
		&s.AccessionNumber, &s.StudyID, &s.StudyDescription, &s.ReferringPhysicianName, mods, &s.NumberOfSeries, &s.NumberOfInstances}
}

func seriesDest(s *bildrum.Series) []any {
	return []any{&s.SeriesInstanceUID, &s.Modality, &s.SeriesNumber, &s.SeriesDescription, &s.BodyPartExamined, &s.NumberOfInstances}
}

func instanceDest(in *bildrum.Instance, received *string) []any {
	return []any{&in.SOPInstanceUID, &in.SOPClassUID, &in.InstanceNumber, &in.Rows, &in.Columns, &in.BitsAllocated, &in.NumberOfFrames,
		&in.ImageLaterality, &in.ViewPosition, &in.TransferSyntaxUID, &in.Object.Key, &in.Object.Size, &in.Object.SHA256, received}
}

const instanceJoin = ` FROM archive_instances i JOIN archive_series se ON se.id = i.series JOIN archive_studies st ON st.id = i.study`

// scanInstance reads a row of studyCols, seriesCols, instanceCols.
func scanInstance(rows *sql.Rows) (bildrum.Instance, error) {
	var in bildrum.Instance
	var mods, received string
	dest := append(studyDest(&in.Study, &mods), seriesDest(&in.Series)...)
	if err := rows.Scan(append(dest, instanceDest(&in, &received)...)...); err != nil {
		return in, err
	}
	in.Study.ModalitiesInStudy = splitModalities(mods)
	t, err := time.Parse(time.RFC3339Nano, received)
	if err != nil {
		return in, fmt.Errorf("received_at %q: %w", received, err)
	}
	in.Object.Received = t
	return in, nil
}

// Instance returns the indexed instance with the SOP Instance UID.
func (d *DB) Instance(ctx context.Context, sopInstanceUID string) (bildrum.Instance, error) {
	st, err := d.prepared(ctx, `SELECT `+studyCols+`, `+seriesCols+`, `+instanceCols+instanceJoin+` WHERE i.sop_uid = ?`)
	if err != nil {
		return bildrum.Instance{}, fmt.Errorf("instance %s: %w", sopInstanceUID, err)
	}
	rows, err := st.QueryContext(ctx, sopInstanceUID)
	if err != nil {
		return bildrum.Instance{}, fmt.Errorf("instance %s: %w", sopInstanceUID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return bildrum.Instance{}, fmt.Errorf("instance %s: %w", sopInstanceUID, err)
		}
		return bildrum.Instance{}, bildrum.Errorf(bildrum.ENOTFOUND, "no instance with SOP Instance UID %s is stored here", sopInstanceUID)
	}
	in, err := scanInstance(rows)
	if err != nil {
		return in, fmt.Errorf("instance %s: %w", sopInstanceUID, err)
	}
	return in, nil
}

// Instances returns the instances of a study or of one of its series.
func (d *DB) Instances(ctx context.Context, studyUID, seriesUID string) ([]bildrum.Instance, error) {
	q := `SELECT ` + studyCols + `, ` + seriesCols + `, ` + instanceCols + instanceJoin + ` WHERE st.study_uid = ?`
	args := []any{studyUID}
	if seriesUID != "" {
		q += ` AND se.series_uid = ?`
		args = append(args, seriesUID)
	}
	rows, err := d.db.QueryContext(ctx, d.rebind(q+` ORDER BY se.id, i.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("instances of %s: %w", studyUID, err)
	}
	defer rows.Close()
	var out []bildrum.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("instances of %s: %w", studyUID, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("instances of %s: %w", studyUID, err)
	}
	if len(out) == 0 {
		if seriesUID != "" {
			return nil, bildrum.Errorf(bildrum.ENOTFOUND, "no series %s of study %s is stored here", seriesUID, studyUID)
		}
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "no study %s is stored here", studyUID)
	}
	return out, nil
}

// ObjectReferenced reports whether an indexed instance refers to the blob key.
func (d *DB) ObjectReferenced(ctx context.Context, key string) (bool, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM archive_instances WHERE blob_key = ?`), key).Scan(&n); err != nil {
		return false, fmt.Errorf("object referenced %s: %w", key, err)
	}
	return n > 0, nil
}

// queryBuilder collects the conditions of a search.
type queryBuilder struct {
	d     *DB
	where []string
	args  []any
}

func (b *queryBuilder) add(cond string, args ...any) {
	b.where = append(b.where, cond)
	b.args = append(b.args, args...)
}

// match adds PS3.4 C.2.2.2 single value or wildcard matching of col.
func (b *queryBuilder) match(col, value string) {
	switch {
	case value == "" || strings.Trim(value, "*") == "":
		// Universal matching.
	case !strings.ContainsAny(value, "*?"):
		b.add(col+" = ?", value)
	case b.d.dialect == sqliteDialect:
		// GLOB is case-sensitive; [ is its only other special character.
		// A literal prefix also becomes a range, which the column's index
		// serves whatever the planner makes of GLOB with a parameter.
		if prefix := value[:strings.IndexAny(value, "*?")]; prefix != "" {
			b.add(col+" >= ? AND "+col+" < ?", prefix, prefix+"\U0010FFFF")
		}
		b.add(col+" GLOB ?", strings.ReplaceAll(value, "[", "[[]"))
	default:
		r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`, `*`, `%`, `?`, `_`)
		b.add(col+` LIKE ? ESCAPE '\'`, r.Replace(value))
	}
}

// in adds list matching of col (PS3.4 C.2.2.2.2).
func (b *queryBuilder) in(col string, values []string) {
	if len(values) == 0 {
		return
	}
	if len(values) == 1 {
		b.add(col+" = ?", values[0])
		return
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	b.add(col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")+")", args...)
}

// between adds range matching of col (PS3.4 C.2.2.2.5).
func (b *queryBuilder) between(col string, r bildrum.Range) {
	switch {
	case r.IsZero():
	case r.From == r.To:
		b.add(col+" = ?", r.From)
	case r.From == "":
		b.add(col+" <> '' AND "+col+" <= ?", r.To)
	case r.To == "":
		b.add(col+" >= ?", r.From)
	default:
		b.add(col+" BETWEEN ? AND ?", r.From, r.To)
	}
}

// studyConds adds the study and patient keys of q, on alias st.
func (b *queryBuilder) studyConds(q *bildrum.ImageQuery) {
	b.match("st.patient_id", q.PatientID)
	b.match("st.patient_name_key", nameKey(q.PatientName))
	b.between("st.patient_birth_date", q.PatientBirthDate)
	b.in("st.study_uid", q.StudyInstanceUIDs)
	b.between("st.study_date", q.StudyDate)
	b.between("st.study_time", q.StudyTime)
	b.match("st.accession_number", q.AccessionNumber)
	b.match("st.study_id", q.StudyID)
	b.match("st.study_description", q.StudyDescription)
	b.match("st.referring_key", nameKey(q.ReferringPhysicianName))
	if len(q.ModalitiesInStudy) > 0 {
		sub := &queryBuilder{d: b.d}
		sub.in("m.modality", q.ModalitiesInStudy)
		// EXISTS, not IN: the study's other keys usually narrow it down
		// first, and then each study costs one index probe.
		b.add("EXISTS (SELECT 1 FROM archive_series m WHERE m.study = st.id AND "+strings.Join(sub.where, " AND ")+")", sub.args...)
	}
}

// seriesConds adds the series keys of q, on alias se.
func (b *queryBuilder) seriesConds(q *bildrum.ImageQuery) {
	b.in("se.series_uid", q.SeriesInstanceUIDs)
	b.in("se.modality", q.Modalities)
	b.match("se.series_number", q.SeriesNumber)
}

// instanceConds adds the instance keys of q, on alias i.
func (b *queryBuilder) instanceConds(q *bildrum.ImageQuery) {
	b.in("i.sop_uid", q.SOPInstanceUIDs)
	b.in("i.sop_class_uid", q.SOPClassUIDs)
	b.match("i.instance_number", q.InstanceNumber)
}

func (b *queryBuilder) sql() string {
	if len(b.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.where, " AND ")
}

// page returns the LIMIT and OFFSET of q, asking one row more than the
// limit to learn whether more matches exist.
func page(q *bildrum.ImageQuery) (string, []any) {
	limit := q.Limit
	if limit <= 0 || limit > bildrum.MaxQueryLimit {
		limit = bildrum.MaxQueryLimit
	}
	return ` LIMIT ? OFFSET ?`, []any{limit + 1, max(q.Offset, 0)}
}

func trimPage[T any](out []T, q *bildrum.ImageQuery) ([]T, bool) {
	limit := q.Limit
	if limit <= 0 || limit > bildrum.MaxQueryLimit {
		limit = bildrum.MaxQueryLimit
	}
	if len(out) > limit {
		return out[:limit], true
	}
	return out, false
}

func hasSeriesKeys(q *bildrum.ImageQuery) bool {
	return len(q.SeriesInstanceUIDs) > 0 || len(q.Modalities) > 0 || strings.Trim(q.SeriesNumber, "*") != ""
}

func hasInstanceKeys(q *bildrum.ImageQuery) bool {
	return len(q.SOPInstanceUIDs) > 0 || len(q.SOPClassUIDs) > 0 || strings.Trim(q.InstanceNumber, "*") != ""
}

// SearchStudies returns the studies matching q.
func (d *DB) SearchStudies(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.Study, bool, error) {
	b := &queryBuilder{d: d}
	b.studyConds(&q)
	if hasSeriesKeys(&q) {
		sub := &queryBuilder{d: d}
		sub.seriesConds(&q)
		b.add("EXISTS (SELECT 1 FROM archive_series se WHERE se.study = st.id AND "+strings.Join(sub.where, " AND ")+")", sub.args...)
	}
	if hasInstanceKeys(&q) {
		sub := &queryBuilder{d: d}
		sub.instanceConds(&q)
		b.add("EXISTS (SELECT 1 FROM archive_instances i WHERE i.study = st.id AND "+strings.Join(sub.where, " AND ")+")", sub.args...)
	}
	limit, largs := page(&q)
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT `+studyCols+` FROM archive_studies st`+b.sql()+` ORDER BY st.id`+limit), append(b.args, largs...)...)
	if err != nil {
		return nil, false, fmt.Errorf("search studies: %w", err)
	}
	defer rows.Close()
	var out []bildrum.Study
	for rows.Next() {
		var s bildrum.Study
		var mods string
		if err := rows.Scan(studyDest(&s, &mods)...); err != nil {
			return nil, false, fmt.Errorf("search studies: %w", err)
		}
		s.ModalitiesInStudy = splitModalities(mods)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search studies: %w", err)
	}
	out, more := trimPage(out, &q)
	return out, more, nil
}

// SearchSeries returns the series matching q, with their studies.
func (d *DB) SearchSeries(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.SeriesMatch, bool, error) {
	b := &queryBuilder{d: d}
	b.studyConds(&q)
	b.seriesConds(&q)
	if hasInstanceKeys(&q) {
		sub := &queryBuilder{d: d}
		sub.instanceConds(&q)
		b.add("EXISTS (SELECT 1 FROM archive_instances i WHERE i.series = se.id AND "+strings.Join(sub.where, " AND ")+")", sub.args...)
	}
	limit, largs := page(&q)
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT `+studyCols+`, `+seriesCols+
		` FROM archive_series se JOIN archive_studies st ON st.id = se.study`+b.sql()+` ORDER BY se.id`+limit), append(b.args, largs...)...)
	if err != nil {
		return nil, false, fmt.Errorf("search series: %w", err)
	}
	defer rows.Close()
	var out []bildrum.SeriesMatch
	for rows.Next() {
		var m bildrum.SeriesMatch
		var mods string
		if err := rows.Scan(append(studyDest(&m.Study, &mods), seriesDest(&m.Series)...)...); err != nil {
			return nil, false, fmt.Errorf("search series: %w", err)
		}
		m.Study.ModalitiesInStudy = splitModalities(mods)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search series: %w", err)
	}
	out, more := trimPage(out, &q)
	return out, more, nil
}

// SearchInstances returns the instances matching q, with their series and studies.
func (d *DB) SearchInstances(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.Instance, bool, error) {
	b := &queryBuilder{d: d}
	b.studyConds(&q)
	b.seriesConds(&q)
	b.instanceConds(&q)
	limit, largs := page(&q)
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT `+studyCols+`, `+seriesCols+`, `+instanceCols+instanceJoin+b.sql()+` ORDER BY i.id`+limit),
		append(b.args, largs...)...)
	if err != nil {
		return nil, false, fmt.Errorf("search instances: %w", err)
	}
	defer rows.Close()
	var out []bildrum.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, false, fmt.Errorf("search instances: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search instances: %w", err)
	}
	out, more := trimPage(out, &q)
	return out, more, nil
}
