package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/query"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// feasCA issues federation credentials for the feasibility tests.
type feasCA struct{ ca *CA }

func newFeasCA(t testing.TB) *feasCA {
	t.Helper()
	ca, err := InitCA(filepath.Join(t.TempDir(), "ca"), "feasibility test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &feasCA{ca: ca}
}

func (p *feasCA) credentials(t testing.TB, id Identity) *Credentials {
	t.Helper()
	key, csr, err := NewKeyAndRequest(id, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseRequest(csr)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := p.ca.Sign(req, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := TLSFiles{CA: filepath.Join(p.ca.Dir, CACertFile), Cert: filepath.Join(dir, "part.crt"), Key: filepath.Join(dir, "part.key")}
	if err := os.WriteFile(f.Cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteKey(f.Key, key); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCredentials(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// feasNode is a node's feasibility service over its own SQLite register,
// served over mutual TLS.
type feasNode struct {
	region string
	db     *sqlstore.DB
	node   *query.Node
	srv    *httptest.Server
}

// feasExam is one attended examination of density c in 2021.
func feasExam(region string, i int, p bildrum.PersonID) bildrum.ScreeningEpisode {
	d := bildrum.Date{Year: 2021, Month: 3, Day: 1 + i%28}
	return bildrum.ScreeningEpisode{ID: fmt.Sprintf("%s-%05d", region, i), Person: p, Region: region, Unit: region + "-A", Round: 2,
		Invited: d.AddDays(-21), Attended: true, Examined: d, Views: bildrum.StandardViews(),
		Reader1: "1", Reader2: "1", Consensus: "1", Density: "c"}
}

// officialWomen are Skatteverket's official test numbers of women.
var officialWomen = sync.OnceValues(func() ([]bildrum.Person, error) {
	return synth.Women(synth.Config{Regions: []string{"12"}})
})

// startFeasNode starts a node of region whose register holds one
// examination for each of `women` women, its consent replica synchronised
// at syncedAt (never when zero).
func startFeasNode(t *testing.T, p *feasCA, region string, women int, rules query.Rules, syncedAt time.Time) *feasNode {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ws, err := officialWomen()
	if err != nil {
		t.Fatal(err)
	}
	var eps []bildrum.ScreeningEpisode
	for i := 0; i < women; i++ {
		eps = append(eps, feasExam(region, i, ws[i].ID))
	}
	if len(eps) > 0 {
		if _, err := db.PutEpisodes(ctx, eps); err != nil {
			t.Fatal(err)
		}
	}
	if !syncedAt.IsZero() {
		if err := db.ApplyConsentChanges(ctx, nil, 1, syncedAt); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, err := query.GenerateKey(region)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := query.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	checker := &consent.Checker{Replica: db, Region: region}
	n, err := query.NewNode(region, rules, db, checker.Fresh, signer, db)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	FeasibilityRoutes(mux, n, nil)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = p.credentials(t, NodeIdentity(region)).ServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &feasNode{region: region, db: db, node: n, srv: srv}
}

func feasHub(t *testing.T, p *feasCA, servers map[string]*httptest.Server) *Hub {
	t.Helper()
	dir, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	for region, srv := range servers {
		if err := dir.PutNode(context.Background(), bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1", Web: srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	return &Hub{Directory: dir, Client: &Client{Credentials: p.credentials(t, HubIdentity("SE")), NodeTimeout: 2 * time.Second}}
}

var researcher = bildrum.Requester{Name: "researcher", Organisation: "Karolinska Institutet"}

func feasRequest(t *testing.T, criteria string) bildrum.FeasibilityRequest {
	t.Helper()
	c, err := query.ParseCriteria([]byte(criteria))
	if err != nil {
		t.Fatal(err)
	}
	return bildrum.FeasibilityRequest{Criteria: c.Canonical(), QueryHash: c.Hash(), Requester: researcher}
}

// TestFeasibilityPartialAnswer asks six regions: two answer with counts,
// one suppresses its count, one is down, one refuses with a stale consent
// replica, and one has no node. Each says so; the total sums only the two
// counts and says which regions it leaves out; nothing is complete.
func TestFeasibilityPartialAnswer(t *testing.T) {
	ctx := context.Background()
	p := newFeasCA(t)
	now := time.Now()
	skane := startFeasNode(t, p, "12", 300, query.Rules{}, now)
	vg := startFeasNode(t, p, "14", 250, query.Rules{Epsilon: 1}, now)
	// Three women against a threshold of 50: suppressed whatever the noise.
	sthlm := startFeasNode(t, p, "01", 3, query.Rules{Threshold: 50}, now)
	stale := startFeasNode(t, p, "03", 200, query.Rules{}, now.Add(-time.Hour))
	down := startFeasNode(t, p, "05", 200, query.Rules{}, now)
	down.srv.Close()
	hub := feasHub(t, p, map[string]*httptest.Server{"12": skane.srv, "14": vg.srv, "01": sthlm.srv, "03": stale.srv, "05": down.srv})

	req := feasRequest(t, `{"purpose":"research","regions":["01","03","05","12","14","25"],"density":["c"]}`)
	res, err := hub.Feasibility(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"01": bildrum.AnswerOK, "03": bildrum.AnswerRefused, "05": bildrum.AnswerDown, "12": bildrum.AnswerOK, "14": bildrum.AnswerOK, "25": bildrum.AnswerDown}
	var regions []string
	for _, l := range res.Regions {
		regions = append(regions, l.Region)
		if l.Status != want[l.Region] {
			t.Errorf("region %s: %s (%s), want %s", l.Region, l.Status, l.Reason, want[l.Region])
		}
		if l.Status != bildrum.AnswerOK && (l.Reason == "" || l.Count != nil || l.Remaining != nil) {
			t.Errorf("region %s not ok: reason %q count %v remaining %v; want a reason and no numbers", l.Region, l.Reason, l.Count, l.Remaining)
		}
		if l.Name == "" {
			t.Errorf("region %s has no name", l.Region)
		}
	}
	if !slices.Equal(regions, []string{"01", "03", "05", "12", "14", "25"}) {
		t.Errorf("regions %v, want every region asked in order", regions)
	}
	line := func(r string) bildrum.FeasibilityRegion {
		i := slices.IndexFunc(res.Regions, func(l bildrum.FeasibilityRegion) bool { return l.Region == r })
		return res.Regions[i]
	}
	if l := line("03"); !strings.Contains(l.Reason, "consent register") || !strings.Contains(l.Reason, "503") {
		t.Errorf("stale region's reason %q, want the node's 503 about its consent register", l.Reason)
	}
	if l := line("25"); l.Reason != notInDirectory {
		t.Errorf("region without a node: reason %q", l.Reason)
	}
	if l := line("01"); !l.Suppressed || l.Count != nil || l.Interval != nil || l.Provenance == nil {
		t.Errorf("small region: %+v, want suppressed with provenance and without count", l)
	}
	for _, r := range []string{"12", "14"} {
		l := line(r)
		if l.Count == nil || l.Interval == nil || l.Charged == 0 || l.Remaining == nil {
			t.Fatalf("region %s: %+v, want a count, its interval and the charge", r, l)
		}
		if _, err := query.Verify(bildrum.FeasibilityAnswer{Provenance: *l.Provenance, Signed: l.Signed}, l.VKey); err != nil {
			t.Errorf("region %s: the answer does not verify: %v", r, err)
		}
		if l.Provenance.QueryHash != req.QueryHash {
			t.Errorf("region %s answered query %s, want %s", r, l.Provenance.QueryHash, req.QueryHash)
		}
	}
	tot := res.Total
	if tot.Count == nil || *tot.Count != *line("12").Count+*line("14").Count {
		t.Errorf("total %v, want the sum of 12 and 14", tot.Count)
	}
	if !slices.Equal(tot.Regions, []string{"12", "14"}) || !slices.Equal(tot.Suppressed, []string{"01"}) || !slices.Equal(tot.Missing, []string{"03", "05", "25"}) {
		t.Errorf("total covers %v, suppressed %v, missing %v; want [12 14], [01], [03 05 25]", tot.Regions, tot.Suppressed, tot.Missing)
	}
	if tot.Interval == nil || tot.Interval[0] > *tot.Count || tot.Interval[1] < *tot.Count {
		t.Errorf("total interval %v does not hold the total %v", tot.Interval, *tot.Count)
	}
	if res.Complete || res.Asked != 6 || res.Answered != 3 || res.QueryHash != req.QueryHash {
		t.Errorf("complete %v, asked %d, answered %d, hash %s; want incomplete, 6, 3, %s", res.Complete, res.Asked, res.Answered, res.QueryHash, req.QueryHash)
	}

	// The same question again: the same answers, nothing charged.
	again, err := hub.Feasibility(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"12", "14"} {
		i := slices.IndexFunc(again.Regions, func(l bildrum.FeasibilityRegion) bool { return l.Region == r })
		if l := again.Regions[i]; l.Signed != line(r).Signed || l.Charged != 0 {
			t.Errorf("region %s asked again: charged %v, same answer %v; want the same answer, free", r, l.Charged, l.Signed == line(r).Signed)
		}
	}

	// Budgets: remaining at each node, the down one without numbers.
	budgets, err := hub.RemainingBudgets(ctx, researcher)
	if err != nil {
		t.Fatal(err)
	}
	wantLeft := map[string]float64{"01": 9.5, "03": 10, "12": 9.5, "14": 9}
	for _, b := range budgets {
		if b.Region == "05" {
			if b.Status != bildrum.AnswerDown || b.Remaining != nil {
				t.Errorf("budget of the down region: %+v", b)
			}
			continue
		}
		if b.Status != bildrum.AnswerOK || b.Remaining == nil || *b.Remaining != wantLeft[b.Region] {
			t.Errorf("budget of region %s: %+v, want %v remaining", b.Region, b, wantLeft[b.Region])
		}
	}
}

// TestFeasibilityAllRegions asks without naming regions: every node of the
// directory is asked; with all answering, the result is complete.
func TestFeasibilityAllRegions(t *testing.T) {
	p := newFeasCA(t)
	now := time.Now()
	a := startFeasNode(t, p, "12", 120, query.Rules{}, now)
	b := startFeasNode(t, p, "14", 80, query.Rules{}, now)
	hub := feasHub(t, p, map[string]*httptest.Server{"12": a.srv, "14": b.srv})
	res, err := hub.Feasibility(context.Background(), feasRequest(t, `{"purpose":"statistics","unit":"examinations"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Asked != 2 || res.Answered != 2 || len(res.Total.Regions) != 2 || res.Total.Count == nil {
		t.Errorf("result %+v, want both regions, complete, with a total", res)
	}
	// The JSON the page and the API show: null counts, a list per region.
	b2, _ := json.Marshal(res)
	for _, s := range []string{`"complete":true`, `"total":{"count":`, `"region":"12"`, `"missing":[]`} {
		if !strings.Contains(string(b2), s) {
			t.Errorf("result JSON lacks %s: %s", s, b2)
		}
	}
}

// TestFeasibilityRefusals: bad requests stop at the hub; a requester out of
// budget is refused by every node, saying what remains.
func TestFeasibilityRefusals(t *testing.T) {
	ctx := context.Background()
	p := newFeasCA(t)
	a := startFeasNode(t, p, "12", 100, query.Rules{Epsilon: 1, Budget: 1}, time.Now())
	hub := feasHub(t, p, map[string]*httptest.Server{"12": a.srv})
	for _, req := range []bildrum.FeasibilityRequest{
		{Criteria: json.RawMessage(`{"purpose":"research"}`)},
		{Criteria: json.RawMessage(`[1]`), Requester: researcher},
		{Criteria: json.RawMessage(`{"purpose":"research","regions":["99"]}`), Requester: researcher},
	} {
		if _, err := hub.Feasibility(ctx, req); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("Feasibility(%s, %v) = %v, want EINVALID", req.Criteria, req.Requester, err)
		}
	}
	if _, err := hub.Feasibility(ctx, feasRequest(t, `{"purpose":"research","age":{"min":40}}`)); err != nil {
		t.Fatal(err)
	}
	res, err := hub.Feasibility(ctx, feasRequest(t, `{"purpose":"research","age":{"min":41}}`))
	if err != nil {
		t.Fatal(err)
	}
	if l := res.Regions[0]; l.Status != bildrum.AnswerRefused || !strings.Contains(l.Reason, "403") || !strings.Contains(l.Reason, "0 of the budget of 1 remains") {
		t.Errorf("over budget: %+v, want refused with 403 naming what remains", l)
	}
	if res.Total.Count != nil || res.Complete {
		t.Errorf("total %v complete %v with the only region refusing; want no total, incomplete", res.Total.Count, res.Complete)
	}
}

// TestHubRejectsBadAnswers: a node whose answer does not verify, or that
// releases a small count, is reported refused and left out of the total.
func TestHubRejectsBadAnswers(t *testing.T) {
	p := newFeasCA(t)
	good := startFeasNode(t, p, "12", 100, query.Rules{}, time.Now())
	tamper := func(edit func(*bildrum.NodeFeasibility)) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req bildrum.FeasibilityRequest
			json.NewDecoder(r.Body).Decode(&req)
			c, _ := query.ParseCriteria(req.Criteria)
			c.Regions = nil
			req.Criteria = c.Canonical()
			ans, err := good.node.Feasibility(r.Context(), req)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			edit(&ans)
			WriteJSON(w, ans)
		}))
		srv.TLS = p.credentials(t, NodeIdentity("14")).ServerConfig()
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	tests := []struct {
		name   string
		edit   func(*bildrum.NodeFeasibility)
		reason string
	}{
		{"count changed after signing", func(a *bildrum.NodeFeasibility) { n := int64(1); a.Answer.Provenance.Count = &n }, "differs from what it signed"},
		{"another region's answer", func(a *bildrum.NodeFeasibility) {}, "came from the node of region 14"},
		{"no signature", func(a *bildrum.NodeFeasibility) { a.Answer.Signed = "" }, "not signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := feasHub(t, p, map[string]*httptest.Server{"14": tamper(tt.edit)})
			res, err := hub.Feasibility(context.Background(), feasRequest(t, `{"purpose":"research"}`))
			if err != nil {
				t.Fatal(err)
			}
			if l := res.Regions[0]; l.Status != bildrum.AnswerRefused || !strings.Contains(l.Reason, tt.reason) || res.Total.Count != nil {
				t.Errorf("%+v, total %v; want refused with %q and no total", l, res.Total.Count, tt.reason)
			}
		})
	}
}

// TestFeasibilityOnlyForTheHub: a node calling another node is refused.
func TestFeasibilityOnlyForTheHub(t *testing.T) {
	p := newFeasCA(t)
	a := startFeasNode(t, p, "12", 10, query.Rules{}, time.Now())
	other := &Client{Credentials: p.credentials(t, NodeIdentity("14"))}
	var out bildrum.NodeFeasibility
	err := other.post(context.Background(), NodeIdentity("12"), a.srv.URL+PathFeasibility, feasRequest(t, `{"purpose":"research"}`), &out)
	if remote, ok := err.(*RemoteError); !ok || remote.Status != http.StatusForbidden {
		t.Errorf("a node asking a node: %v, want 403", err)
	}
	resp, err := http.Get(strings.Replace(a.srv.URL, "https", "http", 1) + PathFeasibility)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered 200")
		}
	}
}

// TestSumInterval checks the total's interval against an oracle and
// against the library's own sampler.
func TestSumInterval(t *testing.T) {
	prov := func(count, sens int64, eps float64) bildrum.Provenance {
		lo, hi, _ := query.Interval(count, sens, eps)
		return bildrum.Provenance{Count: &count, Sensitivity: sens, Epsilon: eps, Interval: &[2]int64{lo, hi}}
	}
	// One count keeps its own interval.
	one := prov(500, 1, 0.5)
	if lo, hi := sumInterval([]bildrum.Provenance{one}); lo != one.Interval[0] || hi != one.Interval[1] {
		t.Errorf("sumInterval of one = [%d, %d], want its own %v", lo, hi, *one.Interval)
	}
	// Two: against the distribution of the sum computed by brute force.
	b := 2.0
	pmf, k := roundedLaplace(b)
	sum := map[int]float64{}
	for i, x := range pmf {
		for j, y := range pmf {
			sum[i-k+j-k] += x * y
		}
	}
	keys := make([]int, 0, len(sum))
	for v := range sum {
		keys = append(keys, v)
	}
	slices.Sort(keys)
	q := func(p float64) int64 {
		c := 0.0
		for _, v := range keys {
			c += sum[v]
			if c >= p-1e-12 {
				return int64(v)
			}
		}
		return 0
	}
	lo, hi := sumInterval([]bildrum.Provenance{prov(300, 1, 0.5), prov(200, 1, 0.5)})
	if lo != 500-q(0.975) || hi != 500-q(0.025) {
		t.Errorf("sumInterval of two = [%d, %d], want [%d, %d]", lo, hi, 500-q(0.975), 500-q(0.025))
	}
	// Wider with more regions, never below 0.
	var parts []bildrum.Provenance
	prevWidth := int64(0)
	for i := 0; i < 21; i++ {
		parts = append(parts, prov(100, 1, 0.5))
		lo, hi := sumInterval(parts)
		if i > 0 && hi-lo < prevWidth {
			t.Errorf("%d regions: width %d, narrower than with %d (%d)", i+1, hi-lo, i, prevWidth)
		}
		prevWidth = hi - lo
	}
	if lo, _ := sumInterval([]bildrum.Provenance{prov(10, 1, 0.1), prov(10, 1, 0.1)}); lo != 0 {
		t.Errorf("lower end %d, want 0 for small noisy counts", lo)
	}
	// Coverage with the real sampler: five regions of mixed ε and
	// sensitivity, 3,000 draws; the interval holds the truth about 95 % of
	// the time (at least 93 %).
	mixed := []struct {
		sens int64
		eps  float64
	}{{1, 0.5}, {1, 1}, {10, 0.5}, {1, 0.25}, {3, 2}}
	truth := int64(5000)
	inside := 0
	const draws = 3000
	for i := 0; i < draws; i++ {
		var ps []bildrum.Provenance
		for _, m := range mixed {
			x, err := noise.Laplace().AddNoiseInt64(truth/5, 1, m.sens, m.eps, 0)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, bildrum.Provenance{Count: &x, Sensitivity: m.sens, Epsilon: m.eps})
		}
		if lo, hi := sumInterval(ps); lo <= truth && truth <= hi {
			inside++
		}
	}
	if c := float64(inside) / draws; c < 0.93 || c > 0.975 {
		t.Errorf("the total's 95 %% interval held the truth in %.1f %% of %d draws", 100*c, draws)
	}
}

// The benchmark federation: nodes that each hold a copy of one synthetic
// register, built once into a cache under os.TempDir() and reused.

// benchRegister returns a SQLite node database of the synthetic register of
// `women` generated women of region 12, built once into the cache.
func benchRegister(b *testing.B, women int) string {
	dir := filepath.Join(os.TempDir(), "bildrum-bench-feasibility")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("node-12-%d.db", women))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (once; minutes)", path)
	start := time.Now()
	tmp := path + ".building"
	os.Remove(tmp)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, tmp, sqlstore.PartNode)
	if err != nil {
		b.Fatal(err)
	}
	var batch []bildrum.ScreeningEpisode
	flush := func() error {
		_, err := db.PutEpisodes(ctx, batch)
		batch = batch[:0]
		return err
	}
	if _, err := synth.Generate(ctx, synth.Config{Seed: 12, Regions: []string{"12"}, Generate: women}, func(e bildrum.ScreeningEpisode) error {
		batch = append(batch, e)
		if len(batch) == 5000 {
			return flush()
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built in %s", time.Since(start).Round(time.Second))
	return path
}

// copyFile copies a database for one node of the benchmark.
func copyFile(b *testing.B, from, to string) {
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFeasibility measures a typical feasibility question end to end:
// the hub fans it out over mutual TLS on loopback to every node, each node
// counts its SQLite register (about 415,000 examinations of 87,000 women
// by default, so 21 nodes hold 8.7 million), adds noise, signs and
// stores its answer, and the hub checks the signatures and sums. Each
// question is new (a fresh draw, charged), as the expensive case is; a
// repeat is answered from the stored answer.
//
// BILDRUM_BENCH_WOMEN sets the generated women per node (default 90000) and
// BILDRUM_BENCH_NODES the node counts (default "1,3,7,21"). Nodes, hub and
// benchmark share this machine's cores, so with n nodes the n counts queue
// for them; across a real network each node counts on its own machine.
// cpu-ms/node is the CPU time of the whole process per question and node:
// about what each node's machine spends on it.
func BenchmarkFeasibility(b *testing.B) {
	women := 90000
	if v := os.Getenv("BILDRUM_BENCH_WOMEN"); v != "" {
		fmt.Sscan(v, &women)
	}
	sizes := []int{1, 3, 7, 21}
	if v := os.Getenv("BILDRUM_BENCH_NODES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			var n int
			fmt.Sscan(f, &n)
			sizes = append(sizes, n)
		}
	}
	template := benchRegister(b, women)
	p := newFeasCA(b)
	regions := bildrum.Regions()
	for _, size := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			ctx := context.Background()
			servers := map[string]*httptest.Server{}
			var exams int
			for i := 0; i < size; i++ {
				region := regions[i].Code
				path := filepath.Join(b.TempDir(), "node.db")
				copyFile(b, template, path)
				db, err := sqlstore.Open(ctx, path, sqlstore.PartNode)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				if err := db.ApplyConsentChanges(ctx, nil, 1, time.Now()); err != nil {
					b.Fatal(err)
				}
				sum, _ := db.RegisterSummary(ctx)
				exams += sum.Exams
				skey, _, _ := query.GenerateKey(region)
				signer, _ := query.NewSigner(skey)
				n, err := query.NewNode(region, query.Rules{Budget: 1e6}, db, (&consent.Checker{Replica: db, Region: region, MaxAge: time.Hour}).Fresh, signer, db)
				if err != nil {
					b.Fatal(err)
				}
				mux := http.NewServeMux()
				FeasibilityRoutes(mux, n, nil)
				srv := httptest.NewUnstartedServer(mux)
				srv.TLS = p.credentials(b, NodeIdentity(region)).ServerConfig()
				srv.StartTLS()
				b.Cleanup(srv.Close)
				servers[region] = srv
			}
			dir, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), sqlstore.PartHub)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { dir.Close() })
			for region, srv := range servers {
				dir.PutNode(ctx, bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1"})
			}
			hub := &Hub{Directory: dir, Client: &Client{Credentials: p.credentials(b, HubIdentity("SE")), NodeTimeout: time.Minute}}
			b.Logf("%d nodes, %d examinations in all", size, exams)

			ask := func(i int) time.Duration {
				// A new question each time: ages 50–69 at examination
				// in 2020–2024, density c or d, from a varying date.
				c := fmt.Sprintf(`{"purpose":"research","age":{"min":50,"max":69},"exam_date":{"from":"%s","to":"2024-12-31"},"density":["c","d"]}`,
					bildrum.Date{Year: 2020, Month: 1, Day: 1}.AddDays(i%1500))
				cr, _ := query.ParseCriteria([]byte(c))
				req := bildrum.FeasibilityRequest{Criteria: cr.Canonical(), QueryHash: cr.Hash(), Requester: researcher}
				start := time.Now()
				res, err := hub.Feasibility(ctx, req)
				took := time.Since(start)
				if err != nil || !res.Complete {
					b.Fatalf("feasibility: %v, %+v", err, res.Regions)
				}
				return took
			}
			ask(-1) // warm connections and caches, as a running hub has them
			var lat []time.Duration
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				lat = append(lat, ask(i))
				i++
			}
			cpu := cpuTime() - cpu0
			slices.Sort(lat)
			// The CPU time of hub and nodes together, per node and question:
			// what each node's own machine would spend.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)*size), "cpu-ms/node")
			b.ReportMetric(float64(exams), "exams")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, int(math.Ceil(float64(len(lat))*0.95))-1)].Microseconds())/1000, "p95-ms")
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
