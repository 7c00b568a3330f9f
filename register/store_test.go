package register_test

import (
	"context"
	"encoding/json"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/sqlstore"
)

// memStore is an in-memory register that keeps PutEpisodeStream's
// contract: the sequence is read in one "transaction", committed only if it
// ends without error, and an identical row is left alone.
type memStore struct {
	mu      sync.Mutex
	rows    map[string]bildrum.ScreeningEpisode
	version int64
}

func newMemStore() *memStore { return &memStore{rows: make(map[string]bildrum.ScreeningEpisode)} }

func (m *memStore) PutEpisodeStream(ctx context.Context, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) (bildrum.PutResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pending := make(map[string]bildrum.ScreeningEpisode)
	var res bildrum.PutResult
	for e, err := range episodes {
		if err != nil {
			return bildrum.PutResult{}, err
		}
		prev, ok := pending[e.ID]
		if !ok {
			prev, ok = m.rows[e.ID]
		}
		if ok && sameEpisode(prev, e) {
			res.Unchanged++
		} else {
			res.Changed++
		}
		pending[e.ID] = e
	}
	if err := ctx.Err(); err != nil {
		return bildrum.PutResult{}, err
	}
	if res.Changed > 0 {
		maps.Copy(m.rows, pending)
		m.version++
	}
	return res, nil
}

// snapshot returns the committed rows, ordered by id, and the version.
func (m *memStore) snapshot() ([]bildrum.ScreeningEpisode, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.rows))
	slices.SortFunc(out, func(a, b bildrum.ScreeningEpisode) int {
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, m.version
}

// sameEpisode compares as the SQL stores do: by canonical JSON.
func sameEpisode(a, b bildrum.ScreeningEpisode) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// engines opens a fresh, empty node database on each engine.
var engines = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"SQLite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "node.db") }},
	{"PostgreSQL", func(t testing.TB) string { return testenv.Postgres(t) }},
}

func openStore(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, sqlstore.PartNode)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// allEpisodes pages through a store's register in its order (date, id).
func allEpisodes(ctx context.Context, s bildrum.RegisterStore) iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		const page = 1000
		for offset := 0; ; offset += page {
			rows, _, err := s.ListEpisodes(ctx, bildrum.EpisodeFilter{Limit: page, Offset: offset})
			if err != nil {
				yield(bildrum.ScreeningEpisode{}, err)
				return
			}
			for _, e := range rows {
				if !yield(e, nil) {
					return
				}
			}
			if len(rows) < page {
				return
			}
		}
	}
}

// collect reads the whole register of a store.
func collect(t testing.TB, s bildrum.RegisterStore) []bildrum.ScreeningEpisode {
	t.Helper()
	var out []bildrum.ScreeningEpisode
	for e, err := range allEpisodes(context.Background(), s) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// fixedNow is the clock of the tests: every date in testdata is before it.
func fixedNow() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }

// seqOf yields the episodes as a store's sequence.
func seqOf(rows []bildrum.ScreeningEpisode) iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		for _, e := range rows {
			if !yield(e, nil) {
				return
			}
		}
	}
}
