package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/bildrum/bildrum"
)

// The defaults and limits of Rules.
const (
	DefaultThreshold        = 10  // DESIGN.md: the strictest common small-cell rule
	MinThreshold            = 5   // DESIGN.md: the threshold is never lower
	DefaultEpsilon          = 0.5 // noise of scale 2 for a count of women: 95 % within ±6
	MaxEpsilon              = 5   // above this the noise hardly protects anyone
	DefaultBudget           = 10  // twenty fresh questions at the default ε
	DefaultMaxExamsPerWoman = 10  // screening every 18–24 months gives at most 7 in a decade
	maxMaxExamsPerWoman     = 50
)

// Confidence is the coverage of the intervals released with counts.
const Confidence = 0.95

// Rules are a node's disclosure rules for feasibility counts. Every field
// is configuration with a default (the zero value takes it); docs/feasibility.md
// explains the choices.
type Rules struct {
	// Threshold: a noisy count below it is never released; the answer
	// says "fewer than Threshold" instead. Default 10, never below 5.
	Threshold int64 `json:"threshold"`

	// Epsilon is the ε of the Laplace noise of one freshly drawn count,
	// charged to the requester's budget. Default 0.5, at most 5.
	Epsilon float64 `json:"epsilon"`

	// Budget is the ε each requester may spend at this node in all;
	// repeated questions cost nothing. Default 10; at least Epsilon.
	Budget float64 `json:"budget"`

	// MaxExamsPerWoman caps how many of one woman's examinations a count
	// of examinations includes, which bounds what one woman can change
	// it by (the noise's sensitivity). Default 10, at most 50.
	MaxExamsPerWoman int `json:"max_exams_per_woman"`
}

// WithDefaults returns the rules with defaults filled in, or an EINVALID
// error that says what to configure instead.
func (r Rules) WithDefaults() (Rules, error) {
	if r.Threshold == 0 {
		r.Threshold = DefaultThreshold
	}
	if r.Epsilon == 0 {
		r.Epsilon = DefaultEpsilon
	}
	if r.Budget == 0 {
		r.Budget = DefaultBudget
	}
	if r.MaxExamsPerWoman == 0 {
		r.MaxExamsPerWoman = DefaultMaxExamsPerWoman
	}
	switch {
	case r.Threshold < MinThreshold:
		return r, bildrum.Errorf(bildrum.EINVALID, "feasibility threshold %d: the small-cell threshold is never below %d; the default is %d", r.Threshold, MinThreshold, DefaultThreshold)
	case !(r.Epsilon > 0 && r.Epsilon <= MaxEpsilon) || r.Epsilon < 1e-6:
		return r, bildrum.Errorf(bildrum.EINVALID, "feasibility epsilon %g: give an ε between 0.000001 and %d per count; the default is %g", r.Epsilon, MaxEpsilon, DefaultEpsilon)
	case !(r.Budget >= r.Epsilon) || math.IsInf(r.Budget, 0):
		return r, bildrum.Errorf(bildrum.EINVALID, "feasibility budget %g: a requester's budget must be finite and hold at least one count of ε %g; the default is %d", r.Budget, r.Epsilon, DefaultBudget)
	case r.MaxExamsPerWoman < 1 || r.MaxExamsPerWoman > maxMaxExamsPerWoman:
		return r, bildrum.Errorf(bildrum.EINVALID, "feasibility max_exams_per_woman %d: give 1 to %d; the default is %d", r.MaxExamsPerWoman, maxMaxExamsPerWoman, DefaultMaxExamsPerWoman)
	}
	return r, nil
}

// Sensitivity is the most one woman can change a count of unit by: 1 for
// women, MaxExamsPerWoman for examinations (each woman's are capped).
func (r Rules) Sensitivity(unit string) int64 {
	if unit == bildrum.UnitExaminations {
		return int64(r.MaxExamsPerWoman)
	}
	return 1
}

