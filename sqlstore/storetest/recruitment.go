package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// RecruitmentHub is what the recruitment suite needs of a hub's store: the
// store under test, and the access events it recorded, so that the suite
// can check that each write records its events with the change it makes.
type RecruitmentHub interface {
	bildrum.RecruitmentStore
	// RecordedAccesses returns every access event recorded, oldest first.
	RecordedAccesses(ctx context.Context) ([]bildrum.AccessEvent, error)
}

// The researchers and the permit officer of the recruitment fixtures.
var (
	annaResearcher  = bildrum.Requester{Name: "anna.lind", Organisation: "Karolinska Institutet"}
	beritResearcher = bildrum.Requester{Name: "berit.ek", Organisation: "Lunds universitet"}
	hubActor        = bildrum.Principal{Name: "hub", Role: bildrum.RoleHub, Organisation: "Bildrum"}
)

// recruitmentAt is the fixtures' "now": times are given to the store
// explicitly, to the microsecond, as it keeps them.
var recruitmentAt = time.Date(2026, 11, 23, 9, 0, 0, 123456000, time.UTC)

// recruitmentRequest returns a valid request as a researcher submits it,
// checked as the service checks it.
func recruitmentRequest(t *testing.T, id string, by bildrum.Requester, submitted time.Time, maxInvitations int) bildrum.RecruitmentRequest {
	t.Helper()
	in := bildrum.RecruitmentInput{
		Title: "Tomosynthesis for women with dense breasts", Sponsor: "Karolinska Universitetssjukhuset",
		EthicsApproval: "Dnr 2026-01234-01",
		Criteria: bildrum.Criteria{Age: &bildrum.IntRange{Min: 50, Max: 69}, Density: []bildrum.Density{"d", "c"},
			ExamDate: &bildrum.DateRange{From: date("2022-01-01")}},
		InvitationText: "We study whether tomosynthesis finds more cancers in dense breasts. Taking part means one extra examination.",
		MaxInvitations: maxInvitations, Ends: date("2027-06-30"),
	}
	in, err := in.Check(date("2026-11-23"))
	if err != nil {
		t.Fatalf("Check(%+v): %v", in, err)
	}
	return bildrum.RecruitmentRequest{ID: id, RecruitmentInput: in, Researcher: by, SubmittedAt: submitted}
}

// invite returns an invitation as the service makes it for a woman a node
// matched.
func invite(id string, person bildrum.PersonID, region string, created time.Time) bildrum.Invitation {
	return bildrum.Invitation{ID: id, Person: person, Region: region, Created: created}
}

// accessEvent is the event the fixtures record for an invitation.
func accessEvent(kind string, inv bildrum.Invitation) bildrum.AccessEvent {
	return bildrum.AccessEvent{Time: recruitmentAt, Actor: hubActor, Purpose: bildrum.PurposeRecruitment,
		Region: inv.Region, Person: inv.Person, Kind: kind, What: "invitation " + inv.ID}
}

// eventsOf returns an events callback recording one event of kind per
// invitation.
func eventsOf(kind string) func(bildrum.Invitation) []bildrum.AccessEvent {
	return func(inv bildrum.Invitation) []bildrum.AccessEvent {
		return []bildrum.AccessEvent{accessEvent(kind, inv)}
	}
}

// recordedSince returns the access events recorded after the first n.
func recordedSince(t *testing.T, s RecruitmentHub, n int) []bildrum.AccessEvent {
	t.Helper()
	all, err := s.RecordedAccesses(context.Background())
	if err != nil {
		t.Fatalf("RecordedAccesses: %v", err)
	}
	if len(all) < n {
		t.Fatalf("RecordedAccesses: %d events, fewer than the %d recorded before", len(all), n)
	}
	return all[n:]
}

// addRecruitment stores a request and, when approve, approves it.
func addRecruitment(t *testing.T, s RecruitmentHub, r bildrum.RecruitmentRequest, approve bool) {
	t.Helper()
	ctx := context.Background()
	if err := s.AddRecruitment(ctx, r); err != nil {
		t.Fatalf("AddRecruitment(%s): %v", r.ID, err)
	}
	if approve {
		if _, err := s.DecideRecruitment(ctx, r.ID, bildrum.RecruitmentDecision{Approve: true, Reason: "ethics approval in order",
			By: "permit.officer", Organisation: "Socialstyrelsen", At: r.SubmittedAt.Add(time.Hour)}); err != nil {
			t.Fatalf("DecideRecruitment(%s): %v", r.ID, err)
		}
	}
}

// ids returns the IDs of invitations.
func ids(invs []bildrum.Invitation) []string {
	var out []string
	for _, inv := range invs {
		out = append(out, inv.ID)
	}
	return out
}

