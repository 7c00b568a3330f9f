package dicomweb_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/dicomweb"
)

// BenchmarkStowSmall stores 8 KB instances, one per STOW-RS request, each of
// a new study, through the real HTTP handler, SQLite index and file blobs,
// with one and with four clients, as bench/ does against Orthanc: the path
// whose cost per request decides the small objects' throughput. Client and
// server share the process; run it with -cpuprofile, or under strace -c -f,
// to see where a request's time goes.
//
//	go test ./dicomweb/ -run '^$' -bench StowSmall -benchtime 2000x
func BenchmarkStowSmall(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			n := newNode(b, "")
			c := &dicomweb.Client{BaseURL: n.base, Token: n.tokens["staff-12"], HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
			files := make([][]byte, b.N)
			for i := range files {
				files[i] = archivetest.Mammogram(&archivetest.Image{Rows: 60, Columns: 64, Seed: uint64(i), WindowCenter: 2048, WindowWidth: 4096})
			}
			b.SetBytes(int64(len(files[0])))
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			b.ResetTimer()
			for range clients {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						res, err := c.Store(context.Background(), "", files[i])
						if err != nil || res.Status != http.StatusOK {
							b.Errorf("Store: %v, %v", res, err)
							return
						}
					}
				})
			}
			wg.Wait()
			n.arch.Wait() // the held objects' moves are part of the work
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system:
// on a shared machine a steadier measure of the work per request than the
// time it takes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
