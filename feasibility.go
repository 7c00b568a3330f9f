package bildrum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Feasibility counts (DESIGN.md, flow 3; docs/feasibility.md): a researcher
// sends Criteria, the hub fans them out, and each node counts the women (or
// examinations) of its register that match, leaving out women who opted out
// of the purpose, suppresses small counts, adds noise, charges the
// requester's privacy budget and signs its answer.

// What a feasibility count counts (Criteria.Unit).
const (
	UnitWomen        = "women"        // distinct women with a matching examination (the default)
	UnitExaminations = "examinations" // matching examinations, at most a bounded number per woman
)

// Screening rounds (Criteria.Round).
const (
	RoundFirst      = "first"      // her first invitation (round 1): the initial screen
	RoundSubsequent = "subsequent" // any later round
)

// Finding is a class of diagnosis that Criteria.Outcomes select by.
type Finding string

// The findings an examination can be selected by.
const (
	FindingScreenInvasive Finding = "screen_detected_invasive" // invasive cancer found after recall from this screen
	FindingScreenDCIS     Finding = "screen_detected_dcis"     // DCIS found after recall from this screen
	FindingInterval       Finding = "interval_cancer"          // a cancer diagnosed after this negative screen, before the next invitation
	FindingBenign         Finding = "benign"                   // assessment after recall ended benign
)

// IntRange is an inclusive range of whole numbers; 0 at either end leaves
// that end open.
type IntRange struct {
	Min int `json:"min,omitempty"`
	Max int `json:"max,omitempty"`
}

// DateRange is an inclusive range of calendar dates; a zero (null) end is open.
type DateRange struct {
	From Date `json:"from"`
	To   Date `json:"to"`
}

// Criteria select screening examinations, and through them women, for a
// feasibility count. docs/feasibility.md is their specification.
//
// Each criterion is a condition on one examination (an attended screening
// episode of the register); an examination matches when every criterion
// given holds for it, and a woman matches when one of her examinations
// does. Empty fields do not filter. Sets match any of their members.
// Women who opted out of Purpose are never counted.
//
// Check validates and normalises Criteria; Canonical and Hash are defined
// on checked Criteria only.
type Criteria struct {
	// Purpose is the secondary purpose the count is for (required): not
	// care, and not recruitment, which is opt-in and asked by its own flow.
	Purpose Purpose `json:"purpose"`
	// Regions are the county codes to ask; none asks every region. They
	// route the question and are not part of its hash.
	Regions []string `json:"regions,omitempty"`
	// Age is her age in whole years on the day of the examination.
	Age *IntRange `json:"age,omitempty"`
	// ExamDate bounds the day of the examination.
	ExamDate *DateRange `json:"exam_date,omitempty"`
	// Round is RoundFirst or RoundSubsequent.
	Round string `json:"round,omitempty"`
	// BIRADS are consensus BI-RADS categories of the screen's double reading, "0"–"6".
	BIRADS []BIRADS `json:"birads,omitempty"`
	// Density are ACR breast composition categories, "a"–"d".
	Density []Density `json:"density,omitempty"`
	// Outcomes are findings of the examination's episode.
	Outcomes []Finding `json:"outcomes,omitempty"`
	// TumourSizeMM bounds the invasive component in mm; examinations
	// without a recorded size never match a size range.
	TumourSizeMM *IntRange `json:"tumour_size_mm,omitempty"`
	// NodalStatus are axillary node statuses, NodesNegative or NodesPositive.
	NodalStatus []string `json:"nodal_status,omitempty"`
	// Views must all have been acquired at the examination (RCC, LCC, RMLO, LMLO).
	Views []string `json:"views,omitempty"`
	// Unit is UnitWomen (the default) or UnitExaminations.
	Unit string `json:"unit,omitempty"`
}

// Limits of the criteria's numbers.
const (
	maxAge        = 130
	maxTumourSize = 1000
)

// Check validates the criteria and returns them normalised: sets sorted
// without duplicates, empty ranges dropped, the unit spelt out. A
// criterion that is unknown, malformed or cannot match is an EINVALID
// error that says what to write instead.
func (c Criteria) Check() (Criteria, error) { return c.check(false) }