// FreshFunc reports whether the node's consent replica may be used for a
// purpose, as consent.Checker.Fresh does: an EUNAVAILABLE error when it is
// too old for secondary use.
type FreshFunc func(ctx context.Context, purpose bildrum.Purpose) (bildrum.ReplicaState, error)

// Node answers feasibility counts for one region's node. It is safe for
// concurrent use.
type Node struct {
	region   string
	rules    Rules
	store    bildrum.FeasibilityStore
	fresh    FreshFunc
	signer   *Signer
	recorder bildrum.AccessRecorder

	// Now is the clock for the answers' times (default time.Now).
	Now func() time.Time

	// sample adds noise of sensitivity to x; the secure sampler unless a
	// test replaces it.
	sample func(x, sensitivity int64, epsilon float64) (int64, error)
}

// NewNode returns the feasibility service of region's node: rules (zero
// fields take their defaults), the node's store, the consent replica's
// freshness check (consent.Checker.Fresh), the signer of its answers, which
// must be the region's key, and the recorder of its query events (the
// node's access outbox). Bad rules are an EINVALID error.
func NewNode(region string, rules Rules, store bildrum.FeasibilityStore, fresh FreshFunc, signer *Signer, recorder bildrum.AccessRecorder) (*Node, error) {
	if _, err := bildrum.RegionByCode(region); err != nil {
		return nil, err
	}
	rules, err := rules.WithDefaults()
	if err != nil {
		return nil, err
	}
	if store == nil || fresh == nil || signer == nil || recorder == nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility: a store, a consent freshness check, a signer and an access recorder are needed")
	}
	if signer.Name() != KeyName(region) {
		return nil, bildrum.Errorf(bildrum.EINVALID, "feasibility key signs for %q, not region %s: give the node its own key (%s)", signer.Name(), region, KeyName(region))
	}
	return &Node{region: region, rules: rules, store: store, fresh: fresh, signer: signer, recorder: recorder, sample: laplace}, nil
}

// laplace adds discrete Laplace noise from the library's secure sampler:
// a count is one partition (L0 sensitivity 1) that one woman changes by at
// most sensitivity (L∞), without δ.
func laplace(x, sensitivity int64, epsilon float64) (int64, error) {
	return noise.Laplace().AddNoiseInt64(x, 1, sensitivity, epsilon, 0)
}

// Rules returns the node's rules with their defaults.
func (n *Node) Rules() Rules { return n.rules }

// VerifierKey returns the verifier key of the node's answers, to publish.
func (n *Node) VerifierKey() string { return n.signer.VerifierKey() }

