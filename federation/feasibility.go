package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
)

// Paths of feasibility counts on a node (docs/feasibility.md).
const (
	PathFeasibility       = "/federation/v1/feasibility"
	PathFeasibilityBudget = "/federation/v1/feasibility/budget"
)

// maxFeasibilityRequest caps the body of one feasibility request.
const maxFeasibilityRequest = 64 << 10

// FeasibilityNode is a node's feasibility service, as query.Node provides
// it: it answers a request with a signed count and says what a requester's
// budget holds.
type FeasibilityNode interface {
	Feasibility(ctx context.Context, req bildrum.FeasibilityRequest) (bildrum.NodeFeasibility, error)
	Budget(ctx context.Context, r bildrum.Requester) (bildrum.FeasibilityBudget, error)
}

// FeasibilityRoutes adds the feasibility protocol to a node's federation
// mux; only the hub may call:
//
//	POST /federation/v1/feasibility         {"criteria": {…}, "query_hash": "…", "requester": {"name", "organisation"}}
//	GET  /federation/v1/feasibility/budget?name=…&organisation=…
//
// Errors are problem details: 400 for criteria the node refuses, 403 when
// the requester's budget cannot pay, 503 when the node's consent replica is
// too old for secondary use.
func FeasibilityRoutes(mux *http.ServeMux, node FeasibilityNode, log *slog.Logger) {
	mux.HandleFunc("POST "+PathFeasibility, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		var req bildrum.FeasibilityRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFeasibilityRequest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, bildrum.Errorf(bildrum.EINVALID, "feasibility request: %v", err))
			return
		}
		ans, err := node.Feasibility(r.Context(), req)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, ans)
	}, "hub"))
	mux.HandleFunc("GET "+PathFeasibilityBudget, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		b, err := node.Budget(r.Context(), bildrum.Requester{Name: q.Get("name"), Organisation: q.Get("organisation")})
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, b)
	}, "hub"))
}

