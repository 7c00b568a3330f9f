package query

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/bildrum/bildrum"
)

// memStore is a bildrum.FeasibilityStore in memory that keeps the
// contract, for tests that draw thousands of answers: it counts by the
// specification (bildrum.Criteria.Matches) and keeps answers and budgets
// as the SQL stores do.
type memStore struct {
	mu       sync.Mutex
	episodes []bildrum.ScreeningEpisode
	optOuts  map[bildrum.PersonID][]bildrum.Purpose
	data     int64 // register data version
	consent  int64 // consent replica version
	answers  map[bildrum.FeasibilityKey]bildrum.FeasibilityAnswer
	spent    map[bildrum.Requester]int64 // millionths of ε
	counted  int                         // how many times CountMatching ran
}

func newMemStore(episodes []bildrum.ScreeningEpisode, optOuts map[bildrum.PersonID][]bildrum.Purpose) *memStore {
	return &memStore{episodes: episodes, optOuts: optOuts, data: 1, consent: 1,
		answers: map[bildrum.FeasibilityKey]bildrum.FeasibilityAnswer{}, spent: map[bildrum.Requester]int64{}}
}

// setEpisodes replaces the register, as an import does: a new data version.
func (s *memStore) setEpisodes(episodes []bildrum.ScreeningEpisode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.episodes = episodes
	s.data++
}

func (s *memStore) FeasibilityVersions(context.Context) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data, s.consent, nil
}

func (s *memStore) CountMatching(_ context.Context, c bildrum.Criteria, maxPerWoman int) (bildrum.FeasibilityCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counted++
	per := map[bildrum.PersonID]int{}
	for i := range s.episodes {
		if c.Matches(&s.episodes[i]) {
			per[s.episodes[i].Person]++
		}
	}
	var n int64
	for p, k := range per {
		if slices.Contains(s.optOuts[p], c.Purpose) {
			continue
		}
		if c.Unit == bildrum.UnitExaminations {
			n += int64(min(k, maxPerWoman))
		} else {
			n++
		}
	}
	return bildrum.FeasibilityCount{Count: n, DataVersion: s.data, ConsentVersion: s.consent}, nil
}

func (s *memStore) StoredAnswer(_ context.Context, key bildrum.FeasibilityKey) (bildrum.FeasibilityAnswer, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.answers[key]
	return a, ok, nil
}

func (s *memStore) StoreAnswerAndCharge(_ context.Context, key bildrum.FeasibilityKey, a bildrum.FeasibilityAnswer, r bildrum.Requester, epsilon, budget float64) (bildrum.FeasibilityCharge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored, ok := s.answers[key]; ok {
		return bildrum.FeasibilityCharge{Answer: stored, Spent: float64(s.spent[r]) / 1e6}, nil
	}
	eps := int64(math.Round(epsilon * 1e6))
	if s.spent[r]+eps > int64(math.Round(budget*1e6)) {
		return bildrum.FeasibilityCharge{}, bildrum.Errorf(bildrum.EFORBIDDEN, "privacy budget spent")
	}
	s.answers[key] = a
	s.spent[r] += eps
	return bildrum.FeasibilityCharge{Answer: a, Charged: epsilon, Spent: float64(s.spent[r]) / 1e6}, nil
}

func (s *memStore) FeasibilitySpent(_ context.Context, r bildrum.Requester) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.spent[r]) / 1e6, nil
}
