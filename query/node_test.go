package query

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// officialWomen returns n of Skatteverket's official test numbers of women.
func officialWomen(t testing.TB, n int) []bildrum.PersonID {
	t.Helper()
	ws, err := synth.Women(synth.Config{Regions: []string{"12"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) < n {
		t.Fatalf("only %d official women, want %d", len(ws), n)
	}
	out := make([]bildrum.PersonID, n)
	for i := range out {
		out[i] = ws[i].ID
	}
	return out
}

// exam returns one attended screening examination.
func exam(id string, p bildrum.PersonID, day string, density bildrum.Density, birads bildrum.BIRADS) bildrum.ScreeningEpisode {
	d, err := bildrum.ParseDate(day)
	if err != nil {
		panic(err)
	}
	return bildrum.ScreeningEpisode{ID: id, Person: p, Region: "12", Unit: "12-MAL", Round: 2,
		Invited: d.AddDays(-21), Attended: true, Examined: d, Views: bildrum.StandardViews(),
		Reader1: birads, Reader2: birads, Consensus: birads, Density: density}
}

// The known truth of the fixture (knownRegister).
const (
	truthDensityC         = 60 // women with an examination of density c …
	truthDensityCResearch = 57 // … of whom 3 opted out of research
	truthDensityD         = 25 // women with density d, two examinations each
	truthBIRADS4          = 4  // a small cell: women with BI-RADS 4
)

// knownRegister is a register whose counts are known: 60 women with an
// examination of density c in 2021 (3 of them opted out of research, one
// of those also of innovation), 25 women of density d with two
// examinations each, and 4 of those 25 with BI-RADS 4 at their second.
func knownRegister(t testing.TB) ([]bildrum.ScreeningEpisode, map[bildrum.PersonID][]bildrum.Purpose) {
	ws := officialWomen(t, truthDensityC+truthDensityD)
	var eps []bildrum.ScreeningEpisode
	for i, w := range ws[:truthDensityC] {
		eps = append(eps, exam(fmt.Sprintf("12-c%03d", i), w, "2021-03-01", "c", "1"))
	}
	for i, w := range ws[truthDensityC:] {
		b := bildrum.BIRADS("2")
		if i < truthBIRADS4 {
			b = "4"
		}
		eps = append(eps, exam(fmt.Sprintf("12-d%03d-1", i), w, "2019-03-01", "d", "1"),
			exam(fmt.Sprintf("12-d%03d-2", i), w, "2021-04-01", "d", b))
	}
	optOuts := map[bildrum.PersonID][]bildrum.Purpose{
		ws[0]: {bildrum.PurposeResearch},
		ws[1]: {bildrum.PurposeResearch, bildrum.PurposeInnovation},
		ws[2]: {bildrum.PurposeResearch},
	}
	return eps, optOuts
}

// engines are the node stores the engine runs on in tests.
var engines = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"SQLite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "node.db") }},
	{"PostgreSQL", func(t testing.TB) string { return testenv.Postgres(t) }},
}

// testNode is a node of region 12 over a real store with the known
// register, its consent replica synchronised at the clock's time.
type testNode struct {
	*Node
	db    *sqlstore.DB
	clock time.Time
}

var anna = bildrum.Requester{Name: "researcher", Organisation: "Karolinska Institutet"}

func newTestNode(t *testing.T, dsn string, rules Rules) *testNode {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn, sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	episodes, optOuts := knownRegister(t)
	if _, err := db.PutEpisodes(ctx, episodes); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{db: db, clock: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	var recs []bildrum.ConsentRecord
	for p, ps := range optOuts {
		recs = append(recs, bildrum.ConsentRecord{Person: p, Version: int64(len(recs) + 1), ChangedAt: tn.clock, ChangedBy: "citizen",
			Choices: bildrum.ConsentChoices{OptOuts: ps, CareBlocks: []string{}}})
	}
	if err := db.ApplyConsentChanges(ctx, recs, 3, tn.clock); err != nil {
		t.Fatal(err)
	}
	checker := &consent.Checker{Replica: db, Region: "12", Now: func() time.Time { return tn.clock }}
	skey, _, err := GenerateKey("12")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tn.Node, err = NewNode("12", rules, db, checker.Fresh, signer, db)
	if err != nil {
		t.Fatal(err)
	}
	tn.Now = func() time.Time { return tn.clock }
	return tn
}

func request(criteria string, r bildrum.Requester) bildrum.FeasibilityRequest {
	return bildrum.FeasibilityRequest{Criteria: json.RawMessage(criteria), Requester: r}
}

// exact replaces the noise by none, to test the counting and rules alone.
func exact(x, _ int64, _ float64) (int64, error) { return x, nil }

func TestRules(t *testing.T) {
	tests := []struct {
		in   Rules
		want Rules
		msg  string
	}{
		{Rules{}, Rules{Threshold: 10, Epsilon: 0.5, Budget: 10, MaxExamsPerWoman: 10}, ""},
		{Rules{Threshold: 5, Epsilon: 1, Budget: 3, MaxExamsPerWoman: 8}, Rules{Threshold: 5, Epsilon: 1, Budget: 3, MaxExamsPerWoman: 8}, ""},
		{Rules{Threshold: 4}, Rules{}, "never below 5"},
		{Rules{Threshold: -10}, Rules{}, "never below 5"},
		{Rules{Epsilon: -1}, Rules{}, "give an ε between"},
		{Rules{Epsilon: 6}, Rules{}, "give an ε between"},
		{Rules{Epsilon: math.NaN()}, Rules{}, "give an ε between"},
		{Rules{Epsilon: 2, Budget: 1}, Rules{}, "hold at least one count"},
		{Rules{Budget: math.Inf(1)}, Rules{}, "must be finite"},
		{Rules{MaxExamsPerWoman: 51}, Rules{}, "give 1 to 50"},
	}
	for _, tt := range tests {
		got, err := tt.in.WithDefaults()
		if tt.msg != "" {
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tt.msg) {
				t.Errorf("%+v.WithDefaults() error = %v, want EINVALID with %q", tt.in, err, tt.msg)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v.WithDefaults() = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestKnownTruth counts the known register without noise on both engines:
// every count is the truth, opted-out women are left out for the purpose
// they opted out of only, and a small cell is suppressed.
func TestKnownTruth(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			n := newTestNode(t, e.dsn(t), Rules{Budget: 100})
			n.sample = exact
			tests := []struct {
				name     string
				criteria string
				want     int64 // -1: suppressed
			}{
				{"density c for research", `{"purpose":"research","density":["c"]}`, truthDensityCResearch},
				{"density c for statistics", `{"purpose":"statistics","density":["c"]}`, truthDensityC},
				{"density c for innovation", `{"purpose":"innovation","density":["c"]}`, truthDensityC - 1},
				{"density d women", `{"purpose":"research","density":["d"]}`, truthDensityD},
				{"density d examinations", `{"purpose":"research","density":["d"],"unit":"examinations"}`, 2 * truthDensityD},
				{"density d in 2021", `{"purpose":"research","density":["d"],"exam_date":{"from":"2021-01-01","to":"2021-12-31"},"unit":"examinations"}`, truthDensityD},
				{"every woman for research", `{"purpose":"research"}`, truthDensityC + truthDensityD - 3},
				{"BI-RADS 4, a small cell", `{"purpose":"research","birads":["4"]}`, -1},
				{"nobody", `{"purpose":"research","density":["a"]}`, -1},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := n.Feasibility(context.Background(), request(tt.criteria, anna))
					if err != nil {
						t.Fatal(err)
					}
					p := got.Answer.Provenance
					if tt.want < 0 {
						if !p.Suppressed || p.Count != nil || p.Interval != nil {
							t.Errorf("Feasibility(%s) = %+v, want suppressed without count or interval", tt.criteria, p)
						}
						return
					}
					if p.Suppressed || p.Count == nil || *p.Count != tt.want {
						t.Fatalf("Feasibility(%s) = %+v, want count %d", tt.criteria, p, tt.want)
					}
					if p.Interval == nil || p.Interval[0] > tt.want || p.Interval[1] < tt.want {
						t.Errorf("Feasibility(%s) interval %v does not hold the count %d", tt.criteria, p.Interval, tt.want)
					}
				})
			}
		})
	}
}