// RecruitmentStore runs the conformance suite of bildrum.RecruitmentStore.
// open must return an empty hub store for every call.
func RecruitmentStore(t *testing.T, open func(t *testing.T) RecruitmentHub) {
	ctx := context.Background()

	t.Run("AddAndList", func(t *testing.T) {
		s := open(t)
		if got, err := s.Recruitments(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("Recruitments of an empty store = %v, %v; want none", got, err)
		}
		r1 := recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 100)
		r2 := recruitmentRequest(t, "r2", beritResearcher, recruitmentAt.Add(time.Minute), 50)
		r3 := recruitmentRequest(t, "r3", annaResearcher, recruitmentAt.Add(2*time.Minute), 10)
		r3.InvitationText = "Åsa, Märta och Öllegård: ett annat försök."
		r3.Criteria.Regions = []string{"12", "14"}
		for _, r := range []bildrum.RecruitmentRequest{r2, r1, r3} {
			if err := s.AddRecruitment(ctx, r); err != nil {
				t.Fatalf("AddRecruitment(%s): %v", r.ID, err)
			}
		}
		want := r3
		want.Status = bildrum.RecruitmentPending
		got, err := s.Recruitment(ctx, "r3")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Recruitment(r3) mismatch (-want +got):\n%s", diff)
		}
		tests := []struct {
			name string
			by   *bildrum.Requester
			want []string
		}{
			{"all", nil, []string{"r3", "r2", "r1"}},
			{"anna's", &annaResearcher, []string{"r3", "r1"}},
			{"berit's", &beritResearcher, []string{"r2"}},
			{"another organisation's", &bildrum.Requester{Name: "anna.lind", Organisation: "Lunds universitet"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				list, err := s.Recruitments(ctx, tt.by)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range list {
					got = append(got, r.ID)
					if r.Status != bildrum.RecruitmentPending || r.Decision != nil {
						t.Errorf("Recruitments: %s is %s with decision %v, want pending without one", r.ID, r.Status, r.Decision)
					}
				}
				if !cmp.Equal(got, tt.want) {
					t.Errorf("Recruitments(%v) = %v, want %v (newest first)", tt.by, got, tt.want)
				}
			})
		}
		if _, err := s.Recruitment(ctx, "r9"); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("Recruitment(unknown) error = %v, want ENOTFOUND", err)
		}
		if err := s.AddRecruitment(ctx, r1); bildrum.ErrorCode(err) != bildrum.ECONFLICT {
			t.Errorf("AddRecruitment of a taken ID: %v, want ECONFLICT", err)
		}
		decided := recruitmentRequest(t, "r8", annaResearcher, recruitmentAt, 10)
		decided.Status = bildrum.RecruitmentApproved
		for _, tt := range []struct {
			name string
			r    bildrum.RecruitmentRequest
		}{
			{"no ID", recruitmentRequest(t, "", annaResearcher, recruitmentAt, 10)},
			{"no researcher", recruitmentRequest(t, "r7", bildrum.Requester{}, recruitmentAt, 10)},
			{"approved already", decided},
		} {
			if err := s.AddRecruitment(ctx, tt.r); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("AddRecruitment (%s): %v, want EINVALID", tt.name, err)
			}
		}
		if list, _ := s.Recruitments(ctx, nil); len(list) != 3 {
			t.Errorf("after refused additions %d requests, want 3", len(list))
		}
	})

	t.Run("DecideOnce", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), false)
		addRecruitment(t, s, recruitmentRequest(t, "r2", annaResearcher, recruitmentAt, 10), false)
		yes := bildrum.RecruitmentDecision{Approve: true, Reason: "in order", By: "permit.officer", Organisation: "Socialstyrelsen", At: recruitmentAt.Add(time.Hour)}
		no := bildrum.RecruitmentDecision{Reason: "the ethics approval does not cover contact through the register", By: "permit.officer",
			Organisation: "Socialstyrelsen", At: recruitmentAt.Add(2 * time.Hour)}
		tests := []struct {
			name     string
			id       string
			d        bildrum.RecruitmentDecision
			status   bildrum.RecruitmentStatus
			wantCode string
		}{
			{"approve", "r1", yes, bildrum.RecruitmentApproved, ""},
			{"approve again", "r1", yes, bildrum.RecruitmentApproved, bildrum.ECONFLICT},
			{"reject an approved", "r1", no, bildrum.RecruitmentApproved, bildrum.ECONFLICT},
			{"reject", "r2", no, bildrum.RecruitmentRejected, ""},
			{"approve a rejected", "r2", yes, bildrum.RecruitmentRejected, bildrum.ECONFLICT},
			{"unknown", "r9", yes, "", bildrum.ENOTFOUND},
		}
		first := map[string]bildrum.RecruitmentDecision{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.DecideRecruitment(ctx, tt.id, tt.d)
				if code := bildrum.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("DecideRecruitment(%s) error = %v, want code %q", tt.id, err, tt.wantCode)
				}
				if err == nil {
					first[tt.id] = tt.d
					if got.Status != tt.status || got.Decision == nil || !cmp.Equal(*got.Decision, tt.d) {
						t.Errorf("DecideRecruitment(%s) = %s, %+v; want %s, %+v", tt.id, got.Status, got.Decision, tt.status, tt.d)
					}
				} else if tt.wantCode == bildrum.ECONFLICT && !strings.Contains(bildrum.ErrorMessage(err), string(tt.status)) {
					t.Errorf("DecideRecruitment(%s) message %q does not say it is %s", tt.id, bildrum.ErrorMessage(err), tt.status)
				}
				if tt.wantCode == bildrum.ENOTFOUND {
					return
				}
				stored, err := s.Recruitment(ctx, tt.id)
				if err != nil {
					t.Fatal(err)
				}
				if want := first[tt.id]; stored.Status != tt.status || stored.Decision == nil || !cmp.Equal(*stored.Decision, want) {
					t.Errorf("Recruitment(%s) after deciding = %s, %+v; want %s with the first decision %+v", tt.id, stored.Status, stored.Decision, tt.status, want)
				}
			})
		}
	})

	t.Run("RegionsUpsert", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), true)
		down := bildrum.RecruitmentRegion{RegionAnswer: bildrum.RegionAnswer{Region: "14", Status: bildrum.AnswerDown, Reason: "connection refused"}, At: recruitmentAt}
		skane := bildrum.RecruitmentRegion{RegionAnswer: bildrum.RegionAnswer{Region: "12", Status: bildrum.AnswerOK}, ConsentVersion: 41, At: recruitmentAt.Add(time.Second)}
		matched := bildrum.RecruitmentRegion{RegionAnswer: bildrum.RegionAnswer{Region: "14", Status: bildrum.AnswerOK}, ConsentVersion: 42, At: recruitmentAt.Add(time.Minute)}
		for _, g := range []bildrum.RecruitmentRegion{down, skane, matched} {
			if err := s.SetRecruitmentRegion(ctx, "r1", g); err != nil {
				t.Fatalf("SetRecruitmentRegion(%s): %v", g.Region, err)
			}
		}
		want := []bildrum.RecruitmentRegion{skane, matched}
		got, err := s.Recruitment(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Regions); diff != "" {
			t.Errorf("Recruitment regions (-want +got):\n%s", diff)
		}
		list, _ := s.Recruitments(ctx, &annaResearcher)
		if len(list) != 1 || !cmp.Equal(want, list[0].Regions) {
			t.Errorf("Recruitments regions = %+v, want %+v", list, want)
		}
		if err := s.SetRecruitmentRegion(ctx, "r9", skane); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("SetRecruitmentRegion(unknown request) = %v, want ENOTFOUND", err)
		}
		if err := s.SetRecruitmentRegion(ctx, "r1", bildrum.RecruitmentRegion{RegionAnswer: bildrum.RegionAnswer{Region: "99", Status: bildrum.AnswerOK}}); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("SetRecruitmentRegion(region 99) = %v, want EINVALID", err)
		}
	})

	t.Run("AddInvitations", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 5), true)
		w := feasibilityWomen
		at := recruitmentAt.Add(time.Hour)
		tests := []struct {
			name string
			invs []bildrum.Invitation
			want []bildrum.Invitation // stored
		}{
			{"three, one given twice",
				[]bildrum.Invitation{invite("i0", w[0], "12", at), invite("i1", w[1], "12", at), invite("i0b", w[0], "14", at), invite("i2", w[2], "14", at)},
				[]bildrum.Invitation{invite("i0", w[0], "12", at), invite("i1", w[1], "12", at), invite("i2", w[2], "14", at)}},
			{"one invited before, then up to the cap",
				[]bildrum.Invitation{invite("i1c", w[1], "12", at), invite("i3", w[3], "12", at), invite("i4", w[4], "12", at), invite("i5", w[5], "12", at)},
				[]bildrum.Invitation{invite("i3", w[3], "12", at), invite("i4", w[4], "12", at)}},
			{"the cap reached", []bildrum.Invitation{invite("i6", w[6], "12", at)}, nil},
		}
		var wantNotes []bildrum.RecruitmentNotification
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for i := range tt.want {
					tt.want[i].Request, tt.want[i].Status = "r1", bildrum.InvitationPending
				}
				before := len(recordedSince(t, s, 0))
				got, err := s.AddInvitations(ctx, "r1", 5, tt.invs, eventsOf("recruitment-invitation"))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("AddInvitations stored (-want +got):\n%s", diff)
				}
				var wantEvents []bildrum.AccessEvent
				for _, inv := range tt.want {
					wantEvents = append(wantEvents, accessEvent("recruitment-invitation", inv))
					wantNotes = append(wantNotes, bildrum.RecruitmentNotification{Invitation: inv.ID, Person: inv.Person, Created: inv.Created})
					stored, err := s.Invitation(ctx, inv.ID)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(inv, stored); diff != "" {
						t.Errorf("Invitation(%s) (-want +got):\n%s", inv.ID, diff)
					}
				}
				if diff := cmp.Diff(wantEvents, recordedSince(t, s, before), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("access events recorded (-want +got):\n%s", diff)
				}
			})
		}
		if c, err := s.CountInvitations(ctx, "r1"); err != nil || c != (bildrum.InvitationCounts{Invited: 5, Pending: 5}) {
			t.Errorf("CountInvitations = %+v, %v; want 5 invited, 5 pending", c, err)
		}
		notes, err := s.PendingNotifications(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantNotes, notes, cmpopts.IgnoreFields(bildrum.RecruitmentNotification{}, "Seq")); diff != "" {
			t.Errorf("PendingNotifications (-want +got):\n%s", diff)
		}

		// A generated ID for an invitation given without one.
		addRecruitment(t, s, recruitmentRequest(t, "r2", annaResearcher, recruitmentAt, 5), true)
		got, err := s.AddInvitations(ctx, "r2", 5, []bildrum.Invitation{invite("", w[0], "12", at)}, nil)
		if err != nil || len(got) != 1 || len(got[0].ID) != 32 {
			t.Fatalf("AddInvitations without an ID = %+v, %v; want one stored with a generated ID of 32 hex digits", got, err)
		}
		if stored, err := s.Invitation(ctx, got[0].ID); err != nil || stored.Person != w[0] {
			t.Errorf("Invitation(%s) = %+v, %v; want hers", got[0].ID, stored, err)
		}
		if _, err := s.Invitation(ctx, "nosuch"); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("Invitation(unknown) error = %v, want ENOTFOUND", err)
		}
	})

	t.Run("AddInvitationsFailsWhole", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), true)
		w := feasibilityWomen
		tests := []struct {
			name     string
			request  string
			invs     []bildrum.Invitation
			wantCode string
		}{
			{"unknown request", "r9", []bildrum.Invitation{invite("i0", w[0], "12", recruitmentAt)}, bildrum.ENOTFOUND},
			{"bad check digit", "r1", []bildrum.Invitation{invite("i0", w[0], "12", recruitmentAt), invite("i1", "195001182047", "12", recruitmentAt)}, bildrum.EINVALID},
			{"unknown region", "r1", []bildrum.Invitation{invite("i0", w[0], "12", recruitmentAt), invite("i1", w[1], "99", recruitmentAt)}, bildrum.EINVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.AddInvitations(ctx, tt.request, 10, tt.invs, eventsOf("recruitment-invitation"))
				if bildrum.ErrorCode(err) != tt.wantCode || len(got) != 0 {
					t.Errorf("AddInvitations = %v, %v; want none and code %s", got, err, tt.wantCode)
				}
			})
		}
		if c, _ := s.CountInvitations(ctx, "r1"); c != (bildrum.InvitationCounts{}) {
			t.Errorf("after failed additions counts = %+v, want none", c)
		}
		if evs := recordedSince(t, s, 0); len(evs) != 0 {
			t.Errorf("after failed additions %d access events, want none: %+v", len(evs), evs)
		}
		if notes, _ := s.PendingNotifications(ctx, 10); len(notes) != 0 {
			t.Errorf("after failed additions notifications %+v, want none", notes)
		}
	})

	t.Run("Notifications", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), true)
		var invs []bildrum.Invitation
		for i, w := range feasibilityWomen[:4] {
			invs = append(invs, invite(fmt.Sprintf("i%d", i), w, "12", recruitmentAt.Add(time.Duration(i)*time.Second)))
		}
		if _, err := s.AddInvitations(ctx, "r1", 10, invs, nil); err != nil {
			t.Fatal(err)
		}
		page, err := s.PendingNotifications(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := notificationIDs(page); !cmp.Equal(got, []string{"i0", "i1"}) || page[0].Seq >= page[1].Seq {
			t.Fatalf("PendingNotifications(2) = %+v, want i0 and i1, oldest first", page)
		}
		if err := s.NotificationsSent(ctx, []int64{page[0].Seq, page[1].Seq}); err != nil {
			t.Fatalf("NotificationsSent: %v", err)
		}
		if err := s.NotificationsSent(ctx, []int64{page[0].Seq, page[1].Seq + 1000}); err != nil {
			t.Errorf("NotificationsSent of one sent and one unknown: %v, want nil (both left as they are)", err)
		}
		rest, err := s.PendingNotifications(ctx, 10)
		if got := notificationIDs(rest); err != nil || !cmp.Equal(got, []string{"i2", "i3"}) {
			t.Errorf("PendingNotifications after two sent = %v, %v; want i2, i3", got, err)
		}
	})

	t.Run("Answer", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), true)
		w := feasibilityWomen
		if _, err := s.AddInvitations(ctx, "r1", 10, []bildrum.Invitation{invite("i0", w[0], "12", recruitmentAt), invite("i1", w[1], "12", recruitmentAt), invite("i2", w[2], "12", recruitmentAt)}, nil); err != nil {
			t.Fatal(err)
		}
		contact := bildrum.TrialContact{Email: "anna@example.se", Phone: "+46 70 000 00 00"}
		answered := recruitmentAt.Add(24 * time.Hour)
		tests := []struct {
			name     string
			id       string
			status   bildrum.InvitationStatus
			wantCode string
			want     bildrum.InvitationStatus // stored afterwards
			contact  bildrum.TrialContact     // stored afterwards
		}{
			{"accept", "i0", bildrum.InvitationAccepted, "", bildrum.InvitationAccepted, contact},
			{"accept again", "i0", bildrum.InvitationAccepted, bildrum.ECONFLICT, bildrum.InvitationAccepted, contact},
			{"decline an accepted", "i0", bildrum.InvitationDeclined, bildrum.ECONFLICT, bildrum.InvitationAccepted, contact},
			{"decline, contact not kept", "i1", bildrum.InvitationDeclined, "", bildrum.InvitationDeclined, bildrum.TrialContact{}},
			{"accept a declined", "i1", bildrum.InvitationAccepted, bildrum.ECONFLICT, bildrum.InvitationDeclined, bildrum.TrialContact{}},
			{"withdrawn is no answer", "i2", bildrum.InvitationWithdrawn, bildrum.EINVALID, bildrum.InvitationPending, bildrum.TrialContact{}},
			{"pending is no answer", "i2", bildrum.InvitationPending, bildrum.EINVALID, bildrum.InvitationPending, bildrum.TrialContact{}},
			{"unknown", "i9", bildrum.InvitationAccepted, bildrum.ENOTFOUND, "", bildrum.TrialContact{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(recordedSince(t, s, 0))
				ev := bildrum.AccessEvent{Time: answered, Actor: bildrum.Principal{Name: "citizen", Role: bildrum.RoleCitizen}, Purpose: bildrum.PurposeRecruitment,
					Region: "12", Kind: "recruitment-answer", What: "invitation " + tt.id}
				got, err := s.AnswerInvitation(ctx, tt.id, tt.status, contact, answered, []bildrum.AccessEvent{ev})
				if code := bildrum.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("AnswerInvitation(%s, %s) error = %v, want code %q", tt.id, tt.status, err, tt.wantCode)
				}
				var wantEvents []bildrum.AccessEvent
				if err == nil {
					wantEvents = []bildrum.AccessEvent{ev}
					if got.Status != tt.status || !got.Answered.Equal(answered) || got.Contact != tt.contact {
						t.Errorf("AnswerInvitation(%s, %s) = %+v, want %s answered at %v with contact %+v", tt.id, tt.status, got, tt.status, answered, tt.contact)
					}
				} else if tt.wantCode == bildrum.ECONFLICT && !strings.Contains(bildrum.ErrorMessage(err), string(tt.want)) {
					t.Errorf("AnswerInvitation(%s) message %q does not say it is %s", tt.id, bildrum.ErrorMessage(err), tt.want)
				}
				if diff := cmp.Diff(wantEvents, recordedSince(t, s, before), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("access events recorded (-want +got):\n%s", diff)
				}
				if tt.wantCode == bildrum.ENOTFOUND {
					return
				}
				stored, err := s.Invitation(ctx, tt.id)
				if err != nil || stored.Status != tt.want || stored.Contact != tt.contact {
					t.Errorf("Invitation(%s) afterwards = %+v, %v; want %s with contact %+v", tt.id, stored, err, tt.want, tt.contact)
				}
			})
		}
	})

	t.Run("WithdrawAndCount", func(t *testing.T) {
		s := open(t)
		w := feasibilityWomen
		for i, id := range []string{"r1", "r2", "r3"} {
			addRecruitment(t, s, recruitmentRequest(t, id, annaResearcher, recruitmentAt.Add(time.Duration(i)*time.Minute), 10), true)
			if _, err := s.AddInvitations(ctx, id, 10, []bildrum.Invitation{
				invite(id+"-a", w[0], "12", recruitmentAt.Add(time.Duration(i)*time.Hour)),
				invite(id+"-b", w[1], "14", recruitmentAt.Add(time.Duration(i)*time.Hour)),
			}, nil); err != nil {
				t.Fatal(err)
			}
		}
		// She accepted r2's invitation: withdrawing her opt-in leaves it.
		if _, err := s.AnswerInvitation(ctx, "r2-a", bildrum.InvitationAccepted, bildrum.TrialContact{Email: "a@example.se"}, recruitmentAt.Add(5*time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		before := len(recordedSince(t, s, 0))
		at := recruitmentAt.Add(6 * time.Hour)
		got, err := s.WithdrawInvitations(ctx, w[0], at, eventsOf("recruitment-withdrawal"))
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(ids(got), []string{"r3-a", "r1-a"}) {
			t.Errorf("WithdrawInvitations = %v, want her pending ones, r3-a and r1-a, newest first", ids(got))
		}
		var wantEvents []bildrum.AccessEvent
		for _, inv := range got {
			if inv.Status != bildrum.InvitationWithdrawn || !inv.Answered.Equal(at) {
				t.Errorf("withdrawn %s is %s answered %v, want withdrawn at %v", inv.ID, inv.Status, inv.Answered, at)
			}
			wantEvents = append(wantEvents, accessEvent("recruitment-withdrawal", inv))
		}
		if diff := cmp.Diff(wantEvents, recordedSince(t, s, before)); diff != "" {
			t.Errorf("access events recorded (-want +got):\n%s", diff)
		}
		again, err := s.WithdrawInvitations(ctx, w[0], at.Add(time.Hour), eventsOf("recruitment-withdrawal"))
		if err != nil || len(again) != 0 {
			t.Errorf("WithdrawInvitations again = %v, %v; want none", ids(again), err)
		}
		if evs := recordedSince(t, s, before); len(evs) != len(wantEvents) {
			t.Errorf("withdrawing nothing recorded %d events, want none", len(evs)-len(wantEvents))
		}
		list, err := s.Invitations(ctx, w[0])
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, inv := range list {
			statuses = append(statuses, inv.ID+" "+string(inv.Status))
		}
		if want := []string{"r3-a withdrawn", "r2-a accepted", "r1-a withdrawn"}; !cmp.Equal(statuses, want) {
			t.Errorf("Invitations = %v, want %v (newest first)", statuses, want)
		}
		if list, err := s.Invitations(ctx, w[5]); err != nil || len(list) != 0 {
			t.Errorf("Invitations of a woman never invited = %v, %v; want none", list, err)
		}
		s.AnswerInvitation(ctx, "r1-b", bildrum.InvitationDeclined, bildrum.TrialContact{}, at, nil)
		tests := []struct {
			request string
			want    bildrum.InvitationCounts
		}{
			{"r1", bildrum.InvitationCounts{Invited: 2, Declined: 1, Withdrawn: 1}},
			{"r2", bildrum.InvitationCounts{Invited: 2, Accepted: 1, Pending: 1}},
			{"r3", bildrum.InvitationCounts{Invited: 2, Pending: 1, Withdrawn: 1}},
			{"r9", bildrum.InvitationCounts{}},
		}
		for _, tt := range tests {
			if got, err := s.CountInvitations(ctx, tt.request); err != nil || got != tt.want {
				t.Errorf("CountInvitations(%s) = %+v, %v; want %+v", tt.request, got, err, tt.want)
			}
		}
	})

	t.Run("ReleaseContactsOnce", func(t *testing.T) {
		s := open(t)
		addRecruitment(t, s, recruitmentRequest(t, "r1", annaResearcher, recruitmentAt, 10), true)
		w := feasibilityWomen
		var invs []bildrum.Invitation
		for i := range 6 {
			invs = append(invs, invite(fmt.Sprintf("i%d", i), w[i], "12", recruitmentAt))
		}
		if _, err := s.AddInvitations(ctx, "r1", 10, invs, nil); err != nil {
			t.Fatal(err)
		}
		day := func(n int) time.Time { return recruitmentAt.Add(time.Duration(n) * 24 * time.Hour) }
		answer := func(id string, status bildrum.InvitationStatus, at time.Time) {
			t.Helper()
			if _, err := s.AnswerInvitation(ctx, id, status, bildrum.TrialContact{Email: id + "@example.se"}, at, nil); err != nil {
				t.Fatalf("AnswerInvitation(%s): %v", id, err)
			}
		}
		answer("i2", bildrum.InvitationAccepted, day(1))
		answer("i0", bildrum.InvitationAccepted, day(3))
		answer("i3", bildrum.InvitationDeclined, day(2))
		answer("i4", bildrum.InvitationAccepted, day(2))
		tests := []struct {
			name     string
			accept   string // answered before releasing, on day 5
			at       time.Time
			want     []string
			released map[string]time.Time
			events   []string // first released
		}{
			{"first release", "", day(4), []string{"i2", "i4", "i0"},
				map[string]time.Time{"i2": day(4), "i4": day(4), "i0": day(4)}, []string{"i2", "i4", "i0"}},
			{"again", "", day(5), []string{"i2", "i4", "i0"},
				map[string]time.Time{"i2": day(4), "i4": day(4), "i0": day(4)}, nil},
			{"after another accepted", "i5", day(6), []string{"i2", "i4", "i0", "i5"},
				map[string]time.Time{"i2": day(4), "i4": day(4), "i0": day(4), "i5": day(6)}, []string{"i5"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.accept != "" {
					answer(tt.accept, bildrum.InvitationAccepted, day(5))
				}
				before := len(recordedSince(t, s, 0))
				got, err := s.ReleaseContacts(ctx, "r1", tt.at, eventsOf("recruitment-release"))
				if err != nil {
					t.Fatal(err)
				}
				if !cmp.Equal(ids(got), tt.want) {
					t.Errorf("ReleaseContacts = %v, want %v (earliest answer first)", ids(got), tt.want)
				}
				for _, inv := range got {
					if !inv.Released.Equal(tt.released[inv.ID]) || inv.Status != bildrum.InvitationAccepted || inv.Contact.Email != inv.ID+"@example.se" {
						t.Errorf("released %s: %+v, want accepted, released %v, with her e-mail", inv.ID, inv, tt.released[inv.ID])
					}
				}
				var wantEvents []bildrum.AccessEvent
				for _, id := range tt.events {
					inv, _ := s.Invitation(ctx, id)
					wantEvents = append(wantEvents, accessEvent("recruitment-release", inv))
				}
				if diff := cmp.Diff(wantEvents, recordedSince(t, s, before), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("access events recorded (-want +got):\n%s", diff)
				}
			})
		}
		if got, err := s.ReleaseContacts(ctx, "r9", day(7), eventsOf("recruitment-release")); err != nil || len(got) != 0 {
			t.Errorf("ReleaseContacts(unknown) = %v, %v; want none", ids(got), err)
		}
	})

	t.Run("ConcurrentInvitationsKeepTheCap", func(t *testing.T) {
		s := open(t)
		tests := []struct {
			name    string
			max     int
			callers int
			overlap bool // every caller invites the same women
		}{
			{"disjoint women", 7, 4, false},
			{"the same women", 10, 4, true},
			{"room for all", 40, 4, false},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				request := fmt.Sprintf("r%d", i)
				addRecruitment(t, s, recruitmentRequest(t, request, annaResearcher, recruitmentAt, tt.max), true)
				before := len(recordedSince(t, s, 0))
				per := len(feasibilityWomen) / tt.callers
				if tt.overlap {
					per = len(feasibilityWomen)
				}
				results := make([][]bildrum.Invitation, tt.callers)
				errs := make([]error, tt.callers)
				var wg sync.WaitGroup
				for c := range tt.callers {
					var invs []bildrum.Invitation
					for k := range per {
						w := feasibilityWomen[k]
						if !tt.overlap {
							w = feasibilityWomen[c*per+k]
						}
						invs = append(invs, invite(fmt.Sprintf("%s-c%d-%d", request, c, k), w, "12", recruitmentAt))
					}
					wg.Go(func() {
						results[c], errs[c] = s.AddInvitations(ctx, request, tt.max, invs, eventsOf("recruitment-invitation"))
					})
				}
				wg.Wait()
				var all []bildrum.Invitation
				for c := range tt.callers {
					if errs[c] != nil {
						t.Fatalf("concurrent AddInvitations: %v", errs[c])
					}
					all = append(all, results[c]...)
				}
				offered := per * tt.callers
				if tt.overlap {
					offered = per
				}
				want := min(tt.max, offered)
				persons := map[bildrum.PersonID]bool{}
				for _, inv := range all {
					if persons[inv.Person] {
						t.Errorf("%s was invited twice", inv.Person)
					}
					persons[inv.Person] = true
				}
				c, err := s.CountInvitations(ctx, request)
				if err != nil || len(all) != want || c.Invited != want {
					t.Errorf("%d concurrent AddInvitations with max %d stored %d, counted %d (%v); want %d", tt.callers, tt.max, len(all), c.Invited, err, want)
				}
				if evs := recordedSince(t, s, before); len(evs) != want {
					t.Errorf("%d access events recorded, want one per stored invitation, %d", len(evs), want)
				}
			})
		}
	})
}

