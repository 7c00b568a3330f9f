package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"sync"

	"github.com/bildrum/bildrum"
)

// indexWriter is the SQLite connection through which the archive's group
// commit indexes instances (DB.PutInstancesGated), and the fsyncs of the
// database's WAL that make its commits durable.
//
// The connection runs with synchronous=NORMAL: its commits write their
// frames to the WAL and return without an fsync, releasing SQLite's write
// lock at once. The fsync comes after, outside the lock (sync): one fsync
// of the WAL file makes every frame written before it started durable, and
// a checkpoint, which copies frames into the database file, fsyncs the WAL
// before and the database file after, so that frames a checkpoint moved
// and a restarted WAL overwrote are durable too. A commit is thus durable
// when an fsync of the WAL that started after it has returned, which is
// what sync waits for; meanwhile the committer runs its next transaction,
// where with synchronous=FULL it would wait for the disk holding the lock.
// Concurrent syncs share fsyncs (walSyncs). Every other connection of the
// DB keeps synchronous=FULL.
type indexWriter struct {
	mu      sync.Mutex // guards the fields; held for a whole transaction
	conn    *sql.Conn  // nil until first use, and after a failure
	durable bool       // conn commits durably itself (no WAL to sync)
	wal     *os.File   // the WAL, for fsyncs
	stale   []*os.File // WAL files replaced since, closed by close
	wals    *walSyncs

	// syncFile fsyncs the WAL; nil means (*os.File).Sync. Tests replace
	// it before the writer's first use.
	syncFile func(*os.File) error
}

// syncer returns the function that makes what the writer has committed so
// far durable: nil-op when its commits are durable themselves, else a wait
// for a shared fsync of the WAL that started after syncer was called. Any
// such fsync serves it, that of a later commit too, so that a caller that
// waits later may find the work done. Called with mu held, right after a
// commit.
func (w *indexWriter) syncer() func() error {
	if w.durable {
		return func() error { return nil }
	}
	wals, wal, syncFile := w.wals, w.wal, w.syncFile
	if syncFile == nil {
		syncFile = (*os.File).Sync
	}
	ticket := wals.ask()
	return func() error { return wals.wait(ticket, func() error { return syncFile(wal) }) }
}

func (w *indexWriter) put(ctx context.Context, d *DB, instances []bildrum.Instance, gate func() ([]bildrum.Instance, error)) ([]error, func() error, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		if err := w.open(ctx, d); err != nil {
			return nil, nil, fmt.Errorf("put instances: %w", err)
		}
	}
	gateFailed := false
	errs, err := d.putInstances(ctx, w.conn.BeginTx, instances, func() ([]bildrum.Instance, error) {
		if gate == nil {
			return nil, nil
		}
		more, err := gate()
		gateFailed = err != nil
		return more, err
	})
	if err != nil {
		if !gateFailed {
			// The connection may be unusable: start afresh next time.
			w.closeLocked()
		}
		return nil, nil, err
	}
	return errs, w.syncer(), nil
}

// execLazily runs a statement through the writer's connection, where its
// commit does not wait for the disk: for changes that need not be durable
// at once, which the next sync of the WAL makes durable.
func (w *indexWriter) execLazily(ctx context.Context, d *DB, query string, args ...any) error {
	_, err := w.exec(ctx, d, query, args...)
	return err
}

// exec runs a statement, in a transaction of its own, through the writer's
// connection, and returns sync, which returns once the change is durable.
// Concurrent callers' syncs share fsyncs of the WAL (walSyncs), and none
// holds SQLite's write lock while it waits for the disk: a group commit for
// small independent writes, such as access events.
func (w *indexWriter) exec(ctx context.Context, d *DB, query string, args ...any) (sync func() error, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		if err := w.open(ctx, d); err != nil {
			return nil, err
		}
	}
	if _, err := w.conn.ExecContext(ctx, query, args...); err != nil {
		w.closeLocked()
		return nil, err
	}
	return w.syncer(), nil
}

