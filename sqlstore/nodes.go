package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bildrum/bildrum"
)

var _ bildrum.NodeDirectory = (*DB)(nil)

// PutNode adds a node or updates its addresses, keeping its last status.
func (d *DB) PutNode(ctx context.Context, n bildrum.Node) error {
	if _, err := bildrum.RegionByCode(n.Region); err != nil {
		return err
	}
	_, err := d.db.ExecContext(ctx, d.rebind(`
		INSERT INTO nodes (region, federation, web) VALUES (?, ?, ?)
		ON CONFLICT (region) DO UPDATE SET federation = excluded.federation, web = excluded.web`),
		n.Region, n.Federation, n.Web)
	if err != nil {
		return fmt.Errorf("put node %s: %w", n.Region, err)
	}
	return nil
}

// RecordStatus stores a known node's newest status.
func (d *DB) RecordStatus(ctx context.Context, s bildrum.NodeStatus) error {
	res, err := d.db.ExecContext(ctx, d.rebind(`
		UPDATE nodes SET version = ?, women = ?, exams = ?, data_version = ?, checked_at = ?, latency_ms = ?, cert_expires = ?
		WHERE region = ?`),
		s.Version, s.Women, s.Exams, s.DataVersion, d.timeValue(s.CheckedAt), s.LatencyMS, d.timeValue(s.CertExpires), s.Region)
	if err != nil {
		return fmt.Errorf("record status of node %s: %w", s.Region, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("record status of node %s: %w", s.Region, err)
	} else if n == 0 {
		return bildrum.Errorf(bildrum.ENOTFOUND, "no node for region %s in the federation", s.Region)
	}
	return nil
}

// Nodes returns every node with its last status, ordered by region code.
func (d *DB) Nodes(ctx context.Context) ([]bildrum.Node, error) {
	rows, err := d.db.QueryContext(ctx, `
		SELECT region, federation, web, version, women, exams, data_version, checked_at, latency_ms, cert_expires
		FROM nodes ORDER BY region`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []bildrum.Node
	for rows.Next() {
		var n bildrum.Node
		var checked, expires nullTime
		s := &n.LastStatus
		if err := rows.Scan(&n.Region, &n.Federation, &n.Web, &s.Version, &s.Women, &s.Exams, &s.DataVersion, &checked, &s.LatencyMS, &expires); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		s.Region, s.CheckedAt, s.CertExpires = n.Region, checked.t, expires.t
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

// timeValue stores a time as RFC 3339 text in SQLite and as a timestamp in
// PostgreSQL; the zero time is NULL.
func (d *DB) timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.dialect == sqliteDialect {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return t.UTC()
}

// nullTime scans a timestamp, RFC 3339 text or NULL.
type nullTime struct{ t time.Time }

func (n *nullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		n.t = time.Time{}
	case time.Time:
		n.t = v.UTC()
	case string:
		if v == "" {
			n.t = time.Time{}
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("scan time %q: %w", v, err)
		}
		n.t = t.UTC()
	case []byte:
		return n.Scan(string(v))
	default:
		return fmt.Errorf("scan time: unsupported type %T", src)
	}
	return nil
}

var _ sql.Scanner = (*nullTime)(nil)