func notificationIDs(ns []bildrum.RecruitmentNotification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Invitation)
	}
	return out
}

// TrialNode is what the trial-candidate suite needs of a node's store: the
// store under test, and the register and consent replica it matches from.
type TrialNode interface {
	bildrum.TrialCandidateStore
	bildrum.RegisterStore
	bildrum.ConsentReplica
}

// trialReplicaVersion is the consent register version the fixture's
// replica holds.
const trialReplicaVersion = 40

// fillTrial stores the feasibility fixture's register and a consent replica
// in which some of its women opted in to trial contact, one of them opted
// in and out again, some opted out of purposes (which recruitment does not
// heed), and a woman without examinations opted in. It returns who is
// opted in.
func fillTrial(t *testing.T, s TrialNode) ([]bildrum.ScreeningEpisode, map[bildrum.PersonID]bool) {
	t.Helper()
	ctx := context.Background()
	episodes := feasibilityRegister(1)
	if _, err := s.PutEpisodes(ctx, episodes); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	optIn := map[bildrum.PersonID]bool{}
	var recs []bildrum.ConsentRecord
	add := func(w bildrum.PersonID, c bildrum.ConsentChoices) {
		if c.OptOuts == nil {
			c.OptOuts = []bildrum.Purpose{}
		}
		c.CareBlocks = []string{}
		recs = append(recs, bildrum.ConsentRecord{Person: w, Version: int64(len(recs) + 1), ChangedAt: at, ChangedBy: "citizen", Choices: c})
		optIn[w] = c.TrialContact.OptIn
	}
	for i, w := range feasibilityWomen {
		switch i % 4 {
		case 0, 1: // opted in, some with opt-outs besides
			c := bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Email: fmt.Sprintf("w%d@example.se", i)}}
			if i%8 == 0 {
				c.OptOuts = []bildrum.Purpose{bildrum.PurposeResearch}
			}
			add(w, c)
		case 2: // made choices, but not to be contacted
			add(w, bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{bildrum.PurposeInnovation}})
		}
	}
	add(testWomen[0], bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Phone: "+46 70 000 00 00"}})
	if err := s.ApplyConsentChanges(ctx, recs, int64(len(recs)), at); err != nil {
		t.Fatal(err)
	}
	// Woman 1 withdraws her opt-in.
	add(feasibilityWomen[1], bildrum.ConsentChoices{})
	if err := s.ApplyConsentChanges(ctx, recs[len(recs)-1:], trialReplicaVersion, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return episodes, optIn
}

