package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
)

// BenchmarkFanOut measures the hub's overhead for an empty call (a node's
// status from a register that answers at once) fanned out over mutual TLS
// on loopback to 1, 3, 7, 21 and 42 nodes, with warm connections as in
// service. It reports the p50 and p95 of a whole fan-out.
func BenchmarkFanOut(b *testing.B) {
	p := newBenchPKI(b)
	hub := &federation.Client{Credentials: p.credentials(b, federation.HubIdentity("SE"))}
	regions := bildrum.Regions()
	for _, n := range []int{1, 3, 7, 21, 42} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var nodes []bildrum.Node
			for i := 0; i < n; i++ {
				region := regions[i%len(regions)].Code
				mux := http.NewServeMux()
				(&federation.NodeServer{Region: region, Register: fakeRegister{bildrum.RegisterSummary{Region: region}}}).Routes(mux)
				srv := httptest.NewUnstartedServer(mux)
				srv.TLS = p.credentials(b, federation.NodeIdentity(region)).ServerConfig()
				srv.StartTLS()
				b.Cleanup(srv.Close)
				nodes = append(nodes, bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1"})
			}
			ctx := context.Background()
			fan := func() {
				for _, r := range federation.FanOut(ctx, nodes, 2*time.Second, hub.Status) {
					if r.Status != bildrum.AnswerOK {
						b.Fatalf("region %s: %s %s", r.Region, r.Status, r.Reason)
					}
				}
			}
			fan() // warm the connections, as a running hub has them
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				fan()
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// benchPKI issues credentials for benchmarks, where testing.T helpers do not fit.
type benchPKI struct{ ca *federation.CA }

func newBenchPKI(b *testing.B) *benchPKI {
	ca, err := federation.InitCA(b.TempDir(), "bench CA", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return &benchPKI{ca: ca}
}

func (p *benchPKI) credentials(b *testing.B, id federation.Identity) *federation.Credentials {
	key, csr, err := federation.NewKeyAndRequest(id, []string{"127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	req, _ := federation.ParseRequest(csr)
	certPEM, err := p.ca.Sign(req, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	f := federation.TLSFiles{CA: p.ca.Dir + "/" + federation.CACertFile, Cert: dir + "/c.crt", Key: dir + "/c.key"}
	if err := os.WriteFile(f.Cert, certPEM, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := federation.WriteKey(f.Key, key); err != nil {
		b.Fatal(err)
	}
	c, err := federation.LoadCredentials(f)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
