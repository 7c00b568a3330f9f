package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bildrum/bildrum"
)

var _ bildrum.AccessRecorder = (*DB)(nil)

// RecordAccess keeps an access event in the outbox (a node's, or the
// hub's for the accesses the hub makes itself), with the guarantee of
// bildrum.AccessRecorder: when it returns, the event is durable, or it is
// covered by a durable one of the same actor, purpose, region, person and
// kind from less than accessCover before (by the events' times).
//
// On SQLite the events go through the writer's connection, whose commits
// share their fsyncs: the events of concurrent reads wait for one sync
// together. A covered event is committed, so it survives a crash of the
// process, and a sync starts at once in the background, without the read
// waiting for it: a viewer's many requests for one woman's images wait for
// the disk once a minute, not once each. On PostgreSQL every event is
// committed durably.
func (d *DB) RecordAccess(ctx context.Context, e bildrum.AccessEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	if d.dialect == sqliteDialect {
		sync, err := d.writer.exec(ctx, d, `INSERT INTO access_outbox (event) VALUES (?)`, string(b))
		if err != nil {
			return fmt.Errorf("record access: %w", err)
		}
		key := accessKey{actor: e.Actor, purpose: e.Purpose, region: e.Region, person: e.Person, kind: e.Kind}
		if d.access.covered(key, e.Time) {
			if err := d.writer.failed(); err != nil {
				return fmt.Errorf("record access: %w", err) // fail closed: it might not become durable
			}
			d.access.syncSoon(sync)
			return nil
		}
		if err := sync(); err != nil {
			return fmt.Errorf("record access: %w", err)
		}
		d.access.durable(key, e.Time)
		return nil
	}
	if _, err := d.db.ExecContext(ctx, d.rebind(`INSERT INTO access_outbox (event) VALUES (?)`), string(b)); err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	return nil
}

// RecordAccesses keeps access events in the outbox, in order, in one
// transaction: all are durable when it returns, or none is recorded. An
// empty slice records nothing.
func (d *DB) RecordAccesses(ctx context.Context, events []bildrum.AccessEvent) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record %d accesses: %w", len(events), err)
	}
	defer tx.Rollback()
	if err := d.insertAccesses(ctx, tx, events); err != nil {
		return fmt.Errorf("record %d accesses: %w", len(events), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record %d accesses: commit: %w", len(events), err)
	}
	return nil
}

// accessBatch is how many events one INSERT into access_outbox carries on
// PostgreSQL.
const accessBatch = 100

// insertAccesses adds events to the outbox within tx, in order, through
// insertBatches (row by row on SQLite, accessBatch rows a statement on
// PostgreSQL): the writes of a store that cause accesses record them in
// their own transaction with this.
func (d *DB) insertAccesses(ctx context.Context, tx *sql.Tx, events []bildrum.AccessEvent) error {
	rows := make([][]any, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("access event: %w", err)
		}
		rows[i] = []any{string(b)}
	}
	if err := d.insertBatches(ctx, tx, `INSERT INTO access_outbox (event) VALUES `, 1, accessBatch, rows); err != nil {
		return fmt.Errorf("access events: %w", err)
	}
	return nil
}

// OutboxEvent is an access event in an outbox, numbered in order.
type OutboxEvent struct {
	Seq   int64               `json:"seq"`
	Event bildrum.AccessEvent `json:"event"`
}

