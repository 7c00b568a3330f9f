package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache holds statements prepared on the database, one per query text,
// for the life of the DB.
//
// database/sql prepares a *sql.Stmt of a *sql.DB on each connection the
// first time it runs there and reuses that preparation afterwards, inside
// transactions too (Tx.StmtContext): a statement from the cache is parsed
// once per connection instead of once per call. For SQLite, parsing and
// planning a statement costs more than running it on a few rows; the
// archive's store path runs the same few statements for every instance.
type stmtCache struct {
	mu sync.Mutex // guards m
	m  map[string]*sql.Stmt
}

// prepared returns query, with ? placeholders, prepared on the database:
// from the cache, or prepared now and kept. Safe for concurrent use.
func (d *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	c := &d.stmts
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := d.db.PrepareContext(ctx, d.rebind(query))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		// Prepared meanwhile by another caller: keep one.
		st.Close()
		return prev, nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

// close closes the cached statements.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
