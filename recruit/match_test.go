package recruit_test

import (
	"context"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/recruit"
)

// fakeCandidates is a node's register and replica reduced to the answer.
type fakeCandidates struct {
	persons []bildrum.PersonID
	asked   []bildrum.Criteria
}

func (f *fakeCandidates) TrialCandidates(ctx context.Context, c bildrum.Criteria) ([]bildrum.PersonID, int64, error) {
	f.asked = append(f.asked, c)
	return f.persons, 42, nil
}

type fakeRecorder struct{ events []bildrum.AccessEvent }

func (f *fakeRecorder) RecordAccesses(ctx context.Context, events []bildrum.AccessEvent) error {
	f.events = append(f.events, events...)
	return nil
}

func TestMatcher(t *testing.T) {
	fresh := func(ctx context.Context, p bildrum.Purpose) (bildrum.ReplicaState, error) {
		return bildrum.ReplicaState{Version: 42}, nil
	}
	stale := func(ctx context.Context, p bildrum.Purpose) (bildrum.ReplicaState, error) {
		return bildrum.ReplicaState{}, bildrum.Errorf(bildrum.EUNAVAILABLE, "replica last confirmed 11m0s ago")
	}
	req := bildrum.TrialMatchRequest{Request: "rec-1", Title: "MR-studien", Researcher: bildrum.RequesterOf(researcher),
		Criteria: bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Density: []bildrum.Density{"d"}}, Ends: bildrum.Date{Year: 2027, Month: 3, Day: 31}}
	now := func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name   string
		fresh  func(context.Context, bildrum.Purpose) (bildrum.ReplicaState, error)
		mutate func(*bildrum.TrialMatchRequest)
		want   string
	}{
		{"stale replica", stale, nil, bildrum.EUNAVAILABLE},
		{"feasibility purpose", fresh, func(r *bildrum.TrialMatchRequest) { r.Criteria.Purpose = bildrum.PurposeResearch }, bildrum.EINVALID},
		{"ended", fresh, func(r *bildrum.TrialMatchRequest) { r.Ends = bildrum.Date{Year: 2026, Month: 11, Day: 22} }, bildrum.EINVALID},
		{"no researcher", fresh, func(r *bildrum.TrialMatchRequest) { r.Researcher = bildrum.Requester{} }, bildrum.EINVALID},
		{"bad density", fresh, func(r *bildrum.TrialMatchRequest) {
			r.Criteria.Density = []bildrum.Density{"x'; DROP TABLE episodes; --"}
		}, bildrum.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, rec := &fakeCandidates{persons: []bildrum.PersonID{anna}}, &fakeRecorder{}
			m := &recruit.Matcher{Region: "12", Store: store, Fresh: tc.fresh, Recorder: rec, Now: now}
			r := req
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			if _, err := m.Match(t.Context(), r); bildrum.ErrorCode(err) != tc.want {
				t.Fatalf("Match = %v, want code %s", err, tc.want)
			}
			if len(store.asked) != 0 || len(rec.events) != 0 {
				t.Fatalf("a refused match read the register (%d) or recorded events (%d)", len(store.asked), len(rec.events))
			}
		})
	}

	store, rec := &fakeCandidates{persons: []bildrum.PersonID{anna, berit}}, &fakeRecorder{}
	m := &recruit.Matcher{Region: "12", Store: store, Fresh: fresh, Recorder: rec, Now: now}
	ans, err := m.Match(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Region != "12" || ans.ConsentVersion != 42 || len(ans.Persons) != 2 {
		t.Fatalf("answer %+v", ans)
	}
	if len(rec.events) != 2 || rec.events[0].Kind != recruit.AccessMatch || rec.events[0].Person != anna ||
		rec.events[0].Actor.Role != bildrum.RoleResearcher || rec.events[0].Region != "12" || rec.events[0].Purpose != bildrum.PurposeRecruitment {
		t.Fatalf("events %+v", rec.events)
	}
	if store.asked[0].Unit != bildrum.UnitWomen {
		t.Fatalf("criteria reached the store unchecked: %+v", store.asked[0])
	}
}
