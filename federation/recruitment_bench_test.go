package federation

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/recruit"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// BenchmarkRecruitment measures trial recruitment at national scale: one
// approved request whose criteria (age 40–74) match about 100,000 women,
// every one opted in to trial contact, across the 21 regions' nodes. Each
// iteration submits and approves a new request (untimed), then times the
// broker's matching round, MatchPending: the fan-out over mutual TLS on
// loopback, each node's match with its access events, and at the hub the
// re-check of every woman's opt-in, the invitations, their notifications
// and access events; and then Notify: the notifications delivered one by
// one to a FileNotifier.
//
// The women are one synthetic population spread over the regions by their
// populations (Stockholm holds about a quarter), so that no woman is in two
// registers; each node holds her register and, in its consent replica,
// her opt-in, and the hub's consent register holds the same opt-ins.
// BILDRUM_BENCH_RECRUIT_WOMEN sets how many women the request should
// match in all (default 100000); the registers and the hub's consent
// register are built once into a cache under os.TempDir().
//
// Nodes, hub and benchmark run in this one process and share its cores
// (two on the development machine): the 21 nodes match one after another
// rather than each on its own machine. peak-heap-MB is the largest heap
// (live and not yet swept objects) sampled every 10 ms during the timed
// part, hub and nodes together; alloc-MB is what the timed part allocated.
// peak-rss-MB is the process's peak resident memory during the timed part
// (Linux only), which also counts what SQLite's page caches hold outside
// the Go heap and what stays resident of the setup.
func BenchmarkRecruitment(b *testing.B) {
	target := 100000
	if v := os.Getenv("BILDRUM_BENCH_RECRUIT_WOMEN"); v != "" {
		if _, err := fmt.Sscan(v, &target); err != nil || target <= 0 {
			b.Fatalf("BILDRUM_BENCH_RECRUIT_WOMEN=%q: want a positive number of women", v)
		}
	}
	ctx := context.Background()
	cache := recruitFederation(b, target)
	p := newFeasCA(b)
	tmp := b.TempDir()
	criteria := bildrum.Criteria{Age: &bildrum.IntRange{Min: 40, Max: 74}}
	checked, err := (bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Age: criteria.Age}).CheckRecruitment()
	if err != nil {
		b.Fatal(err)
	}

	hubDB := openCopy(b, cache, tmp, "hub.db", sqlstore.PartHub)
	expected := 0
	for _, r := range bildrum.Regions() {
		db := openCopy(b, cache, tmp, "node-"+r.Code+".db", sqlstore.PartNode)
		// The cached replica was synced when it was built: mark it
		// current now, as the hub's sync would.
		st, err := db.ReplicaState(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.ApplyConsentChanges(ctx, nil, st.Version, time.Now()); err != nil {
			b.Fatal(err)
		}
		persons, _, err := db.TrialCandidates(ctx, checked)
		if err != nil {
			b.Fatal(err)
		}
		expected += len(persons)
		m := &recruit.Matcher{Region: r.Code, Store: db, Recorder: db,
			Fresh: (&consent.Checker{Replica: db, Region: r.Code, MaxAge: time.Hour}).Fresh}
		mux := http.NewServeMux()
		RecruitmentRoutes(mux, m, nil)
		srv := httptest.NewUnstartedServer(mux)
		srv.TLS = p.credentials(b, NodeIdentity(r.Code)).ServerConfig()
		srv.StartTLS()
		b.Cleanup(srv.Close)
		if err := hubDB.PutNode(ctx, bildrum.Node{Region: r.Code, Federation: srv.URL + "/federation/v1"}); err != nil {
			b.Fatal(err)
		}
	}
	if expected < target*9/10 || expected > target*11/10 {
		b.Fatalf("the registers match %d women, want about %d: delete the cache %s and build it again", expected, target, cache)
	}
	b.Logf("%d women match at 21 nodes", expected)

	hub := &Hub{Directory: hubDB, Client: &Client{Credentials: p.credentials(b, HubIdentity("SE")), NodeTimeout: time.Minute}}
	outbox := filepath.Join(tmp, "notifications.jsonl")
	broker := &recruit.Broker{Store: hubDB, Consent: hubDB, Notifier: &recruit.FileNotifier{Path: outbox},
		Match: func(ctx context.Context, req bildrum.TrialMatchRequest, regions []string) ([]recruit.RegionMatch, error) {
			results, err := hub.MatchRecruitment(ctx, req, regions)
			out := make([]recruit.RegionMatch, len(results))
			for i, r := range results {
				out[i] = recruit.RegionMatch{RegionAnswer: r.RegionAnswer, Answer: r.Value}
			}
			return out, err
		}}
	researcherP := bildrum.Principal{Name: "researcher", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"}
	officer := bildrum.Principal{Name: "officer", Role: bildrum.RolePermitOfficer, Organisation: "Etikprövningsmyndigheten"}
	input := bildrum.RecruitmentInput{
		Title: "Benchmark trial", Sponsor: "Karolinska Universitetssjukhuset", EthicsApproval: "Dnr 2026-00000-01",
		Criteria: criteria, InvitationText: "A trial open to every woman screened at 40 to 74.",
		MaxInvitations: 200000, Ends: bildrum.DateOf(time.Now()).AddDays(90),
	}

	var match, notify time.Duration
	var peak, rss, alloc uint64
	invited := 0
	for b.Loop() {
		b.StopTimer()
		r, err := broker.Submit(ctx, researcherP, input)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := broker.Decide(ctx, officer, r.ID, true, ""); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sampler := sampleHeap()
		resetPeakRSS()
		if invited == 0 {
			b.Logf("resident before the timed part: %d MB", peakRSS()>>20)
		}
		b.StartTimer()

		start := time.Now()
		if err := broker.MatchPending(ctx); err != nil {
			b.Fatal(err)
		}
		matched := time.Now()
		sent, err := broker.Notify(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done := time.Now()

		b.StopTimer()
		peak = max(peak, sampler())
		rss = max(rss, peakRSS())
		runtime.ReadMemStats(&after)
		alloc += after.TotalAlloc - before.TotalAlloc
		match += matched.Sub(start)
		notify += done.Sub(matched)
		n, err := hubDB.CountInvitations(ctx, r.ID)
		if err != nil {
			b.Fatal(err)
		}
		if n.Invited != expected || sent != expected {
			b.Fatalf("request %s: %d invited and %d notified, want the %d women who match", r.ID, n.Invited, sent, expected)
		}
		invited += n.Invited
		b.StartTimer()
	}
	runs := float64(b.N)
	b.ReportMetric(match.Seconds()/runs, "match-s")
	b.ReportMetric(notify.Seconds()/runs, "notify-s")
	b.ReportMetric((match+notify).Seconds()/runs, "total-s")
	b.ReportMetric(float64(invited)/runs, "invited")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(alloc)/runs/(1<<20), "alloc-MB")
	if rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	}
}