func (n *Node) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// Feasibility answers one request (DESIGN.md, "Privacy rules"):
//
//  1. The criteria are parsed and checked here, whatever the hub did; a
//     request whose query hash differs from the node's own, or that does
//     not name this region when it names regions, is refused.
//  2. The consent replica must be fresh enough for the purpose, or the
//     answer is EUNAVAILABLE: opt-outs that may be missing fail closed.
//  3. An answer already drawn for the same question at the same register
//     and consent versions is returned as it was, free of charge.
//  4. Otherwise, if the requester's budget cannot pay Epsilon the request
//     is EFORBIDDEN, naming what remains, before anything is counted.
//  5. The store counts the matching women (or examinations, capped per
//     woman) without those who opted out of the purpose; Laplace noise of
//     ε Epsilon is added; a noisy count below Threshold is suppressed,
//     else released with its 95 % interval; the provenance is signed.
//  6. The answer is stored and the requester charged in one step: of
//     concurrent identical questions one answer wins, charged once.
//  7. Before any answer, fresh or repeated, leaves the node, a query event
//     (bildrum.AccessFeasibilityQuery) is recorded; if that fails, nothing
//     is answered (a fresh answer stays stored and charged, and asking
//     again gets it free of charge).
func (n *Node) Feasibility(ctx context.Context, req bildrum.FeasibilityRequest) (bildrum.NodeFeasibility, error) {
	var out bildrum.NodeFeasibility
	if err := req.Requester.Check(); err != nil {
		return out, err
	}
	c, err := ParseCriteria(req.Criteria)
	if err != nil {
		return out, err
	}
	hash := c.Hash()
	if req.QueryHash != "" && req.QueryHash != hash {
		return out, bildrum.Errorf(bildrum.EINVALID, "region %s reads these criteria as query %s, not %s: the hub and the node disagree on the canonical form; upgrade the older of them", n.region, hash, req.QueryHash)
	}
	if len(c.Regions) > 0 && !slices.Contains(c.Regions, n.region) {
		return out, bildrum.Errorf(bildrum.EINVALID, "the criteria ask regions %v, not region %s", c.Regions, n.region)
	}
	if _, err := n.fresh(ctx, c.Purpose); err != nil {
		return out, err
	}
	data, consent, err := n.store.FeasibilityVersions(ctx)
	if err != nil {
		return out, err
	}
	key := bildrum.FeasibilityKey{QueryHash: hash, DataVersion: data, ConsentVersion: consent}
	if a, ok, err := n.store.StoredAnswer(ctx, key); err != nil {
		return out, err
	} else if ok {
		return n.repeat(ctx, c, a, req.Requester)
	}
	spent, err := n.store.FeasibilitySpent(ctx, req.Requester)
	if err != nil {
		return out, err
	}
	if spent+n.rules.Epsilon > n.rules.Budget+1e-9 {
		return out, n.overBudget(spent)
	}
	count, err := n.store.CountMatching(ctx, c, n.rules.MaxExamsPerWoman)
	if err != nil {
		return out, fmt.Errorf("feasibility %s: %w", hash, err)
	}
	if count.DataVersion != data || count.ConsentVersion != consent {
		// The register or the replica moved between the two reads: the
		// count belongs to the newer versions, which may have an answer.
		key.DataVersion, key.ConsentVersion = count.DataVersion, count.ConsentVersion
		if a, ok, err := n.store.StoredAnswer(ctx, key); err != nil {
			return out, err
		} else if ok {
			return n.repeat(ctx, c, a, req.Requester)
		}
	}
	a, err := n.release(c, hash, count)
	if err != nil {
		return out, err
	}
	ch, err := n.store.StoreAnswerAndCharge(ctx, key, a, req.Requester, n.rules.Epsilon, n.rules.Budget)
	if bildrum.ErrorCode(err) == bildrum.EFORBIDDEN {
		return out, bildrum.Errorf(bildrum.EFORBIDDEN, "region %s: %s", n.region, bildrum.ErrorMessage(err))
	} else if err != nil {
		return out, err
	}
	if err := n.record(ctx, c, hash, req.Requester, ch.Charged); err != nil {
		return out, err
	}
	return bildrum.NodeFeasibility{Answer: ch.Answer, VKey: n.signer.VerifierKey(), Charged: ch.Charged, Remaining: n.remaining(ch.Spent)}, nil
}

// repeat answers with a stored answer, charging nothing.
func (n *Node) repeat(ctx context.Context, c bildrum.Criteria, a bildrum.FeasibilityAnswer, r bildrum.Requester) (bildrum.NodeFeasibility, error) {
	spent, err := n.store.FeasibilitySpent(ctx, r)
	if err != nil {
		return bildrum.NodeFeasibility{}, err
	}
	if err := n.record(ctx, c, c.Hash(), r, 0); err != nil {
		return bildrum.NodeFeasibility{}, err
	}
	return bildrum.NodeFeasibility{Answer: a, VKey: n.signer.VerifierKey(), Remaining: n.remaining(spent)}, nil
}

