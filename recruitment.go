package bildrum

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Trial recruitment (DESIGN.md, flow 4; docs/recruitment.md): a researcher's
// request, once the permit authority approves it, goes to the nodes; each
// matches the women of its register who meet the criteria and opted in to
// trial contact, and returns only who they are; the hub puts an invitation
// in each woman's inbox; only when she accepts does the researcher get the
// contact details she chose to give.

// RecruitmentStatus is where a recruitment request is in its life.
type RecruitmentStatus string

// The statuses of a recruitment request.
const (
	RecruitmentPending  RecruitmentStatus = "pending"  // submitted, awaiting the permit authority
	RecruitmentRejected RecruitmentStatus = "rejected" // the permit authority said no, with a reason
	RecruitmentApproved RecruitmentStatus = "approved" // approved: the nodes match and invitations go out until Ends
	RecruitmentClosed   RecruitmentStatus = "closed"   // its end date has passed: no more answers
)

// Limits of a recruitment request.
const (
	MaxInvitationText = 2000    // characters of the invitation text
	MaxInvitations    = 1000000 // the largest max_invitations a request may ask for
	maxRecruitField   = 300     // characters of title, sponsor, ethics approval
)

// RecruitmentInput is what a researcher submits (POST /api/v1/recruitment).
type RecruitmentInput struct {
	Title          string   `json:"title"`
	Sponsor        string   `json:"sponsor"`
	EthicsApproval string   `json:"ethics_approval"` // the Etikprövningsmyndigheten decision, e.g. "Dnr 2026-01234-01"
	Criteria       Criteria `json:"criteria"`        // as for feasibility; purpose is recruitment and may be left out
	InvitationText string   `json:"invitation_text"` // plain language, at most MaxInvitationText characters
	MaxInvitations int      `json:"max_invitations"`
	Ends           Date     `json:"ends"` // the last day women can answer
}

// Check validates a submission and returns it normalised: text trimmed, the
// criteria checked for the recruitment purpose. today is the date it is
// submitted on; the end date must lie after it.
func (in RecruitmentInput) Check(today Date) (RecruitmentInput, error) {
	out := in
	out.Title = strings.TrimSpace(in.Title)
	out.Sponsor = strings.TrimSpace(in.Sponsor)
	out.EthicsApproval = strings.TrimSpace(in.EthicsApproval)
	out.InvitationText = strings.TrimSpace(in.InvitationText)
	for _, f := range []struct{ name, value string }{{"title", out.Title}, {"sponsor", out.Sponsor}, {"ethics_approval", out.EthicsApproval}} {
		if f.value == "" {
			return RecruitmentInput{}, Errorf(EINVALID, "%s: required: say %s", f.name, map[string]string{
				"title": "what the trial is called", "sponsor": "who sponsors the trial",
				"ethics_approval": "the reference of the ethical review authority's approval"}[f.name])
		}
		if utf8.RuneCountInString(f.value) > maxRecruitField || !utf8.ValidString(f.value) {
			return RecruitmentInput{}, Errorf(EINVALID, "%s: at most %d characters of UTF-8 text", f.name, maxRecruitField)
		}
	}
	if out.InvitationText == "" {
		return RecruitmentInput{}, Errorf(EINVALID, "invitation_text: required: write, in plain language, what the trial is and what taking part means")
	}
	if !utf8.ValidString(out.InvitationText) {
		return RecruitmentInput{}, Errorf(EINVALID, "invitation_text: not valid UTF-8")
	}
	if n := utf8.RuneCountInString(out.InvitationText); n > MaxInvitationText {
		return RecruitmentInput{}, Errorf(EINVALID, "invitation_text: %d characters, at most %d: shorten it", n, MaxInvitationText)
	}
	if in.MaxInvitations < 1 || in.MaxInvitations > MaxInvitations {
		return RecruitmentInput{}, Errorf(EINVALID, "max_invitations: give how many women may be invited at most, 1 to %d", MaxInvitations)
	}
	if in.Ends.IsZero() {
		return RecruitmentInput{}, Errorf(EINVALID, "ends: required: the last day women can answer, as YYYY-MM-DD")
	}
	if !today.Before(in.Ends) {
		return RecruitmentInput{}, Errorf(EINVALID, "ends: %s is not after today (%s): give a later end date", in.Ends, today)
	}
	c := in.Criteria
	if c.Purpose != "" && c.Purpose != PurposeRecruitment {
		return RecruitmentInput{}, Errorf(EINVALID, "criteria.purpose: a recruitment request is for purpose recruitment (trial contact); leave it out or write recruitment")
	}
	if c.Unit != "" && c.Unit != UnitWomen {
		return RecruitmentInput{}, Errorf(EINVALID, "criteria.unit: recruitment invites women; leave unit out")
	}
	c.Purpose = PurposeRecruitment
	checked, err := c.check(true)
	if err != nil {
		return RecruitmentInput{}, Errorf(EINVALID, "criteria: %s", ErrorMessage(err))
	}
	out.Criteria = checked
	return out, nil
}

