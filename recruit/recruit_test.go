package recruit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/recruit"
	"github.com/bildrum/bildrum/sqlstore"
)

// Official test numbers of women (Skatteverket), as the demo's population uses.
var (
	anna    = bildrum.PersonID("194603047327")
	berit   = bildrum.PersonID("194706073600")
	cecilia = bildrum.PersonID("194804102665")
	doris   = bildrum.PersonID("194901162240") // matched, but not opted in at the hub
)

var (
	researcher = bildrum.Principal{Name: "Ingrid Forsk", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"}
	other      = bildrum.Principal{Name: "Olle Annan", Role: bildrum.RoleResearcher, Organisation: "Lunds universitet"}
	officer    = bildrum.Principal{Name: "Petra Prövning", Role: bildrum.RolePermitOfficer, Organisation: "Myndigheten för vårddata"}
)

func citizen(id bildrum.PersonID) bildrum.Principal {
	return bildrum.Principal{Name: string(id), Role: bildrum.RoleCitizen, Person: id}
}

// fakeNodes answers matching calls from a fixed table per region, and
// records which regions were asked.
type fakeNodes struct {
	mu      sync.Mutex
	persons map[string][]bildrum.PersonID
	down    map[string]bool
	asked   [][]string
}

func (f *fakeNodes) match(ctx context.Context, req bildrum.TrialMatchRequest, regions []string) ([]recruit.RegionMatch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, regions)
	if len(regions) == 0 {
		for r := range f.persons {
			regions = append(regions, r)
		}
		slices.Sort(regions)
	}
	var out []recruit.RegionMatch
	for _, r := range regions {
		if f.down[r] {
			out = append(out, recruit.RegionMatch{RegionAnswer: bildrum.RegionAnswer{Region: r, Status: bildrum.AnswerDown, Reason: "connection refused"}})
			continue
		}
		out = append(out, recruit.RegionMatch{RegionAnswer: bildrum.RegionAnswer{Region: r, Status: bildrum.AnswerOK},
			Answer: bildrum.TrialMatchAnswer{Region: r, ConsentVersion: 7, Persons: f.persons[r]}})
	}
	return out, nil
}

type fixture struct {
	db     *sqlstore.DB
	broker *recruit.Broker
	nodes  *fakeNodes
	outbox string
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), sqlstore.PartHub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, w := range []bildrum.PersonID{anna, berit, cecilia} {
		if _, err := db.PutConsent(ctx, w, bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Email: "w" + string(w[8:]) + "@example.com", Phone: "070-1740605"}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{db: db, now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		nodes:  &fakeNodes{persons: map[string][]bildrum.PersonID{"12": {anna, berit, doris}, "14": {cecilia, anna}}, down: map[string]bool{}},
		outbox: filepath.Join(t.TempDir(), "notifications.jsonl")}
	f.broker = &recruit.Broker{Store: db, Consent: db, Match: f.nodes.match, Notifier: &recruit.FileNotifier{Path: f.outbox},
		Now: func() time.Time { return f.now }}
	return f
}

func validInput() bildrum.RecruitmentInput {
	return bildrum.RecruitmentInput{
		Title: "Tät bröstvävnad och MR", Sponsor: "Karolinska Universitetssjukhuset", EthicsApproval: "Dnr 2026-01234-01",
		Criteria:       bildrum.Criteria{Age: &bildrum.IntRange{Min: 50, Max: 74}, Density: []bildrum.Density{"d"}},
		InvitationText: "Vi söker kvinnor med mycket tät bröstvävnad till en studie om kompletterande MR.",
		MaxInvitations: 100, Ends: bildrum.Date{Year: 2027, Month: 3, Day: 31},
	}
}