// TestAnswerIsSignedWithProvenance checks what a real answer says of itself.
func TestAnswerIsSignedWithProvenance(t *testing.T) {
	n := newTestNode(t, engines[0].dsn(t), Rules{Epsilon: 0.25, Threshold: 8, Budget: 5})
	got, err := n.Feasibility(context.Background(), request(`{"purpose":"research","density":["d"],"unit":"examinations"}`, anna))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Verify(got.Answer, n.VerifierKey())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	c, _ := ParseCriteria([]byte(`{"purpose":"research","density":["d"],"unit":"examinations"}`))
	sum, _ := n.db.RegisterSummary(context.Background())
	want := bildrum.Provenance{Region: "12", QueryHash: c.Hash(), Purpose: "research", Unit: "examinations",
		DataVersion: sum.DataVersion, ConsentVersion: 3, Threshold: 8, Epsilon: 0.25, Sensitivity: 10,
		Time: n.clock, Key: "bildrum-feasibility-12", Count: p.Count, Suppressed: p.Suppressed, Interval: p.Interval}
	if p != want {
		t.Errorf("signed provenance = %+v\nwant %+v", p, want)
	}
	if got.VKey != n.VerifierKey() || got.Charged != 0.25 || got.Remaining != 4.75 {
		t.Errorf("reply vkey %q charged %v remaining %v; want the node's key, 0.25, 4.75", got.VKey, got.Charged, got.Remaining)
	}
}

