// Package recruit is the trial recruitment broker (DESIGN.md, flow 4;
// docs/recruitment.md). At the hub, Broker takes researchers' requests,
// lets the permit authority decide them, has the nodes match an approved
// request, puts an invitation in each matched woman's inbox and passes her
// contact details to the researcher only when she accepts. At a node,
// Matcher finds the women of the region's register who meet a request's
// criteria and opted in to trial contact, and returns who they are and
// nothing else.
//
// Every step that touches a woman is an access event, written in the same
// transaction as the step itself, so the transparency log misses none.
package recruit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
)

// The kinds of access event recruitment records (docs/transparency.md).
const (
	AccessMatch    = "recruitment-match"           // a node matched her register data against a request's criteria
	AccessInvite   = "recruitment-invite"          // an invitation was put in her inbox
	AccessAccept   = "recruitment-accept"          // she accepted an invitation
	AccessDecline  = "recruitment-decline"         // she declined an invitation
	AccessWithdraw = "recruitment-withdraw"        // her withdrawn opt-in withdrew a pending invitation
	AccessRelease  = "recruitment-contact-release" // her contact details were passed to the researcher
)

// DefaultThreshold is the small-cell threshold of the counts a researcher
// sees (DESIGN.md: never below 5).
const DefaultThreshold = 10

// Matching is how the broker reaches the nodes: it asks the nodes of
// regions (every node when empty) to match a request, and returns one
// answer per region asked.
type Matching func(ctx context.Context, req bildrum.TrialMatchRequest, regions []string) ([]RegionMatch, error)

// RegionMatch is one region's answer to a matching call.
type RegionMatch struct {
	bildrum.RegionAnswer
	Answer bildrum.TrialMatchAnswer
}

// consentRegister is what the broker reads of the national consent
// register: a woman's current choices, and the current trial-contact
// choices of many women at once, in which a woman who does not opt in is
// absent (sqlstore.DB.TrialContacts).
type consentRegister interface {
	Consent(ctx context.Context, person bildrum.PersonID) (bildrum.ConsentRecord, error)
	TrialContacts(ctx context.Context, persons []bildrum.PersonID) (map[bildrum.PersonID]bildrum.TrialContact, error)
}

// Broker is the recruitment broker at the hub.
type Broker struct {
	Store   bildrum.RecruitmentStore
	Consent consentRegister
	Match   Matching
	// Notifier tells a woman that her inbox has a new invitation.
	Notifier Notifier
	// Threshold is the small-cell threshold of the counts (default DefaultThreshold).
	Threshold int
	// Interval is how often Run retries regions that have not matched and
	// sends notifications (default 30 s; a decision triggers a round at once).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger

	once    sync.Once
	kick    chan struct{}
	matchMu sync.Mutex // one matching round at a time
}

// Actor is the broker as an actor of the access events it records itself.
var Actor = bildrum.Principal{Name: "bildrum recruitment broker", Role: bildrum.RoleHub, Organisation: "bildrum"}

func (b *Broker) init() {
	b.once.Do(func() { b.kick = make(chan struct{}, 1) })
}

func (b *Broker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Broker) today() bildrum.Date { return bildrum.DateOf(b.now().In(stockholm)) }

// stockholm is the time zone of the end dates of requests.
var stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return time.UTC
	}
	return loc
}()

func (b *Broker) threshold() int {
	if b.Threshold > 0 {
		return b.Threshold
	}
	return DefaultThreshold
}

func (b *Broker) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// Submit stores a researcher's new request, pending the permit authority's
// decision.
func (b *Broker) Submit(ctx context.Context, p bildrum.Principal, in bildrum.RecruitmentInput) (bildrum.RecruitmentRequest, error) {
	if p.Role != bildrum.RoleResearcher {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EFORBIDDEN, "only researchers submit recruitment requests")
	}
	if err := bildrum.RequesterOf(p).Check(); err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	checked, err := in.Check(b.today())
	if err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	r := bildrum.RecruitmentRequest{
		ID: "rec-" + randomID(8), RecruitmentInput: checked, Researcher: bildrum.RequesterOf(p),
		SubmittedAt: b.now().UTC().Truncate(time.Second), Status: bildrum.RecruitmentPending,
	}
	if err := b.Store.AddRecruitment(ctx, r); err != nil {
		return bildrum.RecruitmentRequest{}, fmt.Errorf("submit recruitment: %w", err)
	}
	return r, nil
}