// open takes a connection of the pool for the writer and sets it up: with
// synchronous=NORMAL and the WAL open for fsyncs when the database is in
// WAL mode, as Open makes it; as it is (synchronous=FULL) when not. The
// connection never goes back to the pool (discard).
func (w *indexWriter) open(ctx context.Context, d *DB) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		discard(conn)
		return fmt.Errorf("journal mode: %w", err)
	}
	if mode == "wal" {
		// SQLite removes the WAL when the last connection closes, as the
		// writer's may have been: the file open for syncs must be the
		// one there now. One that is not stays open until close, as a
		// sync may be using it.
		f, err := os.Open(d.where + "-wal")
		switch {
		case err != nil:
			if w.wal != nil {
				w.stale = append(w.stale, w.wal)
				w.wal = nil
			}
		case w.wal != nil && sameFile(w.wal, f):
			f.Close()
		default:
			if w.wal != nil {
				w.stale = append(w.stale, w.wal)
			}
			w.wal = f
		}
	}
	if mode != "wal" || w.wal == nil {
		w.conn, w.durable = conn, true // the commits stay durable by themselves
		return nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		discard(conn)
		return fmt.Errorf("synchronous: %w", err)
	}
	w.conn, w.durable = conn, false
	if w.wals == nil {
		w.wals = &walSyncs{}
	}
	return nil
}

// discard closes conn without returning it to the pool, where a
// connection with synchronous=NORMAL must never go.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// closeLocked discards the writer's connection. The WAL file stays open,
// as syncs may still use it; close closes it.
func (w *indexWriter) closeLocked() {
	if w.conn != nil {
		discard(w.conn)
		w.conn = nil
	}
}

// close discards the writer's connection and closes the WAL file.
func (w *indexWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeLocked()
	for _, f := range append(w.stale, w.wal) {
		if f != nil {
			f.Close()
		}
	}
	w.wal, w.stale = nil, nil
}

// sameFile reports whether a and b are open on the same file.
func sameFile(a, b *os.File) bool {
	ai, err := a.Stat()
	if err != nil {
		return false
	}
	bi, err := b.Stat()
	return err == nil && os.SameFile(ai, bi)
}

// failed returns the error of a failed fsync of the WAL, after which no
// commit of the writer can be made durable, or nil.
func (w *indexWriter) failed() error {
	w.mu.Lock()
	wals := w.wals
	w.mu.Unlock()
	if wals == nil {
		return nil
	}
	wals.mu.Lock()
	defer wals.mu.Unlock()
	return wals.err
}

// walSyncs shares fsyncs of the WAL among the commits waiting for one: a
// commit needs an fsync that started after it, and one fsync serves every
// commit made before it started. A failed fsync fails every sync from then
// on: the kernel may have dropped the writes it could not make, and a later
// fsync would not say so.
type walSyncs struct {
	mu      sync.Mutex
	cond    *sync.Cond
	asked   uint64 // syncs asked for so far
	done    uint64 // syncs served by fsyncs that have returned
	running bool   // an fsync is under way
	err     error  // of a failed fsync, for good
}

// sync returns when a call of fsync (of the WAL) that started after the
// call of sync has returned, or with its error.
func (s *walSyncs) sync(fsync func() error) error {
	return s.wait(s.ask(), fsync)
}

// ask asks for a sync without waiting for it: the ticket it returns is
// served by any call of fsync that starts from now on (wait).
func (s *walSyncs) ask() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	return s.asked
}

// wait returns when ticket is served, or with the error of a failed fsync,
// calling fsync itself when none is under way.
func (s *walSyncs) wait(ticket uint64, fsync func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	me := ticket
	for s.done < me && s.err == nil {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		serves := s.asked
		s.mu.Unlock()
		err := fsync()
		s.mu.Lock()
		s.running = false
		if err != nil {
			s.err = fmt.Errorf("sync the index's WAL: %w", err)
		}
		s.done = serves
		s.cond.Broadcast()
	}
	return s.err
}