// RecruitmentDecision is the permit authority's decision on a request.
type RecruitmentDecision struct {
	Approve      bool      `json:"approve"`
	Reason       string    `json:"reason"`
	By           string    `json:"by"`           // the permit officer's name
	Organisation string    `json:"organisation"` // the permit officer's organisation
	At           time.Time `json:"at"`
}

// RecruitmentRegion is how matching went at one region's node.
type RecruitmentRegion struct {
	RegionAnswer // ok once the node has matched; down, timeout or refused until then
	// ConsentVersion is the consent register version the node matched at.
	ConsentVersion int64     `json:"consent_version,omitempty"`
	At             time.Time `json:"at"`
}

// RecruitmentRequest is a researcher's request to invite women to a trial.
type RecruitmentRequest struct {
	ID string `json:"id"`
	RecruitmentInput
	Researcher  Requester            `json:"researcher"`
	SubmittedAt time.Time            `json:"submitted_at"`
	Status      RecruitmentStatus    `json:"status"`
	Decision    *RecruitmentDecision `json:"decision,omitempty"`
	// Regions says, once approved, which regions' nodes have matched.
	Regions []RecruitmentRegion `json:"regions,omitempty"`
}

// StatusOn returns the request's status on a day: an approved request
// whose end date has passed is closed.
func (r RecruitmentRequest) StatusOn(today Date) RecruitmentStatus {
	if r.Status == RecruitmentApproved && r.Ends.Before(today) {
		return RecruitmentClosed
	}
	return r.Status
}

// InvitationStatus is where one woman's invitation is.
type InvitationStatus string

// The statuses of an invitation.
const (
	InvitationPending   InvitationStatus = "pending"   // in her inbox, unanswered
	InvitationAccepted  InvitationStatus = "accepted"  // she said yes: her contact details go to the researcher
	InvitationDeclined  InvitationStatus = "declined"  // she said no
	InvitationWithdrawn InvitationStatus = "withdrawn" // she withdrew her trial-contact opt-in before answering
)

// Invitation is one woman's invitation to one request's trial. It is kept
// at the hub only; the researcher never sees one, only counts and, for
// those who accepted, the contact details she gave.
type Invitation struct {
	ID      string           `json:"id"`
	Request string           `json:"request"`
	Person  PersonID         `json:"person_id"`
	Region  string           `json:"region"` // the region whose register matched her
	Status  InvitationStatus `json:"status"`
	Created time.Time        `json:"created"`
	// Answered is when she accepted, declined or withdrew.
	Answered time.Time `json:"answered,omitzero"`
	// Contact holds the contact details she gave, set when she accepts.
	Contact TrialContact `json:"contact,omitzero"`
	// Released is when the researcher first received her contact details.
	Released time.Time `json:"released,omitzero"`
}

// InvitationCounts are a request's invitations by status.
type InvitationCounts struct {
	Invited   int `json:"invited"`
	Accepted  int `json:"accepted"`
	Declined  int `json:"declined"`
	Pending   int `json:"pending"`
	Withdrawn int `json:"withdrawn"`
}

// RecruitmentNotification is a message to a woman that her inbox has a new
// invitation. It names no trial and no criteria: a text message or e-mail
// can be read by others.
type RecruitmentNotification struct {
	Seq        int64     `json:"seq"`
	Invitation string    `json:"invitation"`
	Person     PersonID  `json:"person_id"`
	Created    time.Time `json:"created"`
}

// RecruitmentStore keeps recruitment requests and invitations at the hub.
//
// Every write is durable on return, and each records the access events it
// causes (Events) in the same transaction, so that no invitation, answer or
// release happens without its transparency-log event, even across a crash.
//
// AddRecruitment stores a new pending request. Recruitment returns one
// (ENOTFOUND when unknown); Recruitments lists requests newest first, those
// of one researcher when by is not nil. DecideRecruitment records the
// permit authority's decision on a pending request (ECONFLICT when it is
// not pending). SetRecruitmentRegion records how matching went at a region.
//
// AddInvitations stores invitations for a request, at most until the
// request holds max invitations; a person already invited to the request
// is skipped; it returns those stored. Invitations lists a woman's
// invitations, newest first; Invitation returns one (ENOTFOUND).
// AnswerInvitation moves her pending invitation to accepted (with the
// contact details she gives) or declined, and ECONFLICT when it is not
// pending. WithdrawInvitations moves all her pending invitations to
// withdrawn and returns them. CountInvitations counts a request's
// invitations by status. ReleaseContacts returns the request's accepted
// invitations, marking the first release of each.
//
// PendingNotifications returns at most limit notifications not yet sent,
// oldest first, and NotificationsSent marks a page of them sent in one
// transaction (already sent or unknown ones are left as they are).
type RecruitmentStore interface {
	AddRecruitment(ctx context.Context, r RecruitmentRequest) error
	Recruitment(ctx context.Context, id string) (RecruitmentRequest, error)
	Recruitments(ctx context.Context, by *Requester) ([]RecruitmentRequest, error)
	DecideRecruitment(ctx context.Context, id string, d RecruitmentDecision) (RecruitmentRequest, error)
	SetRecruitmentRegion(ctx context.Context, id string, r RecruitmentRegion) error

	AddInvitations(ctx context.Context, request string, max int, invs []Invitation, events func(Invitation) []AccessEvent) ([]Invitation, error)
	Invitations(ctx context.Context, person PersonID) ([]Invitation, error)
	Invitation(ctx context.Context, id string) (Invitation, error)
	AnswerInvitation(ctx context.Context, id string, status InvitationStatus, contact TrialContact, at time.Time, events []AccessEvent) (Invitation, error)
	WithdrawInvitations(ctx context.Context, person PersonID, at time.Time, events func(Invitation) []AccessEvent) ([]Invitation, error)
	CountInvitations(ctx context.Context, request string) (InvitationCounts, error)
	ReleaseContacts(ctx context.Context, request string, at time.Time, events func(Invitation) []AccessEvent) ([]Invitation, error)

	PendingNotifications(ctx context.Context, limit int) ([]RecruitmentNotification, error)
	NotificationsSent(ctx context.Context, seqs []int64) error
}

