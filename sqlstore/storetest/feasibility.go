package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
)

// FeasibilityNode is what the feasibility suite needs of a node's store:
// the store under test, and the register and consent replica it counts from.
type FeasibilityNode interface {
	bildrum.FeasibilityStore
	bildrum.RegisterStore
	bildrum.ConsentReplica
}

// feasibilityWomen are Skatteverket's official test numbers of women born
// 1945–1982 (every 19th of that list), and two samordningsnummer: one with
// month and day unknown (born 1950-01-09 as bildrum reads it) and one with
// day + 60 (born 1945-07-15).
var feasibilityWomen = []bildrum.PersonID{
	"194603047327", "194706073600", "194804102665", "194901162240", "194911212209",
	"195009162040", "195110102166", "195306172460", "195407072767", "195506072882",
	"195610132382", "195811243269", "196010272661", "196207233047", "196310262628",
	"196512073245", "196709132887", "197903169261", "198011159285", "198206169289",
	"195000692383", "194507752386",
}

// feasibilityRegister makes a register of about 200 episodes with every
// value a criterion can test, deterministically from seed. Some
// examinations fall on a woman's birthday or the day before, so that the
// ends of an age range are crossed.
func feasibilityRegister(seed uint64) []bildrum.ScreeningEpisode {
	r := rand.New(rand.NewPCG(seed, 8))
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	var out []bildrum.ScreeningEpisode
	for i, w := range feasibilityWomen {
		birth := bildrum.DateOf(w.BirthDate())
		n := 3 + r.IntN(10)
		for k := 0; k < n; k++ {
			e := bildrum.ScreeningEpisode{
				ID: fmt.Sprintf("12-f%02d-%02d", i, k), Person: w, Region: "12", Unit: "12-MAL",
				Round: k + 1, Views: bildrum.StandardViews(),
			}
			var exam bildrum.Date
			switch r.IntN(4) {
			case 0: // on a birthday
				exam = birth.AddMonths(12 * (45 + r.IntN(25)))
			case 1: // the day before one
				exam = birth.AddMonths(12 * (45 + r.IntN(25))).AddDays(-1)
			default:
				exam = bildrum.Date{Year: 2012 + r.IntN(14), Month: time.Month(1 + r.IntN(12)), Day: 1 + r.IntN(28)}
			}
			e.Invited = exam.AddDays(-20)
			if r.IntN(6) > 0 {
				e.Attended, e.Examined = true, exam
			}
			if r.IntN(4) == 0 {
				e.Views = []string{bildrum.ViewRCC, bildrum.ViewRMLO}
			}
			if !e.Attended {
				e.Views = nil
			}
			e.Reader1, e.Reader2 = bildrum.BIRADS(pick("1", "2")), bildrum.BIRADS(pick("1", "2"))
			e.Consensus = bildrum.BIRADS(pick("0", "1", "1", "2", "2", "3", "4", "5", "6"))
			e.Density = bildrum.Density(pick("a", "b", "c", "d"))
			switch r.IntN(7) {
			case 0:
				e.Outcome, e.Detection = bildrum.OutcomeInvasive, bildrum.DetectedAtScreen
				e.TumourSizeMM, e.NodalStatus = r.IntN(40), pick(bildrum.NodesNegative, bildrum.NodesPositive, "")
			case 1:
				e.Outcome, e.Detection = bildrum.OutcomeDCIS, bildrum.Detection(pick(string(bildrum.DetectedAtScreen), string(bildrum.DetectedInterval)))
			case 2:
				e.Outcome, e.Detection = bildrum.OutcomeInvasive, bildrum.DetectedInterval
				e.TumourSizeMM, e.NodalStatus = 1+r.IntN(60), pick(bildrum.NodesNegative, bildrum.NodesPositive)
			case 3:
				e.Outcome = bildrum.OutcomeBenign
			}
			if e.Outcome != "" && e.Outcome != bildrum.OutcomeBenign {
				e.Diagnosed = exam.AddDays(30)
			}
			out = append(out, e)
		}
	}
	return out
}