// Decide records the permit authority's decision on a pending request. A
// rejection needs a reason; nobody decides her own request. An approval
// starts matching at once, in the background.
func (b *Broker) Decide(ctx context.Context, p bildrum.Principal, id string, approve bool, reason string) (bildrum.RecruitmentRequest, error) {
	if p.Role != bildrum.RolePermitOfficer {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EFORBIDDEN, "only the permit authority decides recruitment requests")
	}
	r, err := b.Store.Recruitment(ctx, id)
	if err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	if r.Researcher == bildrum.RequesterOf(p) {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EFORBIDDEN, "you submitted this request, so another permit officer must decide it")
	}
	if !approve && len(reason) == 0 {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EINVALID, "reason: say why the request is rejected, so the researcher can mend it")
	}
	if len(reason) > 2000 {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EINVALID, "reason: at most 2000 characters")
	}
	if r.StatusOn(b.today()) == bildrum.RecruitmentPending && !b.today().Before(r.Ends) && approve {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.ECONFLICT, "the request ends %s, so no woman could answer it any more: ask the researcher for a new one", r.Ends)
	}
	r, err = b.Store.DecideRecruitment(ctx, id, bildrum.RecruitmentDecision{
		Approve: approve, Reason: reason, By: p.Name, Organisation: p.Organisation, At: b.now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	if approve {
		b.Trigger()
	}
	return r, nil
}

// Trigger asks Run for a matching round now.
func (b *Broker) Trigger() {
	b.init()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Run matches approved requests at the regions that have not matched yet
// and sends pending notifications, at once when triggered and every
// Interval, until ctx ends.
func (b *Broker) Run(ctx context.Context) {
	b.init()
	interval := b.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := b.MatchPending(ctx); err != nil && ctx.Err() == nil {
			b.log().Warn("recruitment matching", "err", err)
		}
		if _, err := b.Notify(ctx); err != nil && ctx.Err() == nil {
			b.log().Warn("recruitment notifications", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
	}
}

// MatchPending asks, for every approved request still open, the regions
// that have not matched it yet, and invites the women they match.
func (b *Broker) MatchPending(ctx context.Context) error {
	b.matchMu.Lock()
	defer b.matchMu.Unlock()
	all, err := b.Store.Recruitments(ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range all {
		if r.StatusOn(b.today()) != bildrum.RecruitmentApproved {
			continue
		}
		if err := b.match(ctx, r); err != nil {
			return fmt.Errorf("match %s: %w", r.ID, err)
		}
	}
	return nil
}

// match asks the regions of r that have not matched it, and invites.
func (b *Broker) match(ctx context.Context, r bildrum.RecruitmentRequest) error {
	var todo []string // nil asks every node
	if len(r.Criteria.Regions) > 0 {
		for _, reg := range r.Criteria.Regions {
			if !matched(r, reg) {
				todo = append(todo, reg)
			}
		}
		if len(todo) == 0 {
			return nil
		}
	} else if len(r.Regions) > 0 {
		for _, x := range r.Regions {
			if x.Status != bildrum.AnswerOK {
				todo = append(todo, x.Region)
			}
		}
		if len(todo) == 0 {
			return nil // every node has matched
		}
	}
	results, err := b.Match(ctx, bildrum.TrialMatchRequest{
		Request: r.ID, Title: r.Title, Researcher: r.Researcher, Criteria: r.Criteria, Ends: r.Ends,
	}, todo)
	if err != nil {
		return err
	}
	// The hub's register is the newest word on her opt-in: a node's
	// replica may lag a withdrawal by a few seconds. It is asked about
	// every woman matched at once.
	var persons []bildrum.PersonID
	var regions []string // of persons
	seen := map[bildrum.PersonID]bool{}
	for _, res := range results {
		if res.Status != bildrum.AnswerOK || matched(r, res.Region) {
			continue
		}
		for _, person := range res.Answer.Persons {
			if !seen[person] {
				seen[person] = true
				persons, regions = append(persons, person), append(regions, res.Region)
			}
		}
	}
	optIns, err := b.Consent.TrialContacts(ctx, persons)
	if err != nil {
		return err
	}
	var candidates []bildrum.Invitation
	for i, person := range persons {
		if !optIns[person].OptIn {
			continue
		}
		candidates = append(candidates, bildrum.Invitation{
			ID: "inv-" + randomID(12), Request: r.ID, Person: person, Region: regions[i],
			Status: bildrum.InvitationPending, Created: b.now().UTC().Truncate(time.Second),
		})
	}
	shuffle(candidates) // more matches than max_invitations: a fair draw
	if len(candidates) > 0 {
		what := fmt.Sprintf("invitation to %q (recruitment request %s) from %s, %s", r.Title, r.ID, r.Researcher.Name, r.Researcher.Organisation)
		if _, err := b.Store.AddInvitations(ctx, r.ID, r.MaxInvitations, candidates, func(inv bildrum.Invitation) []bildrum.AccessEvent {
			return []bildrum.AccessEvent{{Time: inv.Created, Actor: Actor, Purpose: bildrum.PurposeRecruitment,
				Region: inv.Region, Person: inv.Person, Kind: AccessInvite, What: what}}
		}); err != nil {
			return err
		}
	}
	for _, res := range results {
		if err := b.Store.SetRecruitmentRegion(ctx, r.ID, bildrum.RecruitmentRegion{
			RegionAnswer: res.RegionAnswer, ConsentVersion: res.Answer.ConsentVersion, At: b.now().UTC().Truncate(time.Second),
		}); err != nil {
			return err
		}
	}
	b.Trigger() // send the notifications
	return nil
}

// matched reports whether region's node has matched r.
func matched(r bildrum.RecruitmentRequest, region string) bool {
	return slices.ContainsFunc(r.Regions, func(x bildrum.RecruitmentRegion) bool { return x.Region == region && x.Status == bildrum.AnswerOK })
}

// List returns the requests p may see: a researcher her own, the permit
// authority every one; each as View returns it.
func (b *Broker) List(ctx context.Context, p bildrum.Principal) ([]bildrum.RecruitmentView, error) {
	var by *bildrum.Requester
	switch p.Role {
	case bildrum.RoleResearcher:
		r := bildrum.RequesterOf(p)
		by = &r
	case bildrum.RolePermitOfficer:
	default:
		return nil, bildrum.Errorf(bildrum.EFORBIDDEN, "only researchers and the permit authority see recruitment requests")
	}
	all, err := b.Store.Recruitments(ctx, by)
	if err != nil {
		return nil, err
	}
	out := make([]bildrum.RecruitmentView, 0, len(all))
	for _, r := range all {
		v, err := b.view(ctx, p, r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// View returns one request as p may see it: its researcher sees the counts
// and the contact details of the women who accepted (their release is
// recorded for each woman the first time); the permit authority sees the
// counts. Anyone else's request is not found for a researcher.
func (b *Broker) View(ctx context.Context, p bildrum.Principal, id string) (bildrum.RecruitmentView, error) {
	if p.Role != bildrum.RoleResearcher && p.Role != bildrum.RolePermitOfficer {
		return bildrum.RecruitmentView{}, bildrum.Errorf(bildrum.EFORBIDDEN, "only researchers and the permit authority see recruitment requests")
	}
	r, err := b.Store.Recruitment(ctx, id)
	if err != nil {
		return bildrum.RecruitmentView{}, err
	}
	if p.Role == bildrum.RoleResearcher && r.Researcher != bildrum.RequesterOf(p) {
		return bildrum.RecruitmentView{}, bildrum.Errorf(bildrum.ENOTFOUND, "no recruitment request %s of yours", id)
	}
	return b.view(ctx, p, r)
}

func (b *Broker) view(ctx context.Context, p bildrum.Principal, r bildrum.RecruitmentRequest) (bildrum.RecruitmentView, error) {
	r.Status = r.StatusOn(b.today())
	v := bildrum.RecruitmentView{RecruitmentRequest: r}
	if r.Status != bildrum.RecruitmentApproved && r.Status != bildrum.RecruitmentClosed {
		return v, nil
	}
	n, err := b.Store.CountInvitations(ctx, r.ID)
	if err != nil {
		return v, err
	}
	c := Counts(n, b.threshold())
	v.Counts = &c
	if p.Role != bildrum.RoleResearcher || r.Researcher != bildrum.RequesterOf(p) {
		return v, nil
	}
	what := fmt.Sprintf("contact details for %q (recruitment request %s)", r.Title, r.ID)
	accepted, err := b.Store.ReleaseContacts(ctx, r.ID, b.now().UTC().Truncate(time.Second), func(inv bildrum.Invitation) []bildrum.AccessEvent {
		return []bildrum.AccessEvent{{Time: b.now(), Actor: p, Purpose: bildrum.PurposeRecruitment,
			Region: inv.Region, Person: inv.Person, Kind: AccessRelease, What: what}}
	})
	if err != nil {
		return v, err
	}
	v.Contacts = make([]bildrum.ReleasedContact, 0, len(accepted))
	for _, inv := range accepted {
		v.Contacts = append(v.Contacts, bildrum.ReleasedContact{Email: inv.Contact.Email, Phone: inv.Contact.Phone, Accepted: inv.Answered})
	}
	return v, nil
}

// Counts applies the small-cell rule to a request's invitation counts:
// invited, declined (with withdrawn) and unanswered below threshold are
// suppressed, and when exactly one of declined and unanswered is, so is
// the other, since invited less accepted would give it away. Accepted is
// exact: the researcher holds one contact per acceptance anyway.
func Counts(n bildrum.InvitationCounts, threshold int) bildrum.RecruitmentCounts {
	small := func(v int) bildrum.SmallCount {
		if v < threshold {
			return bildrum.SmallCount{Suppressed: true}
		}
		return bildrum.SmallCount{Count: &v}
	}
	c := bildrum.RecruitmentCounts{
		Invited: small(n.Invited), Accepted: n.Accepted,
		Declined: small(n.Declined + n.Withdrawn), Unanswered: small(n.Pending), Threshold: threshold,
	}
	if c.Declined.Suppressed != c.Unanswered.Suppressed {
		c.Declined, c.Unanswered = bildrum.SmallCount{Suppressed: true}, bildrum.SmallCount{Suppressed: true}
	}
	return c
}

// Inbox returns the citizen's invitations, newest first.
func (b *Broker) Inbox(ctx context.Context, p bildrum.Principal) ([]bildrum.InboxItem, error) {
	if p.Role != bildrum.RoleCitizen || p.Person == "" {
		return nil, bildrum.Errorf(bildrum.EFORBIDDEN, "only the woman herself sees her invitations")
	}
	invs, err := b.Store.Invitations(ctx, p.Person)
	if err != nil {
		return nil, err
	}
	requests := map[string]bildrum.RecruitmentRequest{}
	out := make([]bildrum.InboxItem, 0, len(invs))
	for _, inv := range invs {
		r, ok := requests[inv.Request]
		if !ok {
			if r, err = b.Store.Recruitment(ctx, inv.Request); err != nil {
				return nil, err
			}
			requests[inv.Request] = r
		}
		out = append(out, b.item(inv, r))
	}
	return out, nil
}

func (b *Broker) item(inv bildrum.Invitation, r bildrum.RecruitmentRequest) bildrum.InboxItem {
	return bildrum.InboxItem{
		ID: inv.ID, Status: inv.Status, Created: inv.Created, Answered: inv.Answered,
		Title: r.Title, Sponsor: r.Sponsor, EthicsApproval: r.EthicsApproval, InvitationText: r.InvitationText,
		Researcher: r.Researcher, Ends: r.Ends, Region: inv.Region, Criteria: r.Criteria, Contact: inv.Contact,
		Open: inv.Status == bildrum.InvitationPending && r.StatusOn(b.today()) == bildrum.RecruitmentApproved,
	}
}

// Answer records her answer to one of her invitations. Accepting passes
// the trial-contact details she gave in her choices to the researcher; it
// needs her opt-in to be in force. An invitation of another woman is not
// found.
func (b *Broker) Answer(ctx context.Context, p bildrum.Principal, id string, accept bool) (bildrum.InboxItem, error) {
	if p.Role != bildrum.RoleCitizen || p.Person == "" {
		return bildrum.InboxItem{}, bildrum.Errorf(bildrum.EFORBIDDEN, "only the woman herself answers her invitations")
	}
	inv, err := b.Store.Invitation(ctx, id)
	if err != nil {
		return bildrum.InboxItem{}, err
	}
	if inv.Person != p.Person {
		return bildrum.InboxItem{}, bildrum.Errorf(bildrum.ENOTFOUND, "you have no invitation %s", id)
	}
	r, err := b.Store.Recruitment(ctx, inv.Request)
	if err != nil {
		return bildrum.InboxItem{}, err
	}
	if r.StatusOn(b.today()) != bildrum.RecruitmentApproved {
		return bildrum.InboxItem{}, bildrum.Errorf(bildrum.ECONFLICT, "recruitment to %q ended on %s: it takes no more answers", r.Title, r.Ends)
	}
	status, kind := bildrum.InvitationDeclined, AccessDecline
	var contact bildrum.TrialContact
	if accept {
		rec, err := b.Consent.Consent(ctx, p.Person)
		if err != nil {
			return bildrum.InboxItem{}, err
		}
		if !rec.Choices.TrialContact.OptIn {
			return bildrum.InboxItem{}, bildrum.Errorf(bildrum.ECONFLICT, "you are not opted in to trial contact, so there are no contact details to pass on: opt in with an e-mail address or phone number first")
		}
		status, kind, contact = bildrum.InvitationAccepted, AccessAccept, rec.Choices.TrialContact
	}
	at := b.now().UTC().Truncate(time.Second)
	inv, err = b.Store.AnswerInvitation(ctx, id, status, contact, at, []bildrum.AccessEvent{{
		Time: at, Actor: p, Purpose: bildrum.PurposeRecruitment, Region: inv.Region, Person: p.Person, Kind: kind,
		What: fmt.Sprintf("%s the invitation to %q (recruitment request %s)", map[bool]string{true: "accepted", false: "declined"}[accept], r.Title, r.ID),
	}})
	if err != nil {
		return bildrum.InboxItem{}, err
	}
	return b.item(inv, r), nil
}

// ConsentChanged withdraws her pending invitations when her new choices
// no longer opt in to trial contact. The hub calls it after every change
// of her choices.
func (b *Broker) ConsentChanged(ctx context.Context, p bildrum.Principal, rec bildrum.ConsentRecord) error {
	if rec.Choices.TrialContact.OptIn {
		return nil
	}
	at := b.now().UTC().Truncate(time.Second)
	_, err := b.Store.WithdrawInvitations(ctx, rec.Person, at, func(inv bildrum.Invitation) []bildrum.AccessEvent {
		return []bildrum.AccessEvent{{Time: at, Actor: p, Purpose: bildrum.PurposeRecruitment, Region: inv.Region,
			Person: inv.Person, Kind: AccessWithdraw, What: "invitation " + inv.ID + " withdrawn with the trial-contact opt-in"}}
	})
	if err != nil {
		return fmt.Errorf("withdraw invitations: %w", err)
	}
	return nil
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// shuffle puts s in uniformly random order (Fisher–Yates, crypto/rand), so
// that which women a capped request invites is a fair draw nobody can steer.
func shuffle[T any](s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		k := int(j.Int64())
		s[i], s[k] = s[k], s[i]
	}
}