// AccessEventsAfter returns at most limit events recorded after seq, oldest first.
func (d *DB) AccessEventsAfter(ctx context.Context, seq int64, limit int) ([]OutboxEvent, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT seq, event FROM access_outbox WHERE seq > ? ORDER BY seq LIMIT ?`), seq, limit)
	if err != nil {
		return nil, fmt.Errorf("access events: %w", err)
	}
	defer rows.Close()
	out := []OutboxEvent{}
	for rows.Next() {
		var o OutboxEvent
		var b string
		if err := rows.Scan(&o.Seq, &b); err != nil {
			return nil, fmt.Errorf("access events: %w", err)
		}
		if err := json.Unmarshal([]byte(b), &o.Event); err != nil {
			return nil, fmt.Errorf("access event %d: %w", o.Seq, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// EventCursor returns how far the hub has carried a node's accesses into
// the log (0 when it never has).
func (d *DB) EventCursor(ctx context.Context, region string) (int64, error) {
	var seq int64
	err := d.db.QueryRowContext(ctx, d.rebind(`SELECT seq FROM node_event_cursor WHERE region = ?`), region).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("event cursor of %s: %w", region, err)
	}
	return seq, nil
}

// SetEventCursor records that a node's accesses up to seq are in the log.
func (d *DB) SetEventCursor(ctx context.Context, region string, seq int64) error {
	_, err := d.db.ExecContext(ctx, d.rebind(`INSERT INTO node_event_cursor (region, seq) VALUES (?, ?)
		ON CONFLICT (region) DO UPDATE SET seq = excluded.seq`), region, seq)
	if err != nil {
		return fmt.Errorf("set event cursor of %s: %w", region, err)
	}
	return nil
}

// accessCover is how long a durably recorded access event covers later
// events of the same actor, purpose, region, person and kind, so that they
// need not wait for the disk (DB.RecordAccess).
const accessCover = time.Minute

// accessKey is what a covering event shares with the events it covers.
type accessKey struct {
	actor   bildrum.Principal
	purpose bildrum.Purpose
	region  string
	person  bildrum.PersonID
	kind    string
}

// accessCovers remembers when each recent kind of access was last recorded
// durably, and runs the background syncs of the events it covered.
type accessCovers struct {
	mu     sync.Mutex
	last   map[accessKey]time.Time // of the last durable event of each key
	pruned time.Time               // when last was last rid of old keys

	pending atomic.Bool                  // a background sync is started and has not begun to sync
	latest  atomic.Pointer[func() error] // the sync of the latest covered event
	running sync.WaitGroup               // background syncs, for Close
}

// covered reports whether a durable event of key at most accessCover
// before at covers an event at at.
func (c *accessCovers) covered(key accessKey, at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.last[key]
	return ok && !at.Before(last) && at.Sub(last) < accessCover
}

// durable notes that an event of key at at is durable.
func (c *accessCovers) durable(key accessKey, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[accessKey]time.Time{}
	}
	if len(c.last) >= 4096 && at.Sub(c.pruned) >= accessCover {
		// At most once a minute: the keys of the last minute stay.
		for k, t := range c.last {
			if at.Sub(t) >= accessCover {
				delete(c.last, k)
			}
		}
		c.pruned = at
	}
	if last, ok := c.last[key]; !ok || at.After(last) {
		c.last[key] = at
	}
}

// accessSyncDelay is how long a covered event waits, at most, for a sync
// of the WAL that another commit makes anyway, before one is made for it.
const accessSyncDelay = 10 * time.Millisecond

// syncSoon makes a covered event durable in the background: after
// accessSyncDelay, a goroutine calls sync (from indexWriter.exec, which
// asked for an fsync once the event was committed), or that of a later
// covered event, which serves it too; a sync of another commit meanwhile
// serves them without an fsync of their own. Its error, if any, stays with
// the WAL's syncs (walSyncs), so that the next event that must be durable
// fails, and with it the read it was for.
func (c *accessCovers) syncSoon(sync func() error) {
	c.latest.Store(&sync)
	if !c.pending.CompareAndSwap(false, true) {
		return // a sync that has not begun yet will serve this event too
	}
	c.running.Go(func() {
		time.Sleep(accessSyncDelay)
		c.pending.Store(false)
		(*c.latest.Load())()
	})
}

// wait returns when the background syncs have ended.
func (c *accessCovers) wait() { c.running.Wait() }