// TrialCandidateStore is a node's part of matching: the women of its
// register with an examination that meets checked criteria and who opted
// in to trial contact in the node's consent replica, with the replica's
// version, read in one snapshot.
type TrialCandidateStore interface {
	TrialCandidates(ctx context.Context, c Criteria) ([]PersonID, int64, error)
}

// SmallCount is a count of persons as released outside the hub: the number
// when it is at least the small-cell threshold, otherwise suppressed ("fewer
// than 10") with Count null.
type SmallCount struct {
	Count      *int `json:"count"`
	Suppressed bool `json:"suppressed"`
}

// RecruitmentCounts are what a researcher learns of her request's
// invitations: how many were invited, accepted, declined (a withdrawn
// opt-in counts as declined) and are unanswered, each under the
// small-cell rule. Accepted is exact, since she receives their contacts.
type RecruitmentCounts struct {
	Invited    SmallCount `json:"invited"`
	Accepted   int        `json:"accepted"`
	Declined   SmallCount `json:"declined"`
	Unanswered SmallCount `json:"unanswered"`
	Threshold  int        `json:"threshold"`
}

// ReleasedContact is one woman's contact details as she gave them when she
// accepted an invitation: nothing else about her.
type ReleasedContact struct {
	Email    string    `json:"email,omitempty"`
	Phone    string    `json:"phone,omitempty"`
	Accepted time.Time `json:"accepted"`
}

// RecruitmentView is a request as its researcher or the permit authority
// sees it: the request, its status today, the counts, and for its
// researcher the contact details of the women who accepted.
type RecruitmentView struct {
	RecruitmentRequest
	Counts   *RecruitmentCounts `json:"counts,omitempty"`   // once approved
	Contacts []ReleasedContact  `json:"contacts,omitempty"` // its researcher only
}

// InboxItem is one invitation as the woman sees it in her inbox: the
// invitation text, who asks and why, how she was found (the criteria and
// the region whose register matched her), and her answer.
type InboxItem struct {
	ID             string           `json:"id"`
	Status         InvitationStatus `json:"status"`
	Created        time.Time        `json:"created"`
	Answered       time.Time        `json:"answered,omitzero"`
	Title          string           `json:"title"`
	Sponsor        string           `json:"sponsor"`
	EthicsApproval string           `json:"ethics_approval"`
	InvitationText string           `json:"invitation_text"`
	Researcher     Requester        `json:"researcher"`
	Ends           Date             `json:"ends"`
	Open           bool             `json:"open"`   // she can still answer
	Region         string           `json:"region"` // the region whose register matched her
	Criteria       Criteria         `json:"criteria"`
	// Contact is what was passed on to the researcher, once she accepted.
	Contact TrialContact `json:"contact,omitzero"`
}

// TrialMatchRequest is what the hub sends a node to match an approved
// recruitment request: the request's identity, title and researcher (for
// the access events the node records) and its checked criteria.
type TrialMatchRequest struct {
	Request    string    `json:"request"`
	Title      string    `json:"title"`
	Researcher Requester `json:"researcher"`
	Criteria   Criteria  `json:"criteria"`
	Ends       Date      `json:"ends"`
}

// TrialMatchAnswer is a node's answer: the women it matched, and the
// consent register version its replica held when it did.
type TrialMatchAnswer struct {
	Region         string     `json:"region"`
	ConsentVersion int64      `json:"consent_version"`
	Persons        []PersonID `json:"persons"`
}

// CheckRecruitment validates criteria for a recruitment request (purpose
// recruitment, unit women) and returns them normalised, as a node checks
// what the hub sends it.
func (c Criteria) CheckRecruitment() (Criteria, error) {
	if c.Purpose != PurposeRecruitment {
		return Criteria{}, Errorf(EINVALID, "criteria.purpose: %q: matching for trial contact is for purpose recruitment only", c.Purpose)
	}
	if c.Unit != "" && c.Unit != UnitWomen {
		return Criteria{}, Errorf(EINVALID, "criteria.unit: recruitment matches women")
	}
	return c.check(true)
}
