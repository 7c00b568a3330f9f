package sqlstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// benchRows is one region's synthetic register, made once for all runs.
var benchRows = sync.OnceValue(func() []bildrum.ScreeningEpisode {
	var rows []bildrum.ScreeningEpisode
	cfg := synth.Config{Seed: 7, Regions: []string{"12"}, Generate: 20000}
	if _, err := synth.Generate(context.Background(), cfg, func(e bildrum.ScreeningEpisode) error {
		rows = append(rows, e)
		return nil
	}); err != nil {
		panic(err)
	}
	return rows
})

// BenchmarkPutEpisodes measures synthetic register rows written per second
// into a fresh node database, in transactions of 5,000 rows as `bildrum
// synth -db` writes them, on SQLite and PostgreSQL in the same run.
func BenchmarkPutEpisodes(b *testing.B) {
	rows := benchRows()
	const batch = 5000
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				db, err := sqlstore.Open(context.Background(), e.dsn(b), sqlstore.PartNode)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for start := 0; start < len(rows); start += batch {
					if _, err := db.PutEpisodes(context.Background(), rows[start:min(start+batch, len(rows))]); err != nil {
						b.Fatal(err)
					}
				}
				n += len(rows)
				b.StopTimer()
				db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