// check is Check, allowing the recruitment purpose for a recruitment
// request's criteria (RecruitmentInput.Check).
func (c Criteria) check(recruitment bool) (Criteria, error) {
	out := Criteria{Purpose: c.Purpose, Round: c.Round, Unit: c.Unit}
	if c.Purpose == "" {
		return Criteria{}, Errorf(EINVALID, "purpose: name the secondary purpose of the count, such as research, statistics or quality")
	}
	if _, err := ParsePurpose(string(c.Purpose)); err != nil {
		return Criteria{}, Errorf(EINVALID, "purpose: %s", ErrorMessage(err))
	}
	switch c.Purpose {
	case PurposeCare:
		return Criteria{}, Errorf(EINVALID, "purpose: care is primary use; a feasibility count is secondary use: name a secondary purpose such as research")
	case PurposeRecruitment:
		if recruitment {
			break
		}
		return Criteria{}, Errorf(EINVALID, "purpose: recruitment (trial contact) is opt-in and has its own request; count the women for a planned trial with purpose research")
	}
	for _, r := range c.Regions {
		if _, err := RegionByCode(r); err != nil {
			return Criteria{}, Errorf(EINVALID, "regions: %s", ErrorMessage(err))
		}
	}
	out.Regions = sortedSet(c.Regions)

	var err error
	if out.Age, err = checkRange("age", c.Age, maxAge); err != nil {
		return Criteria{}, err
	}
	if out.TumourSizeMM, err = checkRange("tumour_size_mm", c.TumourSizeMM, maxTumourSize); err != nil {
		return Criteria{}, err
	}
	if d := c.ExamDate; d != nil && !(d.From.IsZero() && d.To.IsZero()) {
		if !d.From.IsZero() && !d.To.IsZero() && d.To.Before(d.From) {
			return Criteria{}, Errorf(EINVALID, "exam_date: from %s is after to %s: give the earlier date as from", d.From, d.To)
		}
		out.ExamDate = &DateRange{From: d.From, To: d.To}
	}
	switch c.Round {
	case "", RoundFirst, RoundSubsequent:
	default:
		return Criteria{}, Errorf(EINVALID, "round %q: use first (the initial screen) or subsequent, or leave it out", c.Round)
	}
	if out.BIRADS, err = checkSet("birads", c.BIRADS, []BIRADS{"0", "1", "2", "3", "4", "5", "6"}); err != nil {
		return Criteria{}, err
	}
	if out.Density, err = checkSet("density", c.Density, []Density{"a", "b", "c", "d"}); err != nil {
		return Criteria{}, err
	}
	if out.Outcomes, err = checkSet("outcomes", c.Outcomes, []Finding{FindingBenign, FindingInterval, FindingScreenDCIS, FindingScreenInvasive}); err != nil {
		return Criteria{}, err
	}
	if out.NodalStatus, err = checkSet("nodal_status", c.NodalStatus, []string{NodesNegative, NodesPositive}); err != nil {
		return Criteria{}, err
	}
	if out.Views, err = checkSet("views", c.Views, StandardViews()); err != nil {
		return Criteria{}, err
	}
	switch c.Unit {
	case "":
		out.Unit = UnitWomen
	case UnitWomen, UnitExaminations:
	default:
		return Criteria{}, Errorf(EINVALID, "unit %q: count women (the default) or examinations", c.Unit)
	}
	return out, nil
}

// checkRange validates an inclusive range whose ends lie in 0..limit.
func checkRange(name string, r *IntRange, limit int) (*IntRange, error) {
	if r == nil || (r.Min == 0 && r.Max == 0) {
		return nil, nil
	}
	if r.Min < 0 || r.Max < 0 || r.Min > limit || r.Max > limit {
		return nil, Errorf(EINVALID, "%s: min and max must lie between 0 and %d, got min %d max %d", name, limit, r.Min, r.Max)
	}
	if r.Max != 0 && r.Max < r.Min {
		return nil, Errorf(EINVALID, "%s: min %d is above max %d, so nothing can match: give the smaller number as min", name, r.Min, r.Max)
	}
	return &IntRange{Min: r.Min, Max: r.Max}, nil
}