// TestSameQuestionSameAnswer asks one question a hundred times, then
// sixteen times at once, as two requesters: one answer, charged once. A
// change to the register is a new question of new data.
func TestSameQuestionSameAnswer(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			n := newTestNode(t, e.dsn(t), Rules{})
			berit := bildrum.Requester{Name: "analyst", Organisation: "Lunds universitet"}
			const q = `{"purpose":"research","density":["c","d"],"age":{"min":40,"max":80}}`
			first, err := n.Feasibility(ctx, request(q, anna))
			if err != nil {
				t.Fatal(err)
			}
			// The same question in other words is the same question.
			same := []string{q, `{"age":{"max":80,"min":40},"density":["d","c"],"purpose":"research","regions":["12"]}`}
			for i := 0; i < 100; i++ {
				got, err := n.Feasibility(ctx, request(same[i%2], anna))
				if err != nil {
					t.Fatal(err)
				}
				if got.Answer.Signed != first.Answer.Signed || got.Charged != 0 {
					t.Fatalf("repeat %d: answer %s charged %v; want the first answer %s, free", i, got.Answer.Signed, got.Charged, first.Answer.Signed)
				}
			}
			var wg sync.WaitGroup
			answers := make([]bildrum.NodeFeasibility, 16)
			errs := make([]error, 16)
			for i := range answers {
				wg.Go(func() {
					r := anna
					if i%2 == 1 {
						r = berit
					}
					answers[i], errs[i] = n.Feasibility(ctx, request(q, r))
				})
			}
			wg.Wait()
			for i := range answers {
				if errs[i] != nil || answers[i].Answer.Signed != first.Answer.Signed || answers[i].Charged != 0 {
					t.Errorf("concurrent repeat %d: %v, %v; want the first answer, free", i, answers[i], errs[i])
				}
			}
			for r, want := range map[bildrum.Requester]float64{anna: DefaultEpsilon, berit: 0} {
				b, err := n.Budget(ctx, r)
				if err != nil || b.Spent != want || b.Remaining != DefaultBudget-want {
					t.Errorf("Budget(%v) = %+v, %v; want %v spent", r, b, err, want)
				}
			}

			// New rows: a new data version, so a new draw, charged again.
			ws := officialWomen(t, truthDensityC+truthDensityD+1)
			if _, err := n.db.PutEpisodes(ctx, []bildrum.ScreeningEpisode{exam("12-new", ws[len(ws)-1], "2022-01-10", "c", "1")}); err != nil {
				t.Fatal(err)
			}
			after, err := n.Feasibility(ctx, request(q, anna))
			if err != nil {
				t.Fatal(err)
			}
			if after.Answer.Provenance.DataVersion <= first.Answer.Provenance.DataVersion || after.Charged != DefaultEpsilon {
				t.Errorf("after an import: data version %d (was %d), charged %v; want a newer version, charged %v",
					after.Answer.Provenance.DataVersion, first.Answer.Provenance.DataVersion, after.Charged, DefaultEpsilon)
			}
		})
	}
}