// feasibilityOptOuts are the fixture's opt-outs: woman i opted out of the
// purposes listed for her.
var feasibilityOptOuts = map[int][]bildrum.Purpose{
	0:  {bildrum.PurposeResearch},
	3:  {bildrum.PurposeResearch, bildrum.PurposeInnovation},
	7:  {bildrum.PurposeStatistics},
	20: {bildrum.PurposeResearch},
}

// expectedCount is the count CountMatching must return, computed from the
// specification (bildrum.Criteria.Matches) over the fixture.
func expectedCount(episodes []bildrum.ScreeningEpisode, optedOut map[bildrum.PersonID][]bildrum.Purpose, c bildrum.Criteria, maxPerWoman int) int64 {
	per := map[bildrum.PersonID]int{}
	for i := range episodes {
		if c.Matches(&episodes[i]) {
			per[episodes[i].Person]++
		}
	}
	var n int64
	for p, k := range per {
		if containsPurpose(optedOut[p], c.Purpose) {
			continue
		}
		if c.Unit == bildrum.UnitExaminations {
			n += int64(min(k, maxPerWoman))
		} else {
			n++
		}
	}
	return n
}

func containsPurpose(ps []bildrum.Purpose, p bildrum.Purpose) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// fillFeasibility stores the fixture's register and opt-outs.
func fillFeasibility(t *testing.T, s FeasibilityNode) ([]bildrum.ScreeningEpisode, map[bildrum.PersonID][]bildrum.Purpose) {
	t.Helper()
	ctx := context.Background()
	episodes := feasibilityRegister(1)
	if _, err := s.PutEpisodes(ctx, episodes); err != nil {
		t.Fatal(err)
	}
	optedOut := map[bildrum.PersonID][]bildrum.Purpose{}
	var recs []bildrum.ConsentRecord
	for i, ps := range feasibilityOptOuts {
		w := feasibilityWomen[i]
		optedOut[w] = ps
		recs = append(recs, bildrum.ConsentRecord{Person: w, Version: int64(len(recs) + 1), ChangedAt: time.Now().UTC(), ChangedBy: "citizen",
			Choices: bildrum.ConsentChoices{OptOuts: ps, CareBlocks: []string{}}})
	}
	if err := s.ApplyConsentChanges(ctx, recs, 9, time.Now()); err != nil {
		t.Fatal(err)
	}
	return episodes, optedOut
}

func mustCheck(t *testing.T, c bildrum.Criteria) bildrum.Criteria {
	t.Helper()
	c, err := c.Check()
	if err != nil {
		t.Fatalf("Check(%+v): %v", c, err)
	}
	return c
}