// checkSet checks that every member of set is allowed and returns the set
// sorted without duplicates (nil when empty).
func checkSet[T ~string](name string, set, allowed []T) ([]T, error) {
	for _, v := range set {
		if !slices.Contains(allowed, v) {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = string(a)
			}
			return nil, Errorf(EINVALID, "%s: unknown value %q: use %s", name, v, strings.Join(names, ", "))
		}
	}
	return sortedSet(set), nil
}

func sortedSet[T ~string](set []T) []T {
	if len(set) == 0 {
		return nil
	}
	out := slices.Clone(set)
	slices.Sort(out)
	return slices.Compact(out)
}

// Canonical returns the JSON form of checked criteria: fields in a fixed
// order, sets sorted, dates as YYYY-MM-DD, empty criteria left out. Two
// questions that mean the same have the same canonical form.
func (c Criteria) Canonical() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic("bildrum: criteria do not marshal: " + err.Error()) // only plain types: cannot happen
	}
	return b
}

// Hash returns the query hash of checked criteria: the hex SHA-256 of the
// canonical form without Regions. Regions say whom to ask, not what is
// counted, so each node answers one question whichever regions are asked
// beside it.
func (c Criteria) Hash() string {
	c.Regions = nil
	sum := sha256.Sum256(c.Canonical())
	return hex.EncodeToString(sum[:])
}

// Matches reports whether an episode is an examination that matches the
// criteria, leaving consent aside: it is the specification that every
// store's CountMatching must agree with.
func (c Criteria) Matches(e *ScreeningEpisode) bool {
	if !e.Attended || e.Examined.IsZero() {
		return false
	}
	if d := c.ExamDate; d != nil {
		if !d.From.IsZero() && e.Examined.Before(d.From) || !d.To.IsZero() && d.To.Before(e.Examined) {
			return false
		}
	}
	if !inRange(c.Age, e.Person.AgeAt(e.Examined.Time())) {
		return false
	}
	switch c.Round {
	case RoundFirst:
		if e.Round != 1 {
			return false
		}
	case RoundSubsequent:
		if e.Round <= 1 {
			return false
		}
	}
	if len(c.BIRADS) > 0 && !slices.Contains(c.BIRADS, e.Consensus) ||
		len(c.Density) > 0 && !slices.Contains(c.Density, e.Density) ||
		len(c.NodalStatus) > 0 && !slices.Contains(c.NodalStatus, e.NodalStatus) {
		return false
	}
	if len(c.Outcomes) > 0 && !slices.ContainsFunc(c.Outcomes, func(f Finding) bool { return f.of(e) }) {
		return false
	}
	if c.TumourSizeMM != nil && (e.TumourSizeMM <= 0 || !inRange(c.TumourSizeMM, e.TumourSizeMM)) {
		return false
	}
	for _, v := range c.Views {
		if !slices.Contains(e.Views, v) {
			return false
		}
	}
	return true
}

// of reports whether the episode has the finding.
func (f Finding) of(e *ScreeningEpisode) bool {
	switch f {
	case FindingScreenInvasive:
		return e.Outcome == OutcomeInvasive && e.Detection == DetectedAtScreen
	case FindingScreenDCIS:
		return e.Outcome == OutcomeDCIS && e.Detection == DetectedAtScreen
	case FindingInterval:
		return e.Detection == DetectedInterval && (e.Outcome == OutcomeInvasive || e.Outcome == OutcomeDCIS)
	case FindingBenign:
		return e.Outcome == OutcomeBenign
	}
	return false
}

func inRange(r *IntRange, v int) bool {
	return r == nil || (r.Min == 0 || v >= r.Min) && (r.Max == 0 || v <= r.Max)
}

// AccessFeasibilityQuery is the kind of access event a node records for
// every feasibility count it answers, fresh or repeated: an event about no
// one person, whose description names the query hash, the unit and the ε
// charged.
const AccessFeasibilityQuery = "feasibility-query"

