package synth

import (
	"context"
	"testing"

	"github.com/bildrum/bildrum"
)

// BenchmarkGenerate measures episodes per second, official numbers only and
// with a benchmark population.
func BenchmarkGenerate(b *testing.B) {
	benchmarks := []struct {
		name string
		cfg  Config
	}{
		{"official", Config{}},
		{"generate-20000", Config{Generate: 20000}},
	}
	for _, bb := range benchmarks {
		b.Run(bb.name, func(b *testing.B) {
			episodes := 0
			for b.Loop() {
				_, err := Generate(context.Background(), bb.cfg, func(bildrum.ScreeningEpisode) error {
					episodes++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(episodes)/b.Elapsed().Seconds(), "episodes/s")
		})
	}
}
