package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
)

// PathRecruitmentMatch is where the hub asks a node to match an approved
// recruitment request (docs/recruitment.md).
const PathRecruitmentMatch = "/federation/v1/recruitment/match"

// Bounds of the matching call: the request is criteria and a title; the
// answer lists up to a region's whole opted-in population (about 16 bytes
// a woman).
const (
	maxMatchRequest = 64 << 10
	maxMatchAnswer  = 64 << 20
)

// TrialMatcher is a node's matching service, as recruit.Matcher provides it.
type TrialMatcher interface {
	Match(ctx context.Context, req bildrum.TrialMatchRequest) (bildrum.TrialMatchAnswer, error)
}

// RecruitmentRoutes adds matching to a node's federation mux; only the hub
// may call:
//
//	POST /federation/v1/recruitment/match  {"request", "title", "researcher", "criteria", "ends"}
//
// The answer names the women who match and opted in to trial contact, and
// nothing else of them. Errors are problem details: 400 for criteria the
// node refuses, 503 when its consent replica is too old to say who opted in.
func RecruitmentRoutes(mux *http.ServeMux, m TrialMatcher, log *slog.Logger) {
	mux.HandleFunc("POST "+PathRecruitmentMatch, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		var req bildrum.TrialMatchRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMatchRequest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, bildrum.Errorf(bildrum.EINVALID, "recruitment match request: %v", err))
			return
		}
		ans, err := m.Match(r.Context(), req)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, ans)
	}, "hub"))
}

// MatchRecruitment asks the nodes of regions to match an approved request,
// each under a deadline long enough for a large region, and returns one
// result per region asked, in region order: ok with the women matched, or
// down, timeout or refused and why. A region without a node is refused.
func (h *Hub) MatchRecruitment(ctx context.Context, req bildrum.TrialMatchRequest, regions []string) ([]Result[bildrum.TrialMatchAnswer], error) {
	nodes, absent, err := h.targets(ctx, regions)
	if err != nil {
		return nil, fmt.Errorf("match recruitment %s: %w", req.Request, err)
	}
	results := FanOut(ctx, nodes, h.timeout()*10, func(ctx context.Context, n bildrum.Node) (bildrum.TrialMatchAnswer, error) {
		var ans bildrum.TrialMatchAnswer
		if err := h.Client.postLimit(ctx, NodeIdentity(n.Region), nodeBase(n)+PathRecruitmentMatch, req, &ans, maxMatchAnswer); err != nil {
			return ans, err
		}
		if ans.Region != n.Region {
			return ans, fmt.Errorf("node of region %s answered for region %q", n.Region, ans.Region)
		}
		for _, p := range ans.Persons {
			if _, err := bildrum.ParsePersonID(string(p)); err != nil {
				return ans, fmt.Errorf("node of region %s sent a bad identity number: %s", n.Region, bildrum.ErrorMessage(err))
			}
		}
		return ans, nil
	})
	for _, r := range absent {
		results = append(results, Result[bildrum.TrialMatchAnswer]{RegionAnswer: bildrum.RegionAnswer{Region: r, Status: bildrum.AnswerRefused, Reason: notInDirectory}})
	}
	slices.SortFunc(results, func(a, b Result[bildrum.TrialMatchAnswer]) int { return strings.Compare(a.Region, b.Region) })
	return results, nil
}