// TestEveryAnswerIsAQueryEvent checks that each answer, fresh or repeated,
// leaves a query event about no one person in the node's access outbox,
// with the query hash and the ε charged and neither criteria nor count;
// and that an answer whose event cannot be recorded is not given, while
// asking again later gets the stored answer without a second charge.
func TestEveryAnswerIsAQueryEvent(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			n := newTestNode(t, e.dsn(t), Rules{})
			const q = `{"purpose":"research","density":["c","d"],"age":{"min":40,"max":80}}`
			first, err := n.Feasibility(ctx, request(q, anna))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Feasibility(ctx, request(q, anna)); err != nil {
				t.Fatal(err)
			}
			hash := first.Answer.Provenance.QueryHash
			events, err := n.db.AccessEventsAfter(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				fmt.Sprintf("feasibility count %s of women; ε %g charged", hash, DefaultEpsilon),
				fmt.Sprintf("feasibility count %s of women; asked before, answered again free of charge", hash),
			}
			if len(events) != len(want) {
				t.Fatalf("outbox holds %d events after two answers, want %d: %+v", len(events), len(want), events)
			}
			for i, ev := range events {
				got := ev.Event
				if got.Kind != bildrum.AccessFeasibilityQuery || got.Person != "" || got.Region != "12" || got.Purpose != bildrum.PurposeResearch ||
					got.Actor.Name != anna.Name || got.Actor.Organisation != anna.Organisation || got.Actor.Role != bildrum.RoleResearcher || got.What != want[i] {
					t.Errorf("event %d = %+v; want a research query event of %v with %q", i, got, anna, want[i])
				}
			}

			// The log fails: no answer, fresh or repeated, leaves the node.
			failing := &fakeRecorder{err: fmt.Errorf("disk full")}
			n.recorder = failing
			for _, q := range []string{q, `{"purpose":"research","density":["d"]}`} {
				if a, err := n.Feasibility(ctx, request(q, anna)); err == nil || !strings.Contains(err.Error(), "record the query event") {
					t.Errorf("Feasibility(%s) with a failing recorder = %+v, %v; want no answer and an error naming the query event", q, a, err)
				}
			}
			// Once the log works again, the fresh answer drawn then is given
			// without a second charge.
			n.recorder = n.db
			again, err := n.Feasibility(ctx, request(`{"purpose":"research","density":["d"]}`, anna))
			if err != nil || again.Charged != 0 {
				t.Fatalf("after the recorder recovered: charged %v, %v; want the stored answer, free", again.Charged, err)
			}
			if b, err := n.Budget(ctx, anna); err != nil || b.Spent != 2*DefaultEpsilon {
				t.Errorf("Budget = %+v, %v; want %v spent (two fresh draws)", b, err, 2*DefaultEpsilon)
			}
		})
	}
}

