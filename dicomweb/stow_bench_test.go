package dicomweb_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
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
			requests(b, clients, func(i int) error {
				res, err := c.Store(context.Background(), "", files[i])
				if err == nil && res.Status != http.StatusOK {
					err = fmt.Errorf("status %d", res.Status)
				}
				return err
			}, n.arch.Wait) // the held objects' moves are part of the work
		})
	}
}

// requests runs request(0) … request(b.N-1) spread over clients
// goroutines, then settle when not nil, as the timed part of b, and reports
// the process's CPU time per request (cpu-µs/op).
func requests(b *testing.B, clients int, request func(i int) error, settle func()) {
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if err := request(int(i)); err != nil {
					b.Errorf("request %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if settle != nil {
		settle()
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the CPU time the process has used, user and system:
// on a shared machine a steadier measure of the work per request than the
// time it takes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWadoSmall retrieves 8 KB instances, four of each woman as an
// exam has four views, one WADO-RS request each, through the real HTTP
// handler: with every read recorded in the node's outbox before it is
// served, as a deployed node does (record=outbox, see sqlstore's
// DB.RecordAccess), and with a recorder that only keeps events in memory
// (record=memory), the difference being what recording costs a read.
//
//	go test ./dicomweb/ -run '^$' -bench WadoSmall -benchtime 2000x
func BenchmarkWadoSmall(b *testing.B) {
	for _, outbox := range []bool{true, false} {
		for _, clients := range []int{1, 4} {
			name := fmt.Sprintf("record=memory/clients=%d", clients)
			if outbox {
				name = fmt.Sprintf("record=outbox/clients=%d", clients)
			}
			b.Run(name, func(b *testing.B) {
				n := newNode(b, "")
				if outbox {
					n.rec.to = n.db
				}
				c := &dicomweb.Client{BaseURL: n.base, Token: n.tokens["staff-12"], HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
				paths := make([]string, b.N)
				for i := range paths {
					f := archivetest.Mammogram(&archivetest.Image{Rows: 60, Columns: 64, Seed: uint64(i), WindowCenter: 2048, WindowWidth: 4096, PatientID: fmt.Sprintf("WADO%06d", i/4)})
					res, err := c.Store(context.Background(), "", f)
					if err != nil || res.Status != http.StatusOK {
						b.Fatalf("Store: %v, %v", res, err)
					}
					paths[i] = strings.TrimPrefix(res.Response.Items("00081199")[0].String("00081190"), n.base+"/")
				}
				n.arch.Wait()
				b.SetBytes(8 << 10)
				requests(b, clients, func(i int) error {
					parts, err := c.Retrieve(context.Background(), paths[i])
					if err == nil && len(parts) != 1 {
						err = fmt.Errorf("%d parts, want 1", len(parts))
					}
					return err
				}, nil)
			})
		}
	}
}
