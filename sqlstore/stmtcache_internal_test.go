package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
)

// TestPrepared checks the statement cache: one statement per query text,
// however many goroutines ask for it at once, usable inside transactions
// on every connection, and closed with the database.
func TestPrepared(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "node.db"), PartNode)
	if err != nil {
		t.Fatal(err)
	}
	const query = `SELECT COUNT(*) FROM archive_instances WHERE sop_uid = ?`
	var wg sync.WaitGroup
	got := make([]*sql.Stmt, 8)
	for i := range got {
		wg.Go(func() {
			st, err := d.prepared(ctx, query)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = st
			// Each goroutine in a transaction of its own, so that the
			// statement runs on several connections.
			tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
			if err != nil {
				t.Error(err)
				return
			}
			defer tx.Rollback()
			var n int
			if err := tx.StmtContext(ctx, st).QueryRowContext(ctx, "2.25.1").Scan(&n); err != nil || n != 0 {
				t.Errorf("cached statement in a transaction = %d, %v; want 0, nil", n, err)
			}
		})
	}
	wg.Wait()
	for i, st := range got {
		if st != got[0] {
			t.Errorf("prepared call %d returned another statement than call 0", i)
		}
	}
	if len(d.stmts.m) != 1 {
		t.Errorf("the cache holds %d statements for one query", len(d.stmts.m))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d.stmts.m != nil {
		t.Errorf("statements kept after Close")
	}
	var n int
	if err := got[0].QueryRowContext(ctx, "2.25.1").Scan(&n); err == nil {
		t.Errorf("a cached statement still runs after Close")
	}
}
