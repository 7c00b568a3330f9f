package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
)

// engines opens a fresh, empty database of the part on each engine.
var engines = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"SQLite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "test.db") }},
	{"PostgreSQL", func(t testing.TB) string { return testenv.Postgres(t) }},
}

func open(t *testing.T, dsn string, part sqlstore.Part) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, part)
	if err != nil {
		t.Fatalf("Open(%s): %v", part, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStores(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Run("RegisterStore", func(t *testing.T) {
				storetest.RegisterStore(t, func(t *testing.T) bildrum.RegisterStore { return open(t, e.dsn(t), sqlstore.PartNode) })
			})
			t.Run("NodeCredentials", func(t *testing.T) {
				storetest.CredentialStore(t, func(t *testing.T) bildrum.CredentialStore { return open(t, e.dsn(t), sqlstore.PartNode) })
			})
			t.Run("HubCredentials", func(t *testing.T) {
				storetest.CredentialStore(t, func(t *testing.T) bildrum.CredentialStore { return open(t, e.dsn(t), sqlstore.PartHub) })
			})
			t.Run("NodeDirectory", func(t *testing.T) {
				storetest.NodeDirectory(t, func(t *testing.T) bildrum.NodeDirectory { return open(t, e.dsn(t), sqlstore.PartHub) })
			})
		})
	}
}

func TestOpenReopensAndMigratesOnce(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			db := open(t, dsn, sqlstore.PartHub)
			if err := db.PutNode(context.Background(), bildrum.Node{Region: "12", Federation: "x", Web: "y"}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			again := open(t, dsn, sqlstore.PartHub)
			nodes, err := again.Nodes(context.Background())
			if err != nil || len(nodes) != 1 {
				t.Errorf("after reopening: nodes = %v, %v; want the one stored", nodes, err)
			}
		})
	}
}

func TestOpenRefusesWrongPart(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			open(t, dsn, sqlstore.PartHub).Close()
			_, err := sqlstore.Open(context.Background(), dsn, sqlstore.PartNode)
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), "belongs to a hub") {
				t.Errorf("opening a hub database as a node: err = %v, want EINVALID saying it belongs to a hub", err)
			}
		})
	}
}

func TestOpenBadSQLiteFiles(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("this is not a database file ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantMsg string
	}{
		{"corrupt file", corrupt, "corrupt or not a bildrum database"},
		{"missing directory", filepath.Join(dir, "nope", "x.db"), "does not exist"},
		{"empty path", "", "empty database path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlstore.Open(context.Background(), tt.path, sqlstore.PartNode)
			if err == nil || !strings.Contains(bildrum.ErrorMessage(err), tt.wantMsg) {
				t.Errorf("Open(%q) = %v, want a message containing %q", tt.path, err, tt.wantMsg)
			}
		})
	}
}