// TestBudgetRunsOut spends a requester's budget and checks the refusal
// names what remains, costs nothing, and leaves repeats and others free.
func TestBudgetRunsOut(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			n := newTestNode(t, e.dsn(t), Rules{Epsilon: 0.5, Budget: 2})
			for age := 41; age <= 44; age++ {
				got, err := n.Feasibility(ctx, request(fmt.Sprintf(`{"purpose":"research","age":{"min":%d}}`, age), anna))
				if err != nil {
					t.Fatalf("question %d of 4 within the budget: %v", age-40, err)
				}
				if want := 2 - 0.5*float64(age-40); got.Remaining != want {
					t.Errorf("after question %d remaining %v, want %v", age-40, got.Remaining, want)
				}
			}
			_, err := n.Feasibility(ctx, request(`{"purpose":"research","age":{"min":45}}`, anna))
			if bildrum.ErrorCode(err) != bildrum.EFORBIDDEN || !strings.Contains(bildrum.ErrorMessage(err), "0 of the budget of 2 remains") {
				t.Errorf("fifth question: %v, want EFORBIDDEN saying 0 of the budget of 2 remains", err)
			}
			if got, err := n.Feasibility(ctx, request(`{"purpose":"research","age":{"min":42}}`, anna)); err != nil || got.Charged != 0 {
				t.Errorf("a repeat with the budget spent: %+v, %v; want the stored answer, free", got, err)
			}
			if _, err := n.Feasibility(ctx, request(`{"purpose":"research","age":{"min":45}}`, bildrum.Requester{Name: "researcher", Organisation: "Umeå universitet"})); err != nil {
				t.Errorf("another organisation's researcher of the same name: %v, want an answer from her own budget", err)
			}
			b, err := n.Budget(ctx, anna)
			if err != nil || b.Remaining != 0 || b.Spent != 2 || b.Budget != 2 || b.Region != "12" {
				t.Errorf("Budget = %+v, %v; want 2 of 2 spent", b, err)
			}
		})
	}
}

// TestStaleReplicaRefused: a replica too old, or never synchronised, fails
// closed before anything is counted or charged.
func TestStaleReplicaRefused(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, engines[0].dsn(t), Rules{})
	n.clock = n.clock.Add(consent.DefaultMaxAge + time.Second)
	_, err := n.Feasibility(ctx, request(`{"purpose":"research"}`, anna))
	if bildrum.ErrorCode(err) != bildrum.EUNAVAILABLE || !strings.Contains(bildrum.ErrorMessage(err), "consent register") {
		t.Errorf("with a stale replica: %v, want EUNAVAILABLE about the consent register", err)
	}
	if b, _ := n.Budget(ctx, anna); b.Spent != 0 {
		t.Errorf("a refusal charged %v", b.Spent)
	}
	if err := n.db.ApplyConsentChanges(ctx, nil, 3, n.clock); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Feasibility(ctx, request(`{"purpose":"research"}`, anna)); err != nil {
		t.Errorf("after a sync: %v", err)
	}

	never := newTestNode(t, engines[0].dsn(t), Rules{})
	never.fresh = (&consent.Checker{Replica: &unsynced{never.db}, Region: "12"}).Fresh
	if _, err := never.Feasibility(ctx, request(`{"purpose":"statistics"}`, anna)); bildrum.ErrorCode(err) != bildrum.EUNAVAILABLE {
		t.Errorf("with a replica never synchronised: %v, want EUNAVAILABLE", err)
	}
}

// unsynced is a replica that was never synchronised.
type unsynced struct{ bildrum.ConsentReplica }

func (unsynced) ReplicaState(context.Context) (bildrum.ReplicaState, error) {
	return bildrum.ReplicaState{}, nil
}