// Requester is who a feasibility count is charged to: a researcher's
// principal name and organisation. Each node keeps a privacy budget per
// requester.
type Requester struct {
	Name         string `json:"name"`
	Organisation string `json:"organisation"`
}

// RequesterOf returns the requester a principal's counts are charged to.
func RequesterOf(p Principal) Requester {
	return Requester{Name: p.Name, Organisation: p.Organisation}
}

// Check reports an EINVALID error for a requester a budget cannot be kept for.
func (r Requester) Check() error {
	if r.Name == "" || len(r.Name) > 256 || len(r.Organisation) > 256 {
		return Errorf(EINVALID, "requester: a name (at most 256 characters) is needed to keep a privacy budget, and an organisation of at most 256")
	}
	return nil
}

// FeasibilityRequest is what the hub sends a node: the criteria as JSON
// (the node parses and checks them itself), the query hash the hub
// computed from them (the node refuses a question it hashes differently),
// and whom to charge.
type FeasibilityRequest struct {
	Criteria  json.RawMessage `json:"criteria"`
	QueryHash string          `json:"query_hash,omitempty"`
	Requester Requester       `json:"requester"`
}

// Provenance is what a node states, and signs, about one released count:
// where and from what it was computed, under which disclosure rules, and
// the result. Count and Interval are null when Suppressed.
type Provenance struct {
	Region         string    `json:"region"`
	QueryHash      string    `json:"query_hash"`
	Purpose        Purpose   `json:"purpose"`
	Unit           string    `json:"unit"`
	DataVersion    int64     `json:"data_version"`    // the register's version counted
	ConsentVersion int64     `json:"consent_version"` // the consent register's version applied
	Threshold      int64     `json:"threshold"`       // noisy counts below it are suppressed
	Epsilon        float64   `json:"epsilon"`         // ε of the Laplace noise
	Sensitivity    int64     `json:"sensitivity"`     // most one woman can change the count by
	Count          *int64    `json:"count"`           // the noisy count, or null when suppressed
	Suppressed     bool      `json:"suppressed"`      // the noisy count was below Threshold
	Interval       *[2]int64 `json:"interval"`        // 95 % interval of the true count given the noise
	Time           time.Time `json:"time"`            // when the count was drawn
	Key            string    `json:"key"`             // name of the node's signing key
}

// FeasibilityAnswer is a node's released count: the provenance and the
// same provenance signed. Signed is a C2SP signed note whose text is the
// provenance's JSON and a newline, signed with the node's Ed25519 key;
// query.Verify checks it.
type FeasibilityAnswer struct {
	Provenance Provenance `json:"provenance"`
	Signed     string     `json:"signed"`
}

// NodeFeasibility is a node's reply to one requester: the answer (the same
// for everyone who asks the same question of the same data), what it
// charged this requester and what remains of the requester's budget.
type NodeFeasibility struct {
	Answer    FeasibilityAnswer `json:"answer"`
	VKey      string            `json:"vkey"`      // the node's verifier key (signed-note format)
	Charged   float64           `json:"charged"`   // ε charged for this reply: 0 for a repeat
	Remaining float64           `json:"remaining"` // ε left of the requester's budget at this node
}

// FeasibilityBudget is a requester's privacy budget at one node.
type FeasibilityBudget struct {
	Region    string    `json:"region"`
	Requester Requester `json:"requester"`
	Budget    float64   `json:"budget"`
	Spent     float64   `json:"spent"`
	Remaining float64   `json:"remaining"`
}

// FeasibilityKey names one drawn answer: the same question of the same
// register and consent versions always gets the answer stored under it.
type FeasibilityKey struct {
	QueryHash      string
	DataVersion    int64
	ConsentVersion int64
}

// FeasibilityCount is the exact count of matching women or examinations,
// with the versions of the register and consent replica it was taken at.
// It never leaves the node.
type FeasibilityCount struct {
	Count          int64
	DataVersion    int64
	ConsentVersion int64
}

// FeasibilityCharge says what StoreAnswerAndCharge did: the answer now
// stored under the key (the one given, or one stored before), the ε charged
// (0 when an answer was already stored) and the requester's spent total.
type FeasibilityCharge struct {
	Answer  FeasibilityAnswer
	Charged float64
	Spent   float64
}

