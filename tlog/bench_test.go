package tlog_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/tlog"
)

// benchConfig is the configuration the hub runs with: the package defaults.
func benchConfig(b *testing.B) tlog.Config {
	cfg := testConfig(b.TempDir())
	cfg.CheckpointInterval, cfg.BatchMaxAge = 0, 0
	return cfg
}

// BenchmarkAppend measures sustained durable appends: many concurrent
// callers (as many image reads at once), each Append returning once its
// leaf is fsynced, and the run ending when a signed checkpoint covers
// every leaf.
//
//	go test ./tlog -run '^$' -bench Append -benchtime 20000x
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{64, 512, 2048} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			l := openLog(b, benchConfig(b))
			persons := testPersons(b, 100)
			var next, last atomic.Int64
			var wg sync.WaitGroup
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						index, err := l.Append(context.Background(), event(persons[i%100], int(i)))
						if err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
						for {
							old := last.Load()
							if int64(index) <= old || last.CompareAndSwap(old, int64(index)) {
								break
							}
						}
					}
				})
			}
			wg.Wait()
			if _, err := l.WaitCheckpoint(context.Background(), uint64(last.Load())); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			reportPercentiles(b, lat, "append")
		})
	}
}

// BenchmarkAppendAll measures sustained durable appends from one caller
// with pages of events, as the hub carries the nodes' outboxes: each
// AppendAll returns once its page is fsynced and indexed, and the run
// ends when a signed checkpoint covers every leaf.
//
//	go test ./tlog -run '^$' -bench AppendAll -benchtime 20000x
func BenchmarkAppendAll(b *testing.B) {
	for _, page := range []int{100, 1000} {
		b.Run(fmt.Sprintf("page=%d", page), func(b *testing.B) {
			l := openLog(b, benchConfig(b))
			persons := testPersons(b, 100)
			events := make([]bildrum.AccessEvent, 0, page)
			var last uint64
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i += page {
				events = events[:0]
				for j := i; j < min(i+page, b.N); j++ {
					events = append(events, event(persons[j%100], j))
				}
				indices, err := l.AppendAll(context.Background(), events)
				if err != nil {
					b.Fatal(err)
				}
				last = max(last, slices.Max(indices))
			}
			if _, err := l.WaitCheckpoint(context.Background(), last); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkRecordAccess measures how long one RecordAccess takes when it
// is the only one: what an image read waits for at low load.
//
//	go test ./tlog -run '^$' -bench RecordAccess -benchtime 200x
func BenchmarkRecordAccess(b *testing.B) {
	l := openLog(b, benchConfig(b))
	person := testPersons(b, 1)[0]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := l.RecordAccess(context.Background(), event(person, i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat, "record")
}

// BenchmarkBurst100k measures a burst of 100,000 events (one large
// extraction) until a signed checkpoint covers all of them: from 1,000
// concurrent callers of RecordAccess, and from one caller with pages of
// 1,000 events, as the hub carries such a burst from a node's outbox.
//
//	go test ./tlog -run '^$' -bench Burst -benchtime 1x
func BenchmarkBurst100k(b *testing.B) {
	const events = 100_000
	persons := testPersons(b, 1000)
	all := make([]bildrum.AccessEvent, events)
	for i := range all {
		all[i] = event(persons[i%1000], i)
	}
	for _, tc := range []struct {
		name string
		run  func(b *testing.B, l *tlog.Log)
	}{
		{"callers=1000", func(b *testing.B, l *tlog.Log) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 1000 {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < events; i = next.Add(1) - 1 {
						if err := l.RecordAccess(context.Background(), all[i]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		}},
		{"pages=1000", func(b *testing.B, l *tlog.Log) {
			for i := 0; i < events; i += 1000 {
				if _, err := l.AppendAll(context.Background(), all[i:i+1000]); err != nil {
					b.Fatal(err)
				}
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				l, err := tlog.Open(context.Background(), benchConfig(b))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				tc.run(b, l)
				if _, err := l.WaitCheckpoint(context.Background(), events-1); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				b.ReportMetric(d.Seconds(), "s/burst")
				b.ReportMetric(events/d.Seconds(), "events/s")
				b.StopTimer()
				l.Close()
			}
		})
	}
}

// BenchmarkEventToCheckpoint measures the time from an event to a
// published checkpoint that includes it, alone and under a steady load of
// other events.
//
//	go test ./tlog -run '^$' -bench EventToCheckpoint -benchtime 50x
func BenchmarkEventToCheckpoint(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		load     bool
	}{
		{"idle", 0, false},
		{"loaded", 0, true},
		{"idle/interval=250ms", 250 * time.Millisecond, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := benchConfig(b)
			cfg.CheckpointInterval = tc.interval
			l := openLog(b, cfg)
			person := testPersons(b, 1)[0]
			ctx, stop := context.WithCancel(context.Background())
			var load sync.WaitGroup
			if tc.load {
				for range 64 {
					load.Go(func() {
						for i := 0; ctx.Err() == nil; i++ {
							l.Append(ctx, event(person, i))
						}
					})
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				index, err := l.Append(context.Background(), event(person, i))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.WaitCheckpoint(context.Background(), index); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			stop()
			load.Wait()
			reportPercentiles(b, lat, "to-checkpoint")
		})
	}
}

// BenchmarkProof measures serving inclusion proofs from a log of 70,000
// leaves: the Go call, and the JSON API over loopback HTTP.
//
//	go test ./tlog -run '^$' -bench Proof -benchtime 2000x
func BenchmarkProof(b *testing.B) {
	l := openLog(b, benchConfig(b))
	persons := testPersons(b, 100)
	const n = 70_000
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 512 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if _, err := l.Append(context.Background(), event(persons[i%100], int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	raw, err := l.WaitCheckpoint(context.Background(), n-1)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := l.ParseCheckpoint(raw)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()

	b.Run("call", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			index := rand.Uint64N(cp.Size)
			start := time.Now()
			if _, err := l.InclusionProof(context.Background(), index, cp.Size); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat, "proof")
	})
	b.Run("http", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			index := rand.Uint64N(cp.Size)
			start := time.Now()
			resp, err := http.Get(fmt.Sprintf("%s%s?index=%d&tree_size=%d", srv.URL, tlog.PathInclusion, index, cp.Size))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat, "proof")
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration, unit string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "ms-p50-"+unit)
	b.ReportMetric(at(0.95), "ms-p95-"+unit)
	b.ReportMetric(at(1.0), "ms-max-"+unit)
}