// TestSQLMetacharactersHarmless puts SQL syntax in every string of a
// request: criteria are refused before any SQL, a requester's name is a
// value like any other, and the register is intact afterwards.
func TestSQLMetacharactersHarmless(t *testing.T) {
	evil := []string{`'; DROP TABLE episodes; --`, `" OR "1"="1`, `%`, `_`, `?`, `$1`, `\`, `') OR 1=1 --`}
	fields := []string{
		`{"purpose":%s}`, `{"purpose":"research","regions":[%s]}`, `{"purpose":"research","round":%s}`,
		`{"purpose":"research","birads":[%s]}`, `{"purpose":"research","density":[%s]}`, `{"purpose":"research","outcomes":[%s]}`,
		`{"purpose":"research","nodal_status":[%s]}`, `{"purpose":"research","views":[%s]}`, `{"purpose":"research","unit":%s}`,
		`{"purpose":"research","exam_date":{"from":%s}}`,
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			n := newTestNode(t, e.dsn(t), Rules{Budget: 100})
			for i, v := range evil {
				q, _ := json.Marshal(v)
				for _, f := range fields {
					criteria := fmt.Sprintf(f, q)
					if _, err := n.Feasibility(ctx, request(criteria, anna)); bildrum.ErrorCode(err) != bildrum.EINVALID {
						t.Errorf("Feasibility(%s) = %v, want EINVALID", criteria, err)
					}
				}
				r := bildrum.Requester{Name: v, Organisation: v}
				got, err := n.Feasibility(ctx, request(fmt.Sprintf(`{"purpose":"research","age":{"min":%d}}`, 40+i), r))
				if err != nil || got.Charged != DefaultEpsilon {
					t.Errorf("requester %q: %+v, %v; want an answer charged to her", v, got, err)
				}
				if b, err := n.Budget(ctx, r); err != nil || b.Spent != DefaultEpsilon {
					t.Errorf("Budget of requester %q = %+v, %v", v, b, err)
				}
			}
			sum, err := n.db.RegisterSummary(ctx)
			if err != nil || sum.Women != truthDensityC+truthDensityD || sum.Invitations != truthDensityC+2*truthDensityD {
				t.Errorf("register after the attempts: %+v, %v; want it whole", sum, err)
			}
		})
	}
}

func TestRequestChecks(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, engines[0].dsn(t), Rules{})
	c, _ := ParseCriteria([]byte(`{"purpose":"research"}`))
	tests := []struct {
		name string
		req  bildrum.FeasibilityRequest
		code string
		msg  string
	}{
		{"no requester", request(`{"purpose":"research"}`, bildrum.Requester{}), bildrum.EINVALID, "requester"},
		{"bad criteria", request(`{"purpose":"care"}`, anna), bildrum.EINVALID, "care is primary use"},
		{"another region", request(`{"purpose":"research","regions":["01","14"]}`, anna), bildrum.EINVALID, "not region 12"},
		{"hash differs", bildrum.FeasibilityRequest{Criteria: json.RawMessage(`{"purpose":"research"}`), QueryHash: strings.Repeat("0", 64), Requester: anna}, bildrum.EINVALID, "disagree on the canonical form"},
		{"hash agrees", bildrum.FeasibilityRequest{Criteria: json.RawMessage(`{"purpose":"research"}`), QueryHash: c.Hash(), Requester: anna}, "", ""},
	}
	for _, tt := range tests {
		_, err := n.Feasibility(ctx, tt.req)
		if bildrum.ErrorCode(err) != tt.code || !strings.Contains(bildrum.ErrorMessage(err), tt.msg) {
			t.Errorf("%s: Feasibility error = %v, want code %q with %q", tt.name, err, tt.code, tt.msg)
		}
	}
}

// freshAlways is a consent replica that is always current.
func freshAlways(context.Context, bildrum.Purpose) (bildrum.ReplicaState, error) {
	return bildrum.ReplicaState{Version: 1}, nil
}