// FeasibilityStore is what a node keeps for feasibility counts: its
// register and consent replica to count from, the answers it released, and
// every requester's privacy budget ledger.
//
// FeasibilityVersions returns the register's data version and the consent
// replica's version.
//
// CountMatching counts, in one consistent snapshot, the women (UnitWomen)
// or the examinations (UnitExaminations, at most maxPerWoman of each
// woman's) that match checked criteria as Criteria.Matches defines, leaving
// out every woman the consent replica holds an opt-out of c.Purpose for,
// and returns the versions the snapshot holds. Criteria.Regions are not
// applied: a node holds one region. Input never becomes SQL text.
//
// StoredAnswer returns the answer stored under key, if any.
//
// StoreAnswerAndCharge stores answer under key and charges epsilon to the
// requester, atomically: both are durable on return or neither happened.
// When an answer is already stored under key it is returned instead and
// nothing is charged, so that concurrent identical questions all get one
// answer and are charged once. A charge that would take the requester's
// spent total above budget stores nothing and is an EFORBIDDEN error that
// says how much remains. ε is kept in millionths, so sums are exact.
//
// FeasibilitySpent returns the ε charged to the requester so far (0 for an
// unknown one).
//
// Implementations are safe for concurrent use.
type FeasibilityStore interface {
	FeasibilityVersions(ctx context.Context) (data, consent int64, err error)
	CountMatching(ctx context.Context, c Criteria, maxPerWoman int) (FeasibilityCount, error)
	StoredAnswer(ctx context.Context, key FeasibilityKey) (FeasibilityAnswer, bool, error)
	StoreAnswerAndCharge(ctx context.Context, key FeasibilityKey, answer FeasibilityAnswer, r Requester, epsilon, budget float64) (FeasibilityCharge, error)
	FeasibilitySpent(ctx context.Context, r Requester) (float64, error)
}

// FeasibilityRegion is one region's line of a federated feasibility
// result: how it answered and, when it did, its count. Count and Interval
// are null when the region did not answer or suppressed its count.
type FeasibilityRegion struct {
	RegionAnswer
	Name       string      `json:"name"`
	Count      *int64      `json:"count"`
	Suppressed bool        `json:"suppressed"`
	Interval   *[2]int64   `json:"interval"`
	Charged    float64     `json:"charged"`
	Remaining  *float64    `json:"remaining"` // ε left at this node; null when it did not answer
	Provenance *Provenance `json:"provenance,omitempty"`
	Signed     string      `json:"signed,omitempty"`
	VKey       string      `json:"vkey,omitempty"`
}

// FeasibilityTotal sums the released counts. Regions lists those summed;
// Suppressed those that answered with a count below their threshold, and
// Missing those that did not answer: neither is in the sum, so the total
// covers the whole question only when both are empty. Count and Interval
// are null when no region's count was released.
type FeasibilityTotal struct {
	Count      *int64    `json:"count"`
	Interval   *[2]int64 `json:"interval"` // 95 % interval of the summed noise around Count
	Regions    []string  `json:"regions"`
	Suppressed []string  `json:"suppressed"`
	Missing    []string  `json:"missing"`
}

// FeasibilityResult is a federated feasibility count: one line per region
// asked and the total over those that released a count. Complete is true
// only when every region asked answered.
type FeasibilityResult struct {
	QueryHash string              `json:"query_hash"`
	Criteria  json.RawMessage     `json:"criteria"`
	Requester Requester           `json:"requester"`
	AskedAt   time.Time           `json:"asked_at"`
	Regions   []FeasibilityRegion `json:"regions"`
	Asked     int                 `json:"asked"`
	Answered  int                 `json:"answered"`
	Complete  bool                `json:"complete"`
	Total     FeasibilityTotal    `json:"total"`
}

// RegionBudget is one region's line of a requester's budgets across the
// federation; Remaining is null when the region did not answer.
type RegionBudget struct {
	RegionAnswer
	Budget    *float64 `json:"budget"`
	Spent     *float64 `json:"spent"`
	Remaining *float64 `json:"remaining"`
}
