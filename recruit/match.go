package recruit

import (
	"context"
	"fmt"
	"time"

	"github.com/bildrum/bildrum"
)

// accessRecorder keeps a node's access events, many at once.
type accessRecorder interface {
	RecordAccesses(ctx context.Context, events []bildrum.AccessEvent) error
}

// Matcher matches recruitment requests at a node: the women of its
// register who meet the criteria and, in its consent replica, opted in to
// trial contact. It refuses while the replica is too old to trust (fail
// closed), and records a match event for every woman before it names her.
type Matcher struct {
	Region string
	Store  bildrum.TrialCandidateStore
	// Fresh returns the replica's state when it may be used for a purpose,
	// else why not (consent.Checker.Fresh).
	Fresh    func(ctx context.Context, purpose bildrum.Purpose) (bildrum.ReplicaState, error)
	Recorder accessRecorder
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Match answers the hub's matching call for one approved request.
func (m *Matcher) Match(ctx context.Context, req bildrum.TrialMatchRequest) (bildrum.TrialMatchAnswer, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	if req.Request == "" || len(req.Request) > 64 || len(req.Title) > 1000 {
		return bildrum.TrialMatchAnswer{}, bildrum.Errorf(bildrum.EINVALID, "recruitment match: name the request (at most 64 characters) and its title (at most 1000)")
	}
	if err := req.Researcher.Check(); err != nil {
		return bildrum.TrialMatchAnswer{}, err
	}
	c, err := req.Criteria.CheckRecruitment()
	if err != nil {
		return bildrum.TrialMatchAnswer{}, err
	}
	if !req.Ends.IsZero() && req.Ends.Before(bildrum.DateOf(now().In(stockholm))) {
		return bildrum.TrialMatchAnswer{}, bildrum.Errorf(bildrum.EINVALID, "recruitment request %s ended %s: nothing to match", req.Request, req.Ends)
	}
	if _, err := m.Fresh(ctx, bildrum.PurposeRecruitment); err != nil {
		return bildrum.TrialMatchAnswer{}, err
	}
	persons, version, err := m.Store.TrialCandidates(ctx, c)
	if err != nil {
		return bildrum.TrialMatchAnswer{}, fmt.Errorf("recruitment match %s: %w", req.Request, err)
	}
	at := now()
	actor := bildrum.Principal{Name: req.Researcher.Name, Role: bildrum.RoleResearcher, Organisation: req.Researcher.Organisation}
	what := fmt.Sprintf("matched for %q (recruitment request %s) by the criteria %s", req.Title, req.Request, c.Canonical())
	events := make([]bildrum.AccessEvent, len(persons))
	for i, p := range persons {
		events[i] = bildrum.AccessEvent{Time: at, Actor: actor, Purpose: bildrum.PurposeRecruitment,
			Region: m.Region, Person: p, Kind: AccessMatch, What: what}
	}
	if err := m.Recorder.RecordAccesses(ctx, events); err != nil {
		return bildrum.TrialMatchAnswer{}, fmt.Errorf("recruitment match %s: record the matches: %w", req.Request, err)
	}
	if persons == nil {
		persons = []bildrum.PersonID{}
	}
	return bildrum.TrialMatchAnswer{Region: m.Region, ConsentVersion: version, Persons: persons}, nil
}
