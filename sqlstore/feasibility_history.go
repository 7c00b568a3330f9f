package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AddFeasibility keeps a researcher's question and the hub's answer (any
// JSON-encodable result) in the hub's history.
func (d *DB) AddFeasibility(ctx context.Context, requester, queryHash string, result any) error {
	b, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("feasibility history: %w", err)
	}
	_, err = d.db.ExecContext(ctx, d.rebind(`INSERT INTO feasibility_history (requester, asked_at, query_hash, result) VALUES (?, ?, ?, ?)`),
		requester, d.timeValue(d.Now().UTC()), queryHash, string(b))
	if err != nil {
		return fmt.Errorf("feasibility history: %w", err)
	}
	return nil
}

// FeasibilityEntry is one question of a researcher's history.
type FeasibilityEntry struct {
	AskedAt   time.Time       `json:"asked_at"`
	QueryHash string          `json:"query_hash"`
	Result    json.RawMessage `json:"result"`
}

// FeasibilityHistory returns a researcher's latest questions, newest first.
func (d *DB) FeasibilityHistory(ctx context.Context, requester string, limit int) ([]FeasibilityEntry, error) {
	rows, err := d.db.QueryContext(ctx, d.rebind(`SELECT asked_at, query_hash, result FROM feasibility_history
		WHERE requester = ? ORDER BY id DESC LIMIT ?`), requester, limit)
	if err != nil {
		return nil, fmt.Errorf("feasibility history: %w", err)
	}
	defer rows.Close()
	out := []FeasibilityEntry{}
	for rows.Next() {
		var e FeasibilityEntry
		var at nullTime
		var res string
		if err := rows.Scan(&at, &e.QueryHash, &res); err != nil {
			return nil, fmt.Errorf("feasibility history: %w", err)
		}
		e.AskedAt, e.Result = at.t, json.RawMessage(res)
		out = append(out, e)
	}
	return out, rows.Err()
}
