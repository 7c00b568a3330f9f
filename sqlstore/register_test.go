package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// TestFirstLoadRebuildsIndexes checks the SQLite first-load path of
// PutEpisodeStream, which drops the episodes' indexes while loading an
// empty register and builds them again before committing: a load that
// fails part way leaves the empty register with every index, and one that
// succeeds leaves every index as the migrations made it, consistent with
// the rows.
func TestFirstLoadRebuildsIndexes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	db := open(t, path, sqlstore.PartNode)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	schema := func() []string {
		t.Helper()
		rows, err := raw.QueryContext(ctx, `SELECT name || ': ' || sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'episodes' AND sql IS NOT NULL ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	want := schema()
	if len(want) < 4 {
		t.Fatalf("episodes has %d indexes before any load, want the migrations' four or more: %v", len(want), want)
	}

	// A load that fails after 500 rows: nothing stored, every index there.
	broken := errors.New("the file ends in the middle of a row")
	n := 0
	_, err = db.PutEpisodeStream(ctx, func(yield func(bildrum.ScreeningEpisode, error) bool) {
		for e, err := range synthRegister(synth.Config{Seed: 3, Regions: []string{"12"}, Generate: 300}) {
			if n++; n == 500 {
				yield(bildrum.ScreeningEpisode{}, broken)
				return
			}
			if !yield(e, err) {
				return
			}
		}
	})
	if !errors.Is(err, broken) {
		t.Fatalf("PutEpisodeStream of a broken stream = %v, want its error", err)
	}
	if got := schema(); !slices.Equal(got, want) {
		t.Errorf("indexes after a failed first load:\n%v\nwant\n%v", got, want)
	}
	if s, err := db.RegisterSummary(ctx); err != nil || s.Invitations != 0 {
		t.Errorf("register after a failed first load: %+v, %v; want empty", s, err)
	}

	// A load that succeeds: the same indexes, and they agree with the table.
	res, err := db.PutEpisodeStream(ctx, synthRegister(synth.Config{Seed: 3, Regions: []string{"12"}, Generate: 300}))
	if err != nil || res.Changed < 500 {
		t.Fatalf("first load = %+v, %v", res, err)
	}
	if got := schema(); !slices.Equal(got, want) {
		t.Errorf("indexes after the first load:\n%v\nwant\n%v", got, want)
	}
	var check string
	if err := raw.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after the first load: %q, %v", check, err)
	}
	// The second load goes row by row into the indexes kept up to date.
	if res, err := db.PutEpisodeStream(ctx, synthRegister(synth.Config{Seed: 4, Regions: []string{"12"}, Generate: 50})); err != nil || res.Changed == 0 {
		t.Fatalf("second load = %+v, %v", res, err)
	}
	if err := raw.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after the second load: %q, %v", check, err)
	}
}
