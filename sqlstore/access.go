package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bildrum/bildrum"
)

var _ bildrum.AccessRecorder = (*DB)(nil)

// RecordAccess keeps an access event in the outbox (a node's, or the
// hub's for the accesses the hub makes itself); it is durable when
// RecordAccess returns, so the caller may then serve the data.
func (d *DB) RecordAccess(ctx context.Context, e bildrum.AccessEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("record access: %w", err)
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