// sampleHeap samples the heap's objects (live and not yet swept, as
// runtime.MemStats.HeapAlloc) every 10 ms until the function it returns is
// called, which returns the largest sample.
func sampleHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return max(peak, read())
	}
}

// resetPeakRSS resets the process's peak resident set size (Linux
// proc(5), clear_refs), so that peakRSS then gives the peak since.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set size (VmHWM), or 0 where
// /proc does not give it.
func peakRSS() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var n uint64
			fmt.Sscan(kb, &n)
			return n << 10
		}
	}
	return 0
}

// openCopy copies the cached database name into dir and opens it.
func openCopy(b *testing.B, cache, dir, name string, part sqlstore.Part) *sqlstore.DB {
	path := filepath.Join(dir, name)
	copyFile(b, filepath.Join(cache, name), path)
	db, err := sqlstore.Open(context.Background(), path, part)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// recruitAttendance is the share of the synthetic women with an attended
// examination (95.6 % for seed 21 across the 21 regions): those a request
// for ages 40–74 matches.
const recruitAttendance = 0.956

// recruitFederation returns a directory of the cached databases of
// BenchmarkRecruitment, built once: node-XX.db for each region, its
// register and its consent replica, and hub.db, the consent register, in
// which every woman opted in to trial contact. The population is sized so
// that about target women have an attended examination.
func recruitFederation(b *testing.B, target int) string {
	root := filepath.Join(os.TempDir(), "bildrum-bench-recruitment")
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("women-%d", target))
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	b.Logf("building %s (once; minutes)", dir)
	start := time.Now()
	tmp := dir + ".building"
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var codes []string
	for _, r := range bildrum.Regions() {
		codes = append(codes, r.Code)
	}
	official, err := synth.Women(synth.Config{Regions: codes})
	if err != nil {
		b.Fatal(err)
	}
	cfg := synth.Config{Seed: 21, Regions: codes, Generate: max(int(float64(target)/recruitAttendance)-len(official), 0)}
	women, err := synth.Women(cfg)
	if err != nil {
		b.Fatal(err)
	}

	// The hub's consent register: every woman opts in, each a version of
	// her own. (Writers in parallel gain nothing: each commit waits for
	// SQLite's one writer and its sync.)
	hub, err := sqlstore.Open(ctx, filepath.Join(tmp, "hub.db"), sqlstore.PartHub)
	if err != nil {
		b.Fatal(err)
	}
	records := make([]bildrum.ConsentRecord, len(women))
	for i, w := range women {
		if records[i], err = hub.PutConsent(ctx, w.ID, bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{
			OptIn: true, Email: "w" + string(w.ID) + "@example.org"}}, "benchmark"); err != nil {
			b.Fatal(err)
		}
	}
	_, version, err := hub.ConsentChanges(ctx, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := hub.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("hub consent register: %d women in %s", len(women), time.Since(start).Round(time.Second))

	// The nodes: each region's register, then its replica of the opt-ins
	// of its women.
	nodes := map[string]*sqlstore.DB{}
	for _, code := range codes {
		db, err := sqlstore.Open(ctx, filepath.Join(tmp, "node-"+code+".db"), sqlstore.PartNode)
		if err != nil {
			b.Fatal(err)
		}
		nodes[code] = db
	}
	var batch []bildrum.ScreeningEpisode
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := nodes[batch[0].Region].PutEpisodes(ctx, batch)
		batch = batch[:0]
		return err
	}
	if _, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
		if len(batch) == 5000 || (len(batch) > 0 && batch[0].Region != e.Region) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, e)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := flush(); err != nil {
		b.Fatal(err)
	}
	replica := map[string][]bildrum.ConsentRecord{}
	for i, w := range women {
		replica[w.Region] = append(replica[w.Region], records[i])
	}
	for _, code := range codes {
		db := nodes[code]
		if err := db.ApplyConsentChanges(ctx, replica[code], version, time.Now()); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext == ".db-wal" || ext == ".db-shm" {
			os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d women in %s", len(women), time.Since(start).Round(time.Second))
	return dir
}