// record records the query event of an answer about to leave the node. Its
// description is public (the log publishes it in the clear): the query
// hash, which the requester finds in her signed answer, the unit and the ε
// charged, but neither the criteria nor the count.
func (n *Node) record(ctx context.Context, c bildrum.Criteria, hash string, r bildrum.Requester, charged float64) error {
	what := fmt.Sprintf("feasibility count %s of %s; ε %g charged", hash, c.Unit, charged)
	if charged == 0 {
		what = fmt.Sprintf("feasibility count %s of %s; asked before, answered again free of charge", hash, c.Unit)
	}
	e := bildrum.AccessEvent{
		Time:    n.now(),
		Actor:   bildrum.Principal{Name: r.Name, Organisation: r.Organisation, Role: bildrum.RoleResearcher},
		Purpose: c.Purpose,
		Region:  n.region,
		Kind:    bildrum.AccessFeasibilityQuery,
		What:    what,
	}
	if err := n.recorder.RecordAccess(ctx, e); err != nil {
		return fmt.Errorf("feasibility %s: record the query event: %w", hash, err)
	}
	return nil
}

func (n *Node) remaining(spent float64) float64 {
	return math.Max(0, math.Round((n.rules.Budget-spent)*1e6)/1e6)
}

func (n *Node) overBudget(spent float64) error {
	return bildrum.Errorf(bildrum.EFORBIDDEN, "region %s: privacy budget spent: this question costs ε %g, and %g of the budget of %g remains; asking a question again that was answered before costs nothing",
		n.region, n.rules.Epsilon, n.remaining(spent), n.rules.Budget)
}

// release draws the noisy count once, applies the threshold to it, and
// signs the provenance. Only the noisy count decides suppression, so the
// decision is itself protected by the noise; the true count never leaves.
func (n *Node) release(c bildrum.Criteria, hash string, count bildrum.FeasibilityCount) (bildrum.FeasibilityAnswer, error) {
	sens := n.rules.Sensitivity(c.Unit)
	noisy, err := n.sample(count.Count, sens, n.rules.Epsilon)
	if err != nil {
		return bildrum.FeasibilityAnswer{}, fmt.Errorf("feasibility noise: %w", err)
	}
	p := bildrum.Provenance{
		Region: n.region, QueryHash: hash, Purpose: c.Purpose, Unit: c.Unit,
		DataVersion: count.DataVersion, ConsentVersion: count.ConsentVersion,
		Threshold: n.rules.Threshold, Epsilon: n.rules.Epsilon, Sensitivity: sens,
		Time: n.now().UTC().Truncate(time.Second),
	}
	if noisy < n.rules.Threshold {
		p.Suppressed = true
	} else {
		lo, hi, err := Interval(noisy, sens, n.rules.Epsilon)
		if err != nil {
			return bildrum.FeasibilityAnswer{}, err
		}
		p.Count, p.Interval = &noisy, &[2]int64{lo, hi}
	}
	return n.signer.Sign(p)
}

// Interval returns the 95 % interval of the true count behind a noisy
// count drawn with the rules' Laplace noise (the library's
// ComputeConfidenceIntervalInt64), its lower end raised to 0, below which
// no count lies.
func Interval(noisy, sensitivity int64, epsilon float64) (lo, hi int64, err error) {
	ci, err := noise.Laplace().ComputeConfidenceIntervalInt64(noisy, 1, sensitivity, epsilon, 0, 1-Confidence)
	if err != nil {
		return 0, 0, fmt.Errorf("feasibility interval: %w", err)
	}
	return max(0, int64(math.Round(ci.LowerBound))), int64(math.Round(ci.UpperBound)), nil
}

// Budget returns a requester's privacy budget at this node.
func (n *Node) Budget(ctx context.Context, r bildrum.Requester) (bildrum.FeasibilityBudget, error) {
	if err := r.Check(); err != nil {
		return bildrum.FeasibilityBudget{}, err
	}
	spent, err := n.store.FeasibilitySpent(ctx, r)
	if err != nil {
		return bildrum.FeasibilityBudget{}, err
	}
	return bildrum.FeasibilityBudget{Region: n.region, Requester: r, Budget: n.rules.Budget, Spent: spent, Remaining: n.remaining(spent)}, nil
}