// FeasibilityStore runs the conformance suite of bildrum.FeasibilityStore.
// open must return an empty node store for every call.
func FeasibilityStore(t *testing.T, open func(t *testing.T) FeasibilityNode) {
	ctx := context.Background()

	t.Run("Versions", func(t *testing.T) {
		s := open(t)
		if d, c, err := s.FeasibilityVersions(ctx); err != nil || d != 0 || c != 0 {
			t.Fatalf("FeasibilityVersions of an empty node = %d, %d, %v; want 0, 0", d, c, err)
		}
		fillFeasibility(t, s)
		d, c, err := s.FeasibilityVersions(ctx)
		if err != nil || d != 1 || c != 9 {
			t.Errorf("FeasibilityVersions after one import and consent version 9 = %d, %d, %v; want 1, 9", d, c, err)
		}
		res, err := s.CountMatching(ctx, mustCheck(t, bildrum.Criteria{Purpose: "research"}), 10)
		if err != nil || res.DataVersion != 1 || res.ConsentVersion != 9 {
			t.Errorf("CountMatching versions = %+v, %v; want data 1, consent 9", res, err)
		}
	})

	t.Run("CountMatchesSpecification", func(t *testing.T) {
		s := open(t)
		episodes, optedOut := fillFeasibility(t, s)
		d := func(s string) *bildrum.DateRange {
			from, to, _ := strings.Cut(s, "/")
			return &bildrum.DateRange{From: date(from), To: date(to)}
		}
		tests := []struct {
			name string
			c    bildrum.Criteria
		}{
			{"every woman", bildrum.Criteria{Purpose: "research"}},
			{"every examination", bildrum.Criteria{Purpose: "research", Unit: bildrum.UnitExaminations}},
			{"another purpose", bildrum.Criteria{Purpose: "statistics"}},
			{"age 50-69", bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 50, Max: 69}}},
			{"age from 60", bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 60}}},
			{"age to 55", bildrum.Criteria{Purpose: "education", Age: &bildrum.IntRange{Max: 55}, Unit: bildrum.UnitExaminations}},
			{"one age", bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 58, Max: 58}, Unit: bildrum.UnitExaminations}},
			{"exam dates", bildrum.Criteria{Purpose: "research", ExamDate: d("2016-03-01/2019-06-30")}},
			{"exam from", bildrum.Criteria{Purpose: "research", ExamDate: d("2020-01-01/")}},
			{"exam to", bildrum.Criteria{Purpose: "research", ExamDate: d("/2015-12-31")}},
			{"first round", bildrum.Criteria{Purpose: "research", Round: bildrum.RoundFirst}},
			{"later rounds", bildrum.Criteria{Purpose: "research", Round: bildrum.RoundSubsequent, Unit: bildrum.UnitExaminations}},
			{"birads 4 5", bildrum.Criteria{Purpose: "research", BIRADS: []bildrum.BIRADS{"4", "5"}}},
			{"density c d", bildrum.Criteria{Purpose: "quality", Density: []bildrum.Density{"c", "d"}}},
			{"screen-detected invasive", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingScreenInvasive}}},
			{"screen-detected dcis", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingScreenDCIS}}},
			{"interval cancer", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingInterval}}},
			{"benign", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingBenign}}},
			{"any cancer", bildrum.Criteria{Purpose: "research", Outcomes: []bildrum.Finding{bildrum.FindingScreenInvasive, bildrum.FindingScreenDCIS, bildrum.FindingInterval}}},
			{"tumour 10-20", bildrum.Criteria{Purpose: "research", TumourSizeMM: &bildrum.IntRange{Min: 10, Max: 20}}},
			{"tumour to 15", bildrum.Criteria{Purpose: "research", TumourSizeMM: &bildrum.IntRange{Max: 15}}},
			{"node positive", bildrum.Criteria{Purpose: "research", NodalStatus: []string{bildrum.NodesPositive}}},
			{"views LCC", bildrum.Criteria{Purpose: "research", Views: []string{bildrum.ViewLCC}}},
			{"views RCC RMLO", bildrum.Criteria{Purpose: "research", Views: []string{bildrum.ViewRCC, bildrum.ViewRMLO}, Unit: bildrum.UnitExaminations}},
			{"the issue's example", bildrum.Criteria{Purpose: "research", Regions: []string{"12", "14"}, Age: &bildrum.IntRange{Min: 50, Max: 69},
				ExamDate: d("2014-01-01/2025-12-31"), BIRADS: []bildrum.BIRADS{"1", "4", "5"}, Density: []bildrum.Density{"c", "d"}}},
			{"nothing matches", bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 100}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := mustCheck(t, tt.c)
				for _, cap := range []int{1, 3, 10} {
					want := expectedCount(episodes, optedOut, c, cap)
					got, err := s.CountMatching(ctx, c, cap)
					if err != nil {
						t.Fatal(err)
					}
					if got.Count != want {
						t.Errorf("CountMatching(%s, cap %d) = %d, want %d", c.Canonical(), cap, got.Count, want)
					}
					if c.Unit == bildrum.UnitWomen {
						break
					}
				}
			})
		}
		// Random combinations of every criterion against the specification.
		r := rand.New(rand.NewPCG(2, 3))
		for i := 0; i < 300; i++ {
			c := randomCriteria(r)
			c.Purpose = bildrum.Purpose([]string{"research", "statistics", "innovation"}[r.IntN(3)])
			if r.IntN(2) == 0 {
				c.Unit = bildrum.UnitExaminations
			}
			c = mustCheck(t, c)
			cap := 1 + r.IntN(5)
			want := expectedCount(episodes, optedOut, c, cap)
			got, err := s.CountMatching(ctx, c, cap)
			if err != nil {
				t.Fatal(err)
			}
			if got.Count != want {
				t.Errorf("CountMatching(%s, cap %d) = %d, want %d", c.Canonical(), cap, got.Count, want)
			}
		}
	})

	t.Run("OptOutIsPerPurpose", func(t *testing.T) {
		s := open(t)
		w := feasibilityWomen[0] // opted out of research only
		e := episode("12-o1", w, "2021-05-03")
		e.Density = "d"
		other := episode("12-o2", feasibilityWomen[1], "2021-06-03")
		other.Density = "d"
		if _, err := s.PutEpisodes(ctx, []bildrum.ScreeningEpisode{e, other}); err != nil {
			t.Fatal(err)
		}
		rec := bildrum.ConsentRecord{Person: w, Version: 1, ChangedAt: time.Now().UTC(), ChangedBy: "citizen",
			Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{bildrum.PurposeResearch}, CareBlocks: []string{}}}
		if err := s.ApplyConsentChanges(ctx, []bildrum.ConsentRecord{rec}, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			purpose bildrum.Purpose
			want    int64
		}{
			{bildrum.PurposeResearch, 1},
			{bildrum.PurposeStatistics, 2},
			{bildrum.PurposeInnovation, 2},
		}
		for _, tt := range tests {
			for _, unit := range []string{bildrum.UnitWomen, bildrum.UnitExaminations} {
				c := mustCheck(t, bildrum.Criteria{Purpose: tt.purpose, Density: []bildrum.Density{"d"}, Unit: unit})
				got, err := s.CountMatching(ctx, c, 10)
				if err != nil || got.Count != tt.want {
					t.Errorf("CountMatching(%s) = %d, %v; want %d (she opted out of research only)", c.Canonical(), got.Count, err, tt.want)
				}
			}
		}
	})

	t.Run("SQLMetacharactersAreValues", func(t *testing.T) {
		s := open(t)
		episodes, _ := fillFeasibility(t, s)
		// Criteria that Check would refuse, given to the store directly:
		// every string a criterion carries into SQL holds SQL syntax.
		evil := []string{`'; DROP TABLE episodes; --`, `" OR 1=1 --`, `%`, `_`, `\`, `?`, `$1`, `' OR '1'='1`, `);DELETE FROM persons;(`, `RCC+`, `CC`}
		for _, v := range evil {
			c := bildrum.Criteria{Purpose: bildrum.Purpose(v), Unit: bildrum.UnitWomen}
			want := expectedCount(episodes, nil, c, 10)
			if got, err := s.CountMatching(ctx, c, 10); err != nil || got.Count != want {
				t.Errorf("CountMatching(purpose %q) = %d, %v; want %d (every woman: nobody opted out of such a purpose)", v, got.Count, err, want)
			}
			for _, c := range []bildrum.Criteria{
				{Purpose: "research", Unit: bildrum.UnitWomen, BIRADS: []bildrum.BIRADS{bildrum.BIRADS(v)}},
				{Purpose: "research", Unit: bildrum.UnitWomen, Density: []bildrum.Density{bildrum.Density(v)}},
				{Purpose: "research", Unit: bildrum.UnitWomen, NodalStatus: []string{v}},
			} {
				if got, err := s.CountMatching(ctx, c, 10); err != nil || got.Count != 0 {
					t.Errorf("CountMatching(%+v) = %d, %v; want 0: no row holds that value", c, got.Count, err)
				}
			}
			for _, c := range []bildrum.Criteria{
				{Purpose: "research", Unit: v},
				{Purpose: "research", Unit: bildrum.UnitWomen, Round: v},
				{Purpose: "research", Unit: bildrum.UnitWomen, Outcomes: []bildrum.Finding{bildrum.Finding(v)}},
				{Purpose: "research", Unit: bildrum.UnitExaminations, Views: []string{v}},
			} {
				if _, err := s.CountMatching(ctx, c, 10); bildrum.ErrorCode(err) != bildrum.EINVALID {
					t.Errorf("CountMatching(%+v) error = %v, want EINVALID", c, err)
				}
			}
		}
		_, total, err := s.ListEpisodes(ctx, bildrum.EpisodeFilter{})
		if err != nil || total != len(episodes) {
			t.Errorf("after the attempts the register holds %d rows (%v), want all %d", total, err, len(episodes))
		}
	})

	answer := func(hash string, count int64) bildrum.FeasibilityAnswer {
		p := bildrum.Provenance{Region: "12", QueryHash: hash, Purpose: "research", Unit: bildrum.UnitWomen, DataVersion: 1, ConsentVersion: 2,
			Threshold: 10, Epsilon: 0.5, Sensitivity: 1, Count: &count, Interval: &[2]int64{count - 6, count + 6},
			Time: time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC), Key: "bildrum-feasibility-12"}
		return bildrum.FeasibilityAnswer{Provenance: p, Signed: fmt.Sprintf("signed %s %d\n", hash, count)}
	}
	anna := bildrum.Requester{Name: "researcher", Organisation: "Karolinska Institutet"}
	berit := bildrum.Requester{Name: "researcher", Organisation: "Lunds universitet"}

	t.Run("StoreOnceChargeOnce", func(t *testing.T) {
		s := open(t)
		key := bildrum.FeasibilityKey{QueryHash: "aa", DataVersion: 1, ConsentVersion: 2}
		if _, ok, err := s.StoredAnswer(ctx, key); ok || err != nil {
			t.Fatalf("StoredAnswer of a new key = %v, %v; want none", ok, err)
		}
		if spent, err := s.FeasibilitySpent(ctx, anna); spent != 0 || err != nil {
			t.Fatalf("FeasibilitySpent of a new requester = %v, %v; want 0", spent, err)
		}
		first := answer("aa", 120)
		ch, err := s.StoreAnswerAndCharge(ctx, key, first, anna, 0.5, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Charged != 0.5 || ch.Spent != 0.5 {
			t.Errorf("first StoreAnswerAndCharge charged %v, spent %v; want 0.5, 0.5", ch.Charged, ch.Spent)
		}
		if diff := cmp.Diff(first, ch.Answer); diff != "" {
			t.Errorf("StoreAnswerAndCharge answer (-want +got):\n%s", diff)
		}
		got, ok, err := s.StoredAnswer(ctx, key)
		if err != nil || !ok {
			t.Fatalf("StoredAnswer after storing = %v, %v", ok, err)
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("StoredAnswer (-want +got):\n%s", diff)
		}
		// A second draw for the same key loses to the stored one, free, for
		// the same requester and for another.
		for _, r := range []bildrum.Requester{anna, berit} {
			ch, err = s.StoreAnswerAndCharge(ctx, key, answer("aa", 999), r, 0.5, 10)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Charged != 0 || *ch.Answer.Provenance.Count != 120 {
				t.Errorf("StoreAnswerAndCharge of a stored key for %v: charged %v, count %d; want 0 and the stored 120", r, ch.Charged, *ch.Answer.Provenance.Count)
			}
		}
		if spent, _ := s.FeasibilitySpent(ctx, anna); spent != 0.5 {
			t.Errorf("spent = %v, want 0.5", spent)
		}
		if spent, _ := s.FeasibilitySpent(ctx, berit); spent != 0 {
			t.Errorf("another requester's spent = %v, want 0", spent)
		}
		// Another data version is another question.
		if _, ok, _ := s.StoredAnswer(ctx, bildrum.FeasibilityKey{QueryHash: "aa", DataVersion: 2, ConsentVersion: 2}); ok {
			t.Errorf("StoredAnswer found an answer for another data version")
		}
	})

	t.Run("BudgetRunsOut", func(t *testing.T) {
		s := open(t)
		// Ten charges of 0.1 make exactly 1.0: the ledger keeps millionths.
		for i := 0; i < 10; i++ {
			h := fmt.Sprintf("q%d", i)
			if _, err := s.StoreAnswerAndCharge(ctx, bildrum.FeasibilityKey{QueryHash: h, DataVersion: 1}, answer(h, 50), anna, 0.1, 1); err != nil {
				t.Fatalf("charge %d of 0.1 within a budget of 1: %v", i+1, err)
			}
		}
		key := bildrum.FeasibilityKey{QueryHash: "over", DataVersion: 1}
		_, err := s.StoreAnswerAndCharge(ctx, key, answer("over", 50), anna, 0.1, 1)
		if bildrum.ErrorCode(err) != bildrum.EFORBIDDEN || !strings.Contains(bildrum.ErrorMessage(err), "0 of the budget of 1 remains") {
			t.Errorf("charge beyond the budget: %v, want EFORBIDDEN saying 0 of the budget of 1 remains", err)
		}
		if _, ok, _ := s.StoredAnswer(ctx, key); ok {
			t.Errorf("a refused answer was stored")
		}
		if spent, _ := s.FeasibilitySpent(ctx, anna); spent != 1 {
			t.Errorf("spent after refusal = %v, want 1", spent)
		}
		// Partly spent: the message names what is left.
		s.StoreAnswerAndCharge(ctx, bildrum.FeasibilityKey{QueryHash: "b1", DataVersion: 1}, answer("b1", 50), berit, 0.7, 1)
		_, err = s.StoreAnswerAndCharge(ctx, bildrum.FeasibilityKey{QueryHash: "b2", DataVersion: 1}, answer("b2", 50), berit, 0.5, 1)
		if bildrum.ErrorCode(err) != bildrum.EFORBIDDEN || !strings.Contains(bildrum.ErrorMessage(err), "0.3 of the budget of 1 remains") {
			t.Errorf("charge of 0.5 with 0.3 left: %v, want EFORBIDDEN naming 0.3", err)
		}
		// A stored answer is still given, free, with the budget spent.
		ch, err := s.StoreAnswerAndCharge(ctx, bildrum.FeasibilityKey{QueryHash: "q3", DataVersion: 1}, answer("q3", 77), anna, 0.1, 1)
		if err != nil || ch.Charged != 0 || *ch.Answer.Provenance.Count != 50 {
			t.Errorf("repeat with the budget spent = %+v, %v; want the stored answer, free", ch, err)
		}
	})

	t.Run("ConcurrentIdenticalQuestions", func(t *testing.T) {
		s := open(t)
		key := bildrum.FeasibilityKey{QueryHash: "same", DataVersion: 3, ConsentVersion: 4}
		const n = 8
		var wg sync.WaitGroup
		results := make([]bildrum.FeasibilityCharge, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				results[i], errs[i] = s.StoreAnswerAndCharge(ctx, key, answer("same", int64(100+i)), anna, 0.5, 10)
			})
		}
		wg.Wait()
		charged := 0.0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("concurrent StoreAnswerAndCharge: %v", errs[i])
			}
			charged += results[i].Charged
			if diff := cmp.Diff(results[0].Answer, results[i].Answer); diff != "" {
				t.Errorf("concurrent identical questions got different answers (-first +other):\n%s", diff)
			}
		}
		if spent, _ := s.FeasibilitySpent(ctx, anna); charged != 0.5 || spent != 0.5 {
			t.Errorf("%d concurrent identical questions charged %v in all, spent %v; want 0.5 once", n, charged, spent)
		}
	})

	t.Run("ConcurrentQuestionsShareOneBudget", func(t *testing.T) {
		s := open(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				h := fmt.Sprintf("c%d", i)
				_, errs[i] = s.StoreAnswerAndCharge(ctx, bildrum.FeasibilityKey{QueryHash: h, DataVersion: 1}, answer(h, 40), anna, 1, 3)
			})
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case bildrum.ErrorCode(err) == bildrum.EFORBIDDEN:
				refused++
			default:
				t.Errorf("concurrent charge: %v", err)
			}
		}
		if spent, _ := s.FeasibilitySpent(ctx, anna); ok != 3 || refused != n-3 || spent != 3 {
			t.Errorf("%d concurrent questions of ε 1 on a budget of 3: %d answered, %d refused, spent %v; want 3, %d, 3", n, ok, refused, spent, n-3)
		}
	})

	t.Run("InvalidCharges", func(t *testing.T) {
		s := open(t)
		key := bildrum.FeasibilityKey{QueryHash: "x", DataVersion: 1}
		for _, tt := range []struct {
			name string
			r    bildrum.Requester
			eps  float64
			a    bildrum.FeasibilityAnswer
		}{
			{"no requester", bildrum.Requester{}, 0.5, answer("x", 1)},
			{"zero epsilon", anna, 0, answer("x", 1)},
			{"unsigned", anna, 0.5, bildrum.FeasibilityAnswer{}},
		} {
			_, err := s.StoreAnswerAndCharge(ctx, key, tt.a, tt.r, tt.eps, 10)
			if bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("%s: StoreAnswerAndCharge error = %v, want EINVALID", tt.name, err)
			}
		}
		if _, ok, _ := s.StoredAnswer(ctx, key); ok {
			t.Errorf("an invalid charge stored an answer")
		}
	})

	t.Run("CancelledCountFails", func(t *testing.T) {
		s := open(t)
		fillFeasibility(t, s)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.CountMatching(cctx, mustCheck(t, bildrum.Criteria{Purpose: "research"}), 10)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("CountMatching with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

// randomCriteria draws criteria that combine every kind of criterion at
// random, to hold a store's SQL against the specification (Criteria.Matches).
func randomCriteria(r *rand.Rand) bildrum.Criteria {
	some := func(vs ...string) []string {
		var out []string
		for _, v := range vs {
			if r.IntN(3) == 0 {
				out = append(out, v)
			}
		}
		return out
	}
	var c bildrum.Criteria
	if r.IntN(2) == 0 {
		lo := 40 + r.IntN(30)
		c.Age = &bildrum.IntRange{Min: lo, Max: lo + r.IntN(20)}
	}
	if r.IntN(2) == 0 {
		from := bildrum.Date{Year: 2012 + r.IntN(12), Month: 1, Day: 1}.AddDays(r.IntN(365))
		c.ExamDate = &bildrum.DateRange{From: from, To: from.AddDays(r.IntN(2000))}
	}
	c.Round = []string{"", "", bildrum.RoundFirst, bildrum.RoundSubsequent}[r.IntN(4)]
	for _, b := range some("0", "1", "2", "3", "4", "5", "6") {
		c.BIRADS = append(c.BIRADS, bildrum.BIRADS(b))
	}
	for _, v := range some("a", "b", "c", "d") {
		c.Density = append(c.Density, bildrum.Density(v))
	}
	if r.IntN(3) == 0 {
		for _, f := range some(string(bildrum.FindingScreenInvasive), string(bildrum.FindingScreenDCIS), string(bildrum.FindingInterval), string(bildrum.FindingBenign)) {
			c.Outcomes = append(c.Outcomes, bildrum.Finding(f))
		}
	}
	if r.IntN(5) == 0 {
		c.TumourSizeMM = &bildrum.IntRange{Min: r.IntN(20), Max: 20 + r.IntN(40)}
	}
	if r.IntN(5) == 0 {
		c.NodalStatus = some(bildrum.NodesNegative, bildrum.NodesPositive)
	}
	if r.IntN(4) == 0 {
		c.Views = some(bildrum.StandardViews()...)
	}
	return c
}