// approved submits and approves a request, and runs one matching round.
func (f *fixture) approved(t *testing.T, in bildrum.RecruitmentInput) bildrum.RecruitmentRequest {
	t.Helper()
	r, err := f.broker.Submit(t.Context(), researcher, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.broker.Decide(t.Context(), officer, r.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.broker.MatchPending(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

func code(err error) string { return bildrum.ErrorCode(err) }

func TestSubmitAndDecide(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	long := validInput()
	long.InvitationText = strings.Repeat("å", bildrum.MaxInvitationText+1)
	past := validInput()
	past.Ends = bildrum.Date{Year: 2026, Month: 11, Day: 23}
	feasPurpose := validInput()
	feasPurpose.Criteria.Purpose = bildrum.PurposeResearch
	for _, tc := range []struct {
		name string
		p    bildrum.Principal
		in   bildrum.RecruitmentInput
		want string
	}{
		{"citizen", citizen(anna), validInput(), bildrum.EFORBIDDEN},
		{"permit officer", officer, validInput(), bildrum.EFORBIDDEN},
		{"text too long", researcher, long, bildrum.EINVALID},
		{"ends today", researcher, past, bildrum.EINVALID},
		{"another purpose", researcher, feasPurpose, bildrum.EINVALID},
		{"no title", researcher, func() bildrum.RecruitmentInput { in := validInput(); in.Title = " "; return in }(), bildrum.EINVALID},
		{"no max", researcher, func() bildrum.RecruitmentInput { in := validInput(); in.MaxInvitations = 0; return in }(), bildrum.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.broker.Submit(ctx, tc.p, tc.in); code(err) != tc.want {
				t.Fatalf("Submit = %v, want code %s", err, tc.want)
			}
		})
	}

	r, err := f.broker.Submit(ctx, researcher, validInput())
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != bildrum.RecruitmentPending || r.Criteria.Purpose != bildrum.PurposeRecruitment || r.Criteria.Unit != bildrum.UnitWomen {
		t.Fatalf("submitted %+v", r)
	}
	self := officer
	self.Name, self.Organisation = researcher.Name, researcher.Organisation
	for _, tc := range []struct {
		name    string
		p       bildrum.Principal
		approve bool
		reason  string
		want    string
	}{
		{"researcher decides", researcher, true, "", bildrum.EFORBIDDEN},
		{"decides her own", self, true, "", bildrum.EFORBIDDEN},
		{"reject without reason", officer, false, "", bildrum.EINVALID},
		{"unknown", officer, true, "", bildrum.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := r.ID
			if tc.name == "unknown" {
				id = "rec-0000"
			}
			if _, err := f.broker.Decide(ctx, tc.p, id, tc.approve, tc.reason); code(err) != tc.want {
				t.Fatalf("Decide = %v, want code %s", err, tc.want)
			}
		})
	}
	d, err := f.broker.Decide(ctx, officer, r.ID, false, "The invitation text must say that the MR examination takes 30 minutes.")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != bildrum.RecruitmentRejected || d.Decision == nil || d.Decision.By != officer.Name {
		t.Fatalf("decided %+v", d)
	}
	if _, err := f.broker.Decide(ctx, officer, r.ID, true, ""); code(err) != bildrum.ECONFLICT {
		t.Fatalf("second decision: %v, want a conflict", err)
	}
	if err := f.broker.MatchPending(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.nodes.asked) != 0 {
		t.Fatalf("a rejected request was matched: %v", f.nodes.asked)
	}
}

func TestMatchingInvitesOnlyOptedInOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.nodes.down["14"] = true
	r := f.approved(t, validInput())

	invited := func() map[bildrum.PersonID]bildrum.Invitation {
		out := map[bildrum.PersonID]bildrum.Invitation{}
		for _, w := range []bildrum.PersonID{anna, berit, cecilia, doris} {
			invs, err := f.db.Invitations(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range invs {
				if inv.Request == r.ID {
					out[w] = inv
				}
			}
		}
		return out
	}
	got := invited()
	if len(got) != 2 || got[anna].Region != "12" || got[berit].Region != "12" {
		t.Fatalf("after region 12 only: invited %v, want anna and berit of region 12 (doris is not opted in at the hub)", got)
	}
	view, err := f.broker.View(ctx, officer, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, x := range view.Regions {
		states[x.Region] = x.Status
	}
	if states["12"] != bildrum.AnswerOK || states["14"] != bildrum.AnswerDown {
		t.Fatalf("region states %v", states)
	}

	// Region 14 comes back: only it is asked again, and anna, matched by
	// both regions, keeps her one invitation.
	f.nodes.down["14"] = false
	if err := f.broker.MatchPending(ctx); err != nil {
		t.Fatal(err)
	}
	if last := f.nodes.asked[len(f.nodes.asked)-1]; !slices.Equal(last, []string{"14"}) {
		t.Fatalf("second round asked %v, want only region 14", last)
	}
	got = invited()
	if len(got) != 3 || got[cecilia].Region != "14" || got[anna].Region != "12" {
		t.Fatalf("after region 14: invited %v", got)
	}
	if err := f.broker.MatchPending(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.nodes.asked); n != 2 {
		t.Fatalf("every region had matched, yet the nodes were asked again (%d calls)", n)
	}

	// Each invitation is an event, and a notification that names no trial.
	sent, err := f.broker.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sent != 3 {
		t.Fatalf("sent %d notifications, want 3", sent)
	}
	lines := readLines(t, f.outbox)
	if len(lines) != 3 {
		t.Fatalf("notification outbox has %d lines", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(l, r.Title) || strings.Contains(l, "MR") || strings.Contains(l, "1946") {
			t.Fatalf("notification tells more than that an invitation waits: %s", l)
		}
	}
	if sent, _ := f.broker.Notify(ctx); sent != 0 {
		t.Fatalf("notifications sent twice (%d)", sent)
	}
	events := outboxKinds(t, f.db)
	if events[recruit.AccessInvite] != 3 {
		t.Fatalf("events %v, want 3 invitations", events)
	}
}

func TestMaxInvitationsIsAFairCap(t *testing.T) {
	f := newFixture(t)
	in := validInput()
	in.MaxInvitations = 2
	r := f.approved(t, in)
	n, err := f.db.CountInvitations(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n.Invited != 2 {
		t.Fatalf("invited %d, want the cap of 2", n.Invited)
	}
}

func TestAnswersAndWithdrawal(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	r := f.approved(t, validInput())
	inbox := func(w bildrum.PersonID) []bildrum.InboxItem {
		items, err := f.broker.Inbox(ctx, citizen(w))
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	a := inbox(anna)
	if len(a) != 1 || !a[0].Open || a[0].Title != r.Title || a[0].Region != "12" || a[0].Researcher.Name != researcher.Name || a[0].Criteria.Density[0] != "d" {
		t.Fatalf("anna's inbox %+v", a)
	}
	if _, err := f.broker.Inbox(ctx, researcher); code(err) != bildrum.EFORBIDDEN {
		t.Fatalf("a researcher read an inbox: %v", err)
	}
	if _, err := f.broker.Answer(ctx, citizen(berit), a[0].ID, true); code(err) != bildrum.ENOTFOUND {
		t.Fatalf("berit answered anna's invitation: %v", err)
	}
	acc, err := f.broker.Answer(ctx, citizen(anna), a[0].ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Status != bildrum.InvitationAccepted || acc.Contact.Email != "w7327@example.com" {
		t.Fatalf("accepted %+v", acc)
	}
	if _, err := f.broker.Answer(ctx, citizen(anna), a[0].ID, false); code(err) != bildrum.ECONFLICT {
		t.Fatalf("answered twice: %v", err)
	}
	b := inbox(berit)
	if _, err := f.broker.Answer(ctx, citizen(berit), b[0].ID, false); err != nil {
		t.Fatal(err)
	}

	// Cecilia withdraws her opt-in: her pending invitation goes, and she
	// can no longer accept.
	c := inbox(cecilia)
	rec, err := f.db.PutConsent(ctx, cecilia, bildrum.ConsentChoices{}, string(cecilia))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.broker.ConsentChanged(ctx, citizen(cecilia), rec); err != nil {
		t.Fatal(err)
	}
	if got := inbox(cecilia); got[0].Status != bildrum.InvitationWithdrawn || got[0].Open {
		t.Fatalf("cecilia's invitation after withdrawal: %+v", got[0])
	}
	if _, err := f.broker.Answer(ctx, citizen(cecilia), c[0].ID, true); code(err) != bildrum.ECONFLICT {
		t.Fatalf("accepted after withdrawal: %v", err)
	}

	// The researcher sees anna's contact, once released; the others only
	// as (suppressed) counts. Another researcher sees nothing.
	v, err := f.broker.View(ctx, researcher, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Contacts) != 1 || v.Contacts[0].Email != "w7327@example.com" || v.Counts.Accepted != 1 || !v.Counts.Invited.Suppressed || !v.Counts.Declined.Suppressed {
		t.Fatalf("researcher's view: %+v counts %+v", v.Contacts, v.Counts)
	}
	if _, err := f.broker.View(ctx, researcher, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.broker.View(ctx, other, r.ID); code(err) != bildrum.ENOTFOUND {
		t.Fatalf("another researcher saw the request: %v", err)
	}
	ov, err := f.broker.View(ctx, officer, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.Contacts) != 0 || ov.Counts == nil {
		t.Fatalf("permit officer's view: %+v", ov)
	}
	list, err := f.broker.List(ctx, other)
	if err != nil || len(list) != 0 {
		t.Fatalf("another researcher's list: %v %v", list, err)
	}
	events := outboxKinds(t, f.db)
	for kind, want := range map[string]int{recruit.AccessAccept: 1, recruit.AccessDecline: 1, recruit.AccessWithdraw: 1, recruit.AccessRelease: 1} {
		if events[kind] != want {
			t.Errorf("%d %s events, want %d (all: %v)", events[kind], kind, want, events)
		}
	}

	// After the end date nobody can answer.
	f.now = time.Date(2027, 4, 1, 12, 0, 0, 0, time.UTC)
	if _, err := f.broker.Answer(ctx, citizen(cecilia), c[0].ID, false); code(err) != bildrum.ECONFLICT {
		t.Fatalf("answered after the end: %v", err)
	}
	if v, _ := f.broker.View(ctx, officer, r.ID); v.Status != bildrum.RecruitmentClosed {
		t.Fatalf("status after the end: %s", v.Status)
	}
}

func TestCountsHideSmallCellsAndTheirComplement(t *testing.T) {
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name                          string
		in                            bildrum.InvitationCounts
		invited, declined, unanswered *int
	}{
		{"all large", bildrum.InvitationCounts{Invited: 100, Accepted: 30, Declined: 40, Pending: 20, Withdrawn: 10}, n(100), n(50), n(20)},
		{"few declined hides unanswered too", bildrum.InvitationCounts{Invited: 100, Accepted: 30, Declined: 5, Pending: 65}, n(100), nil, nil},
		{"few unanswered hides declined too", bildrum.InvitationCounts{Invited: 100, Accepted: 30, Declined: 65, Pending: 5}, n(100), nil, nil},
		{"few invited", bildrum.InvitationCounts{Invited: 9, Accepted: 3, Declined: 3, Pending: 3}, nil, nil, nil},
		{"none", bildrum.InvitationCounts{}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recruit.Counts(tc.in, 10)
			for _, x := range []struct {
				name string
				got  bildrum.SmallCount
				want *int
			}{{"invited", c.Invited, tc.invited}, {"declined", c.Declined, tc.declined}, {"unanswered", c.Unanswered, tc.unanswered}} {
				if (x.want == nil) != x.got.Suppressed || (x.want != nil && (x.got.Count == nil || *x.got.Count != *x.want)) || x.got.Suppressed != (x.got.Count == nil) {
					t.Errorf("%s = %+v, want %v", x.name, x.got, x.want)
				}
			}
			if c.Accepted != tc.in.Accepted {
				t.Errorf("accepted = %d, want %d", c.Accepted, tc.in.Accepted)
			}
		})
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n recruit.Notification
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil || (n.Email == "" && n.Phone == "") {
			t.Fatalf("notification line %q: %v", sc.Text(), err)
		}
		out = append(out, sc.Text())
	}
	return out
}

// outboxKinds counts the events of the hub's outbox by kind.
func outboxKinds(t *testing.T, db *sqlstore.DB) map[string]int {
	t.Helper()
	events, err := db.AccessEventsAfter(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range events {
		if e.Event.Purpose != bildrum.PurposeRecruitment || e.Event.Person == "" {
			t.Errorf("event %+v", e.Event)
		}
		out[e.Event.Kind]++
	}
	return out
}
