// Package sqlstore implements bildrum's stores on database/sql, for SQLite
// (modernc.org/sqlite, the embedded default, in WAL mode) and PostgreSQL
// (pgx). The DSN decides the engine. Each part of the federation has its own
// database: a node's holds its region's register, the hub's its directory of
// nodes; both hold the bearer credentials the part accepts.
//
// Schemas are numbered, embedded SQL files per dialect and part, applied in a
// transaction and recorded in schema_migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

// Part names a part of the federation whose schema a database holds.
type Part string

// The parts with a database of their own.
const (
	PartHub  Part = "hub"
	PartNode Part = "node"
)

// dialect is the SQL engine behind a DB.
type dialect string

const (
	sqliteDialect   dialect = "sqlite"
	postgresDialect dialect = "postgres"
)

// DB is an open bildrum database of one part. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect dialect
	part    Part
	where   string // the file or host, for messages; never a password
	stmts   stmtCache
	writer  indexWriter // the archive's group commit's, on SQLite
	access  accessCovers

	// Now is the clock used for timestamps; tests replace it.
	Now func() time.Time
}

// Open opens (creating when needed) the database named by dsn for part,
// applies pending migrations, and checks that the database belongs to that
// part. A dsn starting with postgres:// or postgresql:// selects PostgreSQL;
// anything else is a SQLite file path (optionally prefixed by sqlite:).
func Open(ctx context.Context, dsn string, part Part) (*DB, error) {
	d := &DB{part: part, Now: time.Now}
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d.dialect = postgresDialect
		d.where = redact(dsn)
		d.db, err = sql.Open("pgx", dsn)
	default:
		d.dialect = sqliteDialect
		path := strings.TrimPrefix(dsn, "sqlite:")
		d.where = path
		if path == "" {
			return nil, bildrum.Errorf(bildrum.EINVALID, "empty database path: give a file path or a postgres:// URL")
		}
		if dir := filepath.Dir(path); dir != "" {
			if _, statErr := os.Stat(dir); statErr != nil {
				return nil, bildrum.Errorf(bildrum.EINVALID, "database directory %s does not exist: create it or choose another data directory", dir)
			}
		}
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "cache_size(-65536)") // 64 MiB: a large import keeps its pages in memory until commit
		q.Add("_pragma", "temp_store(MEMORY)")
		q.Set("_txlock", "immediate") // writers queue on busy_timeout instead of failing on lock upgrade
		d.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d.where, err)
	}
	if err := d.init(ctx); err != nil {
		d.db.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error {
	d.access.wait()
	d.writer.close()
	d.stmts.close()
	return d.db.Close()
}

// Dialect returns "sqlite" or "postgres".
func (d *DB) Dialect() string { return string(d.dialect) }

func (d *DB) init(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return d.openError(err)
	}
	if d.dialect == sqliteDialect {
		var res string
		if err := d.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
			return d.openError(err)
		} else if res != "ok" {
			return d.openError(fmt.Errorf("quick_check: %s", res))
		}
	}
	if err := d.migrate(ctx); err != nil {
		return d.openError(err)
	}
	return nil
}

// openError turns a failure to open into a message that says what to do.
func (d *DB) openError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return bildrum.Errorf(bildrum.EINVALID, "database %s is corrupt or not a bildrum database: move it away (or delete it to rebuild demo data) and start again", d.where)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return bildrum.Errorf(bildrum.EINVALID, "cannot open database %s for writing: check that the directory exists and is writable", d.where)
		}
	}
	var be *bildrum.Error
	if errors.As(err, &be) {
		return err
	}
	return fmt.Errorf("open database %s: %w", d.where, err)
}

// migrate applies the part's pending migrations in one transaction each and
// records them. The first migration of every part writes its name into
// bildrum_meta, so a hub database is never opened as a node's or the reverse.
func (d *DB) migrate(ctx context.Context) error {
	// A database of another part is refused before anything is applied to it.
	var existing string
	if err := d.db.QueryRowContext(ctx, `SELECT value FROM bildrum_meta WHERE key = 'part'`).Scan(&existing); err == nil && existing != string(d.part) {
		return bildrum.Errorf(bildrum.EINVALID, "database %s belongs to a %s, not a %s: give each part its own database", d.where, existing, d.part)
	}
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
	if _, err := d.db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	dir := fmt.Sprintf("migrations/%s/%s", d.dialect, d.part)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("read migrations %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		if err := d.applyMigration(ctx, dir, name, version); err != nil {
			return err
		}
	}
	var part string
	err = d.db.QueryRowContext(ctx, `SELECT value FROM bildrum_meta WHERE key = 'part'`).Scan(&part)
	if err != nil {
		return fmt.Errorf("read part of database: %w", err)
	}
	if part != string(d.part) {
		return bildrum.Errorf(bildrum.EINVALID, "database %s belongs to a %s, not a %s: give each part its own database", d.where, part, d.part)
	}
	return nil
}

func (d *DB) applyMigration(ctx context.Context, dir, name string, version int) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	defer tx.Rollback()
	if d.dialect == postgresDialect {
		// Serialise concurrent starts of processes sharing one database.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7411)`); err != nil {
			return fmt.Errorf("migration %s: lock: %w", name, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	} else if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(dir + "/" + name)
	if err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		version, name, d.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("migration %s: record: %w", name, err)
	}
	return tx.Commit()
}

// rebind turns ? placeholders into PostgreSQL's $1, $2 … .
func (d *DB) rebind(query string) string {
	if d.dialect != postgresDialect {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// redact removes a password from a database URL for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres database"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}