// postIdempotent is post for calls that are safe to repeat: a failure to
// reach the part is retried with backoff, as Get does. A feasibility
// request is such a call, since a node answers a repeated question with its
// stored answer and charges it once.
func (c *Client) postIdempotent(ctx context.Context, id Identity, url string, v, out any) error {
	retries := c.Retries
	if retries == 0 {
		retries = 2
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := c.post(ctx, id, url, v, out)
		var remote *RemoteError
		if err == nil || attempt >= retries || errors.As(err, &remote) || ctx.Err() != nil || !isUnreachable(err) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

// nodeBase is a node's base URL, from its federation URL.
func nodeBase(n bildrum.Node) string { return strings.TrimSuffix(n.Federation, "/federation/v1") }

// Feasibility asks a node for a feasibility count and checks its answer:
// signed by the key the node names, for the node's own region.
func (c *Client) Feasibility(ctx context.Context, n bildrum.Node, req bildrum.FeasibilityRequest) (bildrum.NodeFeasibility, error) {
	var ans bildrum.NodeFeasibility
	if err := c.postIdempotent(ctx, NodeIdentity(n.Region), nodeBase(n)+PathFeasibility, req, &ans); err != nil {
		return ans, err
	}
	if err := checkAnswer(ans, n.Region); err != nil {
		return ans, err
	}
	return ans, nil
}

// checkAnswer verifies a node's signature over its answer, and that the
// answer is about the node's region.
func checkAnswer(ans bildrum.NodeFeasibility, region string) error {
	v, err := note.NewVerifier(ans.VKey)
	if err != nil {
		return fmt.Errorf("node of region %s sent a bad verifier key: %v", region, err)
	}
	n, err := note.Open([]byte(ans.Answer.Signed), note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("answer of region %s is not signed by its key %s: %v", region, v.Name(), err)
	}
	text, err := json.Marshal(ans.Answer.Provenance)
	if err != nil {
		return err
	}
	if n.Text != string(text)+"\n" {
		return fmt.Errorf("answer of region %s differs from what it signed", region)
	}
	p := ans.Answer.Provenance
	if p.Region != region || p.Key != v.Name() {
		return fmt.Errorf("answer for region %q signed by %q came from the node of region %s", p.Region, p.Key, region)
	}
	if p.Suppressed != (p.Count == nil) || (p.Count == nil) != (p.Interval == nil) || (p.Count != nil && *p.Count < p.Threshold) {
		return fmt.Errorf("answer of region %s breaks the small-cell rule: count %v, suppressed %v, threshold %d", region, p.Count, p.Suppressed, p.Threshold)
	}
	return nil
}

// Budget asks a node for a requester's privacy budget.
func (c *Client) Budget(ctx context.Context, n bildrum.Node, r bildrum.Requester) (bildrum.FeasibilityBudget, error) {
	var b bildrum.FeasibilityBudget
	u := nodeBase(n) + PathFeasibilityBudget + "?" + url.Values{"name": {r.Name}, "organisation": {r.Organisation}}.Encode()
	if _, err := c.Get(ctx, NodeIdentity(n.Region), u, &b); err != nil {
		return b, err
	}
	if b.Region != n.Region {
		return b, fmt.Errorf("node at %s says it serves region %q, not %s", n.Federation, b.Region, n.Region)
	}
	return b, nil
}

// targets returns the nodes to ask: those of regions, or every node when
// regions is empty, in region order, and the regions named that have no
// node in the directory.
func (h *Hub) targets(ctx context.Context, regions []string) ([]bildrum.Node, []string, error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(regions) == 0 {
		return nodes, nil, nil
	}
	var asked []bildrum.Node
	var absent []string
	for _, r := range regions {
		i := slices.IndexFunc(nodes, func(n bildrum.Node) bool { return n.Region == r })
		if i < 0 {
			absent = append(absent, r)
			continue
		}
		asked = append(asked, nodes[i])
	}
	return asked, absent, nil
}

// notInDirectory is the reason given for a region asked that has no node.
const notInDirectory = "no node of this region is in the federation's directory"

// Feasibility fans a feasibility request out to the regions its criteria
// name (every node when they name none), each under the per-node deadline,
// and returns one line per region asked and the total (DESIGN.md, flow 3).
//
// req.Criteria should be the canonical criteria of query.ParseCriteria and
// req.QueryHash their hash: each node parses and checks them again and
// refuses a question it hashes differently. A region's line is ok only
// when its answer's signature verifies with the key it sent and the answer
// is for that region; otherwise it says down, timeout or refused, and why.
//
// The total sums the counts the regions released. Regions that answered
// but suppressed their count, and regions that did not answer, are listed
// beside it and are not in it: the total then covers part of the question
// only, and Complete is false whenever a region asked did not answer. Its
// interval is the 95 % interval of the summed noise (sumInterval).
func (h *Hub) Feasibility(ctx context.Context, req bildrum.FeasibilityRequest) (bildrum.FeasibilityResult, error) {
	if err := req.Requester.Check(); err != nil {
		return bildrum.FeasibilityResult{}, err
	}
	var sel struct {
		Regions []string `json:"regions"`
	}
	if err := json.Unmarshal(req.Criteria, &sel); err != nil {
		return bildrum.FeasibilityResult{}, bildrum.Errorf(bildrum.EINVALID, "criteria: want a JSON object with a list of regions or none: %v", err)
	}
	for _, r := range sel.Regions {
		if _, err := bildrum.RegionByCode(r); err != nil {
			return bildrum.FeasibilityResult{}, err
		}
	}
	nodes, absent, err := h.targets(ctx, sel.Regions)
	if err != nil {
		return bildrum.FeasibilityResult{}, fmt.Errorf("feasibility: %w", err)
	}
	res := bildrum.FeasibilityResult{QueryHash: req.QueryHash, Criteria: req.Criteria, Requester: req.Requester, AskedAt: h.Client.now().UTC()}
	results := FanOut(ctx, nodes, h.timeout(), func(ctx context.Context, n bildrum.Node) (bildrum.NodeFeasibility, error) {
		return h.Client.Feasibility(ctx, n, req)
	})
	for _, r := range results {
		line := bildrum.FeasibilityRegion{RegionAnswer: r.RegionAnswer}
		if r.Status == bildrum.AnswerOK {
			line = regionLine(r.RegionAnswer, r.Value)
		}
		res.Regions = append(res.Regions, line)
	}
	for _, r := range absent {
		res.Regions = append(res.Regions, bildrum.FeasibilityRegion{RegionAnswer: bildrum.RegionAnswer{Region: r, Status: bildrum.AnswerDown, Reason: notInDirectory}})
	}
	slices.SortFunc(res.Regions, func(a, b bildrum.FeasibilityRegion) int { return strings.Compare(a.Region, b.Region) })

	// Every answer must be to the same question.
	for i := range res.Regions {
		line := &res.Regions[i]
		if line.Status != bildrum.AnswerOK {
			continue
		}
		if res.QueryHash == "" {
			res.QueryHash = line.Provenance.QueryHash
		} else if line.Provenance.QueryHash != res.QueryHash {
			*line = bildrum.FeasibilityRegion{RegionAnswer: bildrum.RegionAnswer{Region: line.Region, Status: bildrum.AnswerRefused,
				Reason: fmt.Sprintf("answered query %s, not %s: the node reads the criteria differently", line.Provenance.QueryHash, res.QueryHash)}}
		}
	}
	res.Total = total(res.Regions)
	for i := range res.Regions {
		line := &res.Regions[i]
		if region, err := bildrum.RegionByCode(line.Region); err == nil {
			line.Name = region.Name
		}
		if line.Status == bildrum.AnswerOK {
			res.Answered++
		}
	}
	res.Asked = len(res.Regions)
	res.Complete = res.Answered == res.Asked
	if h.Log != nil {
		h.Log.Info("feasibility", "query", res.QueryHash, "requester", req.Requester.Name, "organisation", req.Requester.Organisation,
			"asked", res.Asked, "answered", res.Answered)
	}
	return res, nil
}

// regionLine is the result line of a region that answered.
func regionLine(a bildrum.RegionAnswer, v bildrum.NodeFeasibility) bildrum.FeasibilityRegion {
	p := v.Answer.Provenance
	remaining := v.Remaining
	return bildrum.FeasibilityRegion{
		RegionAnswer: a, Count: p.Count, Suppressed: p.Suppressed, Interval: p.Interval,
		Charged: v.Charged, Remaining: &remaining, Provenance: &p, Signed: v.Answer.Signed, VKey: v.VKey,
	}
}

// total sums the released counts of the lines, listing the regions in the
// sum, those suppressed and those missing.
func total(lines []bildrum.FeasibilityRegion) bildrum.FeasibilityTotal {
	t := bildrum.FeasibilityTotal{Regions: []string{}, Suppressed: []string{}, Missing: []string{}}
	var parts []bildrum.Provenance
	var sum int64
	for _, l := range lines {
		switch {
		case l.Status != bildrum.AnswerOK:
			t.Missing = append(t.Missing, l.Region)
		case l.Suppressed:
			t.Suppressed = append(t.Suppressed, l.Region)
		default:
			t.Regions = append(t.Regions, l.Region)
			parts = append(parts, *l.Provenance)
			sum += *l.Count
		}
	}
	if len(parts) == 0 {
		return t
	}
	t.Count = &sum
	lo, hi := sumInterval(parts)
	t.Interval = &[2]int64{lo, hi}
	return t
}

// sumInterval returns the 95 % interval of the true sum behind the sum of
// released noisy counts. Each count's noise is the library's discrete
// Laplace noise of scale b = sensitivity/ε, modelled as a Laplace variable
// rounded to an integer; the noises are independent, so the noise of the
// sum is their convolution, computed exactly on the integers (tails below
// 1e-13 cut), and the interval is the sum less the 97.5 % and 2.5 %
// quantiles of that noise, its lower end raised to 0. A single count keeps
// its node's own interval. Intervals describe the noise only; they do not
// correct for the selection of counts above the threshold.
func sumInterval(parts []bildrum.Provenance) (lo, hi int64) {
	var sum int64
	for _, p := range parts {
		sum += *p.Count
	}
	if len(parts) == 1 && parts[0].Interval != nil {
		return parts[0].Interval[0], parts[0].Interval[1]
	}
	pmf, offset := []float64{1}, 0 // pmf[i] is P(noise = i - offset)
	for _, p := range parts {
		b := float64(p.Sensitivity) / p.Epsilon
		next, k := roundedLaplace(b)
		pmf = convolve(pmf, next)
		offset += k
		pmf, offset = trim(pmf, offset, 1e-13)
	}
	qlo, qhi := quantile(pmf, offset, 0.025), quantile(pmf, offset, 0.975)
	return max(0, sum-qhi), sum - qlo
}

// roundedLaplace returns the distribution of a Laplace variable of scale b
// rounded to the nearest integer, on -k..k, where k leaves out less than
// 1e-13 of the mass, and k.
func roundedLaplace(b float64) ([]float64, int) {
	if !(b > 0) || math.IsInf(b, 0) {
		return []float64{1}, 0
	}
	k := int(math.Ceil(b*math.Log(1e13))) + 1
	cdf := func(x float64) float64 {
		if x < 0 {
			return 0.5 * math.Exp(x/b)
		}
		return 1 - 0.5*math.Exp(-x/b)
	}
	out := make([]float64, 2*k+1)
	for i := range out {
		x := float64(i - k)
		out[i] = cdf(x+0.5) - cdf(x-0.5)
	}
	return out, k
}

func convolve(a, b []float64) []float64 {
	out := make([]float64, len(a)+len(b)-1)
	for i, x := range a {
		if x == 0 {
			continue
		}
		for j, y := range b {
			out[i+j] += x * y
		}
	}
	return out
}

// trim cuts tails holding less than eps each from a distribution.
func trim(pmf []float64, offset int, eps float64) ([]float64, int) {
	lo, mass := 0, 0.0
	for lo < len(pmf)-1 && mass+pmf[lo] < eps {
		mass += pmf[lo]
		lo++
	}
	hi, mass := len(pmf)-1, 0.0
	for hi > lo && mass+pmf[hi] < eps {
		mass += pmf[hi]
		hi--
	}
	return pmf[lo : hi+1], offset - lo
}

// quantile returns the smallest value whose cumulative probability reaches q.
func quantile(pmf []float64, offset int, q float64) int64 {
	total := 0.0
	for _, p := range pmf {
		total += p
	}
	cum := 0.0
	for i, p := range pmf {
		cum += p / total
		if cum >= q-1e-12 {
			return int64(i - offset)
		}
	}
	return int64(len(pmf) - 1 - offset)
}

// RemainingBudgets asks every node what remains of a requester's privacy
// budget there, one line per region; a region that does not answer has
// null numbers and says why.
func (h *Hub) RemainingBudgets(ctx context.Context, r bildrum.Requester) ([]bildrum.RegionBudget, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("budgets: %w", err)
	}
	results := FanOut(ctx, nodes, h.timeout(), func(ctx context.Context, n bildrum.Node) (bildrum.FeasibilityBudget, error) {
		return h.Client.Budget(ctx, n, r)
	})
	out := make([]bildrum.RegionBudget, len(results))
	for i, res := range results {
		out[i] = bildrum.RegionBudget{RegionAnswer: res.RegionAnswer}
		if res.Status == bildrum.AnswerOK {
			b := res.Value
			out[i].Budget, out[i].Spent, out[i].Remaining = &b.Budget, &b.Spent, &b.Remaining
		}
	}
	return out, nil
}
