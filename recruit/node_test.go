package recruit_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/recruit"
	"github.com/bildrum/bildrum/sqlstore"
)

// TestMatcherOnARealNode matches on a node's own store with the node's
// consent check: only women opted in by the replica are named, every one
// with a match event in the outbox, and a replica older than the bound
// stops matching altogether.
func TestMatcherOnARealNode(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "node.db"), sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exam := bildrum.Date{Year: 2024, Month: 5, Day: 2}
	var episodes []bildrum.ScreeningEpisode
	for i, w := range []bildrum.PersonID{anna, berit, cecilia, doris} {
		episodes = append(episodes, bildrum.ScreeningEpisode{ID: "12-r" + string(w), Person: w, Region: "12", Unit: "12-MAL",
			Round: 3, Invited: exam.AddDays(-20), Attended: true, Examined: exam.AddDays(i), Views: bildrum.StandardViews(),
			Reader1: "1", Reader2: "1", Consensus: "1", Density: "c", ResultDay: exam.AddDays(i + 10)})
	}
	if _, err := db.PutEpisodes(ctx, episodes); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	optIn := bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Email: "a@example.com"}}
	if err := db.ApplyConsentChanges(ctx, []bildrum.ConsentRecord{
		{Person: anna, Choices: optIn, Version: 1, ChangedAt: now, ChangedBy: "anna"},
		{Person: berit, Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{bildrum.PurposeResearch}}, Version: 2, ChangedAt: now, ChangedBy: "berit"},
		{Person: cecilia, Choices: optIn, Version: 3, ChangedAt: now, ChangedBy: "cecilia"},
	}, 3, now.Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock := now
	checker := &consent.Checker{Replica: db, Region: "12", MaxAge: 5 * time.Minute, Now: func() time.Time { return clock }}
	m := &recruit.Matcher{Region: "12", Store: db, Fresh: checker.Fresh, Recorder: db, Now: func() time.Time { return clock }}
	req := bildrum.TrialMatchRequest{Request: "rec-1", Title: "MR-studien", Researcher: bildrum.RequesterOf(researcher),
		Criteria: bildrum.Criteria{Purpose: bildrum.PurposeRecruitment, Density: []bildrum.Density{"c"}}, Ends: bildrum.Date{Year: 2027, Month: 1, Day: 1}}
	ans, err := m.Match(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ans.Persons, []bildrum.PersonID{anna, cecilia}) || ans.ConsentVersion != 3 {
		t.Fatalf("matched %v at version %d, want anna and cecilia (opted in) at 3", ans.Persons, ans.ConsentVersion)
	}
	events, err := db.AccessEventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Event.Kind != recruit.AccessMatch {
		t.Fatalf("outbox %+v, want a match event for each woman named", events)
	}

	clock = now.Add(10 * time.Minute) // the hub has not confirmed the replica since
	if _, err := m.Match(ctx, req); bildrum.ErrorCode(err) != bildrum.EUNAVAILABLE {
		t.Fatalf("stale replica: %v, want matching refused", err)
	}
	if events, _ := db.AccessEventsAfter(ctx, 0, 100); len(events) != 2 {
		t.Fatalf("a refused match recorded events: %d", len(events))
	}
}