func newMemNode(t testing.TB, s *memStore, rules Rules) *Node {
	t.Helper()
	skey, _, _ := GenerateKey("12")
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNode("12", rules, s, freshAlways, signer, &fakeRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeRecorder keeps the access events it is given, or fails with err.
type fakeRecorder struct {
	mu     sync.Mutex
	err    error
	events []bildrum.AccessEvent
}

func (f *fakeRecorder) RecordAccess(_ context.Context, e bildrum.AccessEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, e)
	return nil
}

// densityRegister returns one examination of density c for each of the
// first n women.
func densityRegister(ws []bildrum.PersonID, n int) []bildrum.ScreeningEpisode {
	var eps []bildrum.ScreeningEpisode
	for i := 0; i < n; i++ {
		eps = append(eps, exam(fmt.Sprintf("12-%04d", i), ws[i], "2021-03-01", "c", "1"))
	}
	return eps
}

// TestSmallCellsNeverReleased draws fresh answers for true counts from 0
// to 30 under two thresholds: no released count is ever below the
// threshold, and a suppressed answer carries neither count nor interval.
func TestSmallCellsNeverReleased(t *testing.T) {
	ws := officialWomen(t, 30)
	for _, threshold := range []int64{5, 10} {
		s := newMemStore(nil, nil)
		n := newMemNode(t, s, Rules{Threshold: threshold, Budget: 1e6})
		released, suppressed := 0, 0
		for truth := 0; truth <= 30; truth++ {
			s.setEpisodes(densityRegister(ws, truth))
			for draw := 0; draw < 60; draw++ {
				s.mu.Lock()
				s.consent++ // a new consent version: a fresh draw
				s.mu.Unlock()
				got, err := n.Feasibility(context.Background(), request(`{"purpose":"research","density":["c"]}`, anna))
				if err != nil {
					t.Fatal(err)
				}
				p := got.Answer.Provenance
				switch {
				case p.Suppressed && (p.Count != nil || p.Interval != nil):
					t.Fatalf("suppressed answer with a count or interval: %+v", p)
				case !p.Suppressed && (p.Count == nil || *p.Count < threshold):
					t.Fatalf("threshold %d: released count %v (true %d)", threshold, p.Count, truth)
				case p.Suppressed:
					suppressed++
				default:
					released++
				}
			}
		}
		if released == 0 || suppressed == 0 {
			t.Errorf("threshold %d: %d released, %d suppressed; want both to happen", threshold, released, suppressed)
		}
	}
}

// TestIntervalCoverage draws 2,000 fresh answers of a known count of women
// and of examinations: the stated 95 % interval holds the truth about 95 %
// of the time (at least 93 %, which fails by chance with probability
// below 1e-4), and the noise is centred on the truth.
func TestIntervalCoverage(t *testing.T) {
	ws := officialWomen(t, 300)
	var eps []bildrum.ScreeningEpisode
	for i, w := range ws {
		eps = append(eps, exam(fmt.Sprintf("12-a%03d", i), w, "2020-03-01", "c", "1"))
		if i%2 == 0 {
			eps = append(eps, exam(fmt.Sprintf("12-b%03d", i), w, "2022-03-01", "c", "1"))
		}
	}
	tests := []struct {
		criteria string
		truth    int64
	}{
		{`{"purpose":"research"}`, 300},
		{`{"purpose":"research","unit":"examinations"}`, 450},
	}
	for _, tt := range tests {
		s := newMemStore(eps, nil)
		n := newMemNode(t, s, Rules{Budget: 1e6, Epsilon: 0.5})
		const draws = 2000
		inside := 0
		var sum float64
		for i := 0; i < draws; i++ {
			s.mu.Lock()
			s.consent++
			s.mu.Unlock()
			got, err := n.Feasibility(context.Background(), request(tt.criteria, anna))
			if err != nil {
				t.Fatal(err)
			}
			p := got.Answer.Provenance
			if p.Suppressed {
				t.Fatalf("%s: a count of %d was suppressed", tt.criteria, tt.truth)
			}
			if p.Interval[0] <= tt.truth && tt.truth <= p.Interval[1] {
				inside++
			}
			sum += float64(*p.Count - tt.truth)
		}
		coverage := float64(inside) / draws
		sd := math.Sqrt2 * float64(n.rules.Sensitivity(s.lastUnit(tt.criteria))) / n.rules.Epsilon
		if coverage < 0.93 {
			t.Errorf("%s: the 95 %% interval held the truth in %.1f %% of %d draws", tt.criteria, 100*coverage, draws)
		}
		if mean := sum / draws; math.Abs(mean) > 5*sd/math.Sqrt(draws) {
			t.Errorf("%s: mean noise %.2f, want about 0 (sd %.1f)", tt.criteria, mean, sd)
		}
	}
}

// lastUnit reads the unit of criteria, for the test's arithmetic.
func (s *memStore) lastUnit(criteria string) string {
	c, _ := ParseCriteria([]byte(criteria))
	return c.Unit
}

// TestDifferencingPair plays the differencing attack: a researcher asks
// criteria A and A', which differ only in one woman's distinguishing
// attribute (the only examination of density d), and subtracts. The pair
// costs 2ε; repeating either gives nothing new; and across many
// independent data versions the difference of the answers is distributed
// as the noise allows: for every cut-off k, the chance that the difference
// reaches k with her in the register is at most e^ε times the chance
// without her (the definition of ε-differential privacy for her), up to
// sampling error.
func TestDifferencingPair(t *testing.T) {
	ws := officialWomen(t, 41)
	others := densityRegister(ws, 40) // 40 women of density c
	her := exam("12-her", ws[40], "2021-05-05", "d", "1")
	const (
		a      = `{"purpose":"research","density":["c","d"]}`
		aPrime = `{"purpose":"research","density":["c"]}`
	)
	rules := Rules{Budget: 1e6, Epsilon: 0.5}

	// The pair is two questions, each charged; repeats are free and equal.
	s := newMemStore(append(others, her), nil)
	n := newMemNode(t, s, rules)
	first, _ := n.Feasibility(context.Background(), request(a, anna))
	second, _ := n.Feasibility(context.Background(), request(aPrime, anna))
	again, _ := n.Feasibility(context.Background(), request(a, anna))
	if first.Charged != 0.5 || second.Charged != 0.5 || again.Charged != 0 || again.Answer.Signed != first.Answer.Signed {
		t.Fatalf("pair charged %v and %v, repeat charged %v (same answer %v); want 0.5, 0.5, 0 and the same answer",
			first.Charged, second.Charged, again.Charged, again.Answer.Signed == first.Answer.Signed)
	}

	// The distribution of the difference, with and without her.
	const draws = 4000
	diffs := func(register []bildrum.ScreeningEpisode) map[int64]int {
		s := newMemStore(register, nil)
		n := newMemNode(t, s, rules)
		out := map[int64]int{}
		for i := 0; i < draws; i++ {
			s.setEpisodes(register) // an independent data version
			x, err1 := n.Feasibility(context.Background(), request(a, anna))
			y, err2 := n.Feasibility(context.Background(), request(aPrime, anna))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			out[*x.Answer.Provenance.Count-*y.Answer.Provenance.Count]++
		}
		return out
	}
	with, without := diffs(append(others, her)), diffs(others)
	tail := func(h map[int64]int, k int64) float64 {
		n := 0
		for d, c := range h {
			if d >= k {
				n += c
			}
		}
		return float64(n) / draws
	}
	bound := math.Exp(rules.Epsilon)
	for k := int64(-8); k <= 8; k++ {
		pWith, pWithout := tail(with, k), tail(without, k)
		if pWith < 0.05 || pWithout < 0.05 || pWith > 0.95 || pWithout > 0.95 {
			continue // too few draws in the tail to compare
		}
		// Either direction: a ratio beyond e^ε would single her out.
		// 1.15 allows for sampling error (about ±5 % at these tails).
		if r := pWith / pWithout; r > bound*1.15 || 1/r > bound*1.15 {
			t.Errorf("P(diff ≥ %d) = %.3f with her, %.3f without: ratio %.2f, beyond e^ε = %.2f", k, pWith, pWithout, r, bound)
		}
		if r := (1 - pWith) / (1 - pWithout); r > bound*1.15 || 1/r > bound*1.15 {
			t.Errorf("P(diff < %d) = %.3f with her, %.3f without: ratio %.2f, beyond e^ε = %.2f", k, 1-pWith, 1-pWithout, r, bound)
		}
	}
	// And the attack sees something, but only through the noise: the
	// mean difference moves by about 1.
	mean := func(h map[int64]int) float64 {
		s := 0.0
		for d, c := range h {
			s += float64(d * int64(c))
		}
		return s / draws
	}
	if shift := mean(with) - mean(without); shift < 0.5 || shift > 1.5 {
		t.Errorf("mean difference moves by %.2f with her, want about 1", shift)
	}
}