// expectedCandidates are the women TrialCandidates must return, from the
// specification: an examination matches (bildrum.Criteria.Matches) and she
// opted in.
func expectedCandidates(episodes []bildrum.ScreeningEpisode, optIn map[bildrum.PersonID]bool, c bildrum.Criteria) []bildrum.PersonID {
	var out []bildrum.PersonID
	for i := range episodes {
		if p := episodes[i].Person; optIn[p] && c.Matches(&episodes[i]) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// recruitmentCriteria checks criteria as a recruitment request's.
func recruitmentCriteria(t *testing.T, c bildrum.Criteria) bildrum.Criteria {
	t.Helper()
	in := bildrum.RecruitmentInput{Title: "t", Sponsor: "s", EthicsApproval: "e", InvitationText: "x", MaxInvitations: 1,
		Ends: date("2027-01-01"), Criteria: c}
	in, err := in.Check(date("2026-11-23"))
	if err != nil {
		t.Fatalf("Check(%+v): %v", c, err)
	}
	return in.Criteria
}

// TrialCandidateStore runs the conformance suite of
// bildrum.TrialCandidateStore. open must return an empty node store for
// every call.
func TrialCandidateStore(t *testing.T, open func(t *testing.T) TrialNode) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		got, version, err := s.TrialCandidates(ctx, recruitmentCriteria(t, bildrum.Criteria{}))
		if err != nil || len(got) != 0 || version != 0 {
			t.Errorf("TrialCandidates of an empty node = %v, %d, %v; want none at version 0", got, version, err)
		}
	})

	t.Run("MatchesSpecification", func(t *testing.T) {
		s := open(t)
		episodes, optIn := fillTrial(t, s)
		d := func(s string) *bildrum.DateRange {
			from, to, _ := strings.Cut(s, "/")
			return &bildrum.DateRange{From: date(from), To: date(to)}
		}
		tests := []struct {
			name string
			c    bildrum.Criteria
		}{
			{"every opted-in woman", bildrum.Criteria{}},
			{"age 50-69", bildrum.Criteria{Age: &bildrum.IntRange{Min: 50, Max: 69}}},
			{"age from 60", bildrum.Criteria{Age: &bildrum.IntRange{Min: 60}}},
			{"exam dates", bildrum.Criteria{ExamDate: d("2016-03-01/2019-06-30")}},
			{"first round", bildrum.Criteria{Round: bildrum.RoundFirst}},
			{"later rounds", bildrum.Criteria{Round: bildrum.RoundSubsequent}},
			{"birads 4 5", bildrum.Criteria{BIRADS: []bildrum.BIRADS{"4", "5"}}},
			{"density c d", bildrum.Criteria{Density: []bildrum.Density{"c", "d"}}},
			{"any cancer", bildrum.Criteria{Outcomes: []bildrum.Finding{bildrum.FindingScreenInvasive, bildrum.FindingScreenDCIS, bildrum.FindingInterval}}},
			{"benign", bildrum.Criteria{Outcomes: []bildrum.Finding{bildrum.FindingBenign}}},
			{"tumour 10-20", bildrum.Criteria{TumourSizeMM: &bildrum.IntRange{Min: 10, Max: 20}}},
			{"node positive", bildrum.Criteria{NodalStatus: []string{bildrum.NodesPositive}}},
			{"views LCC", bildrum.Criteria{Views: []string{bildrum.ViewLCC}}},
			{"dense, 50-69, recent", bildrum.Criteria{Regions: []string{"12"}, Age: &bildrum.IntRange{Min: 50, Max: 69},
				ExamDate: d("2014-01-01/2025-12-31"), Density: []bildrum.Density{"c", "d"}}},
			{"nothing matches", bildrum.Criteria{Age: &bildrum.IntRange{Min: 100}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := recruitmentCriteria(t, tt.c)
				got, version, err := s.TrialCandidates(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(expectedCandidates(episodes, optIn, c), got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("TrialCandidates(%s) (-want +got):\n%s", c.Canonical(), diff)
				}
				if version != trialReplicaVersion {
					t.Errorf("TrialCandidates(%s) version = %d, want the replica's %d", c.Canonical(), version, trialReplicaVersion)
				}
				for _, p := range got {
					if !optIn[p] {
						t.Errorf("TrialCandidates(%s) returned %s, who did not opt in", c.Canonical(), p)
					}
				}
			})
		}
		all, _, _ := s.TrialCandidates(ctx, recruitmentCriteria(t, bildrum.Criteria{}))
		if slices.Contains(all, feasibilityWomen[1]) || slices.Contains(all, testWomen[0]) || !slices.Contains(all, feasibilityWomen[0]) {
			t.Errorf("TrialCandidates(all) = %v: want woman 0 (opted in), not woman 1 (opted out again) nor a woman without examinations", all)
		}
		// Random combinations of every criterion against the specification.
		r := rand.New(rand.NewPCG(5, 8))
		for range 200 {
			c := randomCriteria(r)
			c = recruitmentCriteria(t, c)
			got, _, err := s.TrialCandidates(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(expectedCandidates(episodes, optIn, c), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("TrialCandidates(%s) (-want +got):\n%s", c.Canonical(), diff)
			}
		}
	})

	t.Run("RefusesUncheckedCriteria", func(t *testing.T) {
		s := open(t)
		fillTrial(t, s)
		tests := []struct {
			name string
			c    bildrum.Criteria
		}{
			{"purpose research", bildrum.Criteria{Purpose: bildrum.PurposeResearch, Unit: bildrum.UnitWomen}},
			{"no purpose", bildrum.Criteria{Unit: bildrum.UnitWomen}},
			{"examinations", bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Unit: bildrum.UnitExaminations}},
			{"unknown round", bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Unit: bildrum.UnitWomen, Round: `'; DROP TABLE episodes; --`}},
			{"unknown view", bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Unit: bildrum.UnitWomen, Views: []string{`" OR 1=1 --`}}},
		}
		for _, tt := range tests {
			if got, _, err := s.TrialCandidates(ctx, tt.c); bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("TrialCandidates(%s) = %v, %v; want EINVALID", tt.name, got, err)
			}
		}
		// Values carrying SQL match no row and change nothing.
		for _, v := range []string{`'; DROP TABLE consent_replica; --`, `' OR '1'='1`, `%`, `?`, `$1`} {
			c := bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Unit: bildrum.UnitWomen, Density: []bildrum.Density{bildrum.Density(v)}}
			if got, _, err := s.TrialCandidates(ctx, c); err != nil || len(got) != 0 {
				t.Errorf("TrialCandidates(density %q) = %v, %v; want none", v, got, err)
			}
		}
		if got, _, err := s.TrialCandidates(ctx, recruitmentCriteria(t, bildrum.Criteria{})); err != nil || len(got) == 0 {
			t.Errorf("TrialCandidates after the attempts = %v, %v; want the opted-in women still", got, err)
		}
	})

	t.Run("CancelledFails", func(t *testing.T) {
		s := open(t)
		fillTrial(t, s)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.TrialCandidates(cctx, recruitmentCriteria(t, bildrum.Criteria{})); err == nil {
			t.Errorf("TrialCandidates with a cancelled context succeeded")
		}
	})
}
