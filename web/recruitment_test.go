package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/problem"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// memCredentials is a credential store in memory.
type memCredentials struct {
	mu sync.Mutex
	m  map[bildrum.TokenHash]bildrum.Principal
}

func (c *memCredentials) PutCredential(ctx context.Context, h bildrum.TokenHash, p bildrum.Principal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[bildrum.TokenHash]bildrum.Principal{}
	}
	c.m[h] = p
	return nil
}

func (c *memCredentials) PrincipalByToken(ctx context.Context, h bildrum.TokenHash) (bildrum.Principal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[h]
	if !ok {
		return bildrum.Principal{}, bildrum.Errorf(bildrum.ENOTFOUND, "unknown token")
	}
	return p, nil
}

// The people of the tests, by token.
var (
	researcher = bildrum.Principal{Name: "Forskare Fia", Role: bildrum.RoleResearcher, Organisation: "Karolinska Institutet"}
	other      = bildrum.Principal{Name: "Forskare Olle", Role: bildrum.RoleResearcher, Organisation: "Lunds universitet"}
	officer    = bildrum.Principal{Name: "Handläggare Hanna", Role: bildrum.RolePermitOfficer, Organisation: "Tillståndsmyndigheten"}
	citizen    = bildrum.Principal{Name: "Anna", Role: bildrum.RoleCitizen, Person: "194501019802"}
	staff      = bildrum.Principal{Name: "Staff", Role: bildrum.RoleStaff, Organisation: "Region Skåne", Region: "12"}
	people     = map[string]bildrum.Principal{
		"tok-researcher": researcher, "tok-other": other, "tok-officer": officer, "tok-citizen": citizen, "tok-staff": staff,
	}
)

func testAuth(t *testing.T) *auth.Authenticator {
	t.Helper()
	creds := &memCredentials{}
	for tok, p := range people {
		creds.PutCredential(t.Context(), bildrum.HashToken(tok), p)
	}
	return &auth.Authenticator{Store: creds}
}

// fakeRecruiter is the recruitment broker in memory. It keeps the
// contract of recruiter: researchers see their own requests only, a
// decision needs a pending request, an answer a pending and open
// invitation; and it records the decisions and answers it was asked for.
type fakeRecruiter struct {
	mu       sync.Mutex
	now      func() time.Time
	requests []bildrum.RecruitmentView // newest first
	inbox    map[bildrum.PersonID][]bildrum.InboxItem
	contact  bildrum.TrialContact // what a woman who accepts gives

	decisions []decideCall
	answers   []answerCall
}

type decideCall struct {
	By      string
	ID      string
	Approve bool
	Reason  string
}

type answerCall struct {
	Person     bildrum.PersonID
	Invitation string
	Accept     bool
}

func newFakeRecruiter() *fakeRecruiter {
	return &fakeRecruiter{now: time.Now, inbox: map[bildrum.PersonID][]bildrum.InboxItem{},
		contact: bildrum.TrialContact{OptIn: true, Email: "anna@example.se", Phone: "070-123 45 67"}}
}

func (f *fakeRecruiter) Submit(ctx context.Context, p bildrum.Principal, in bildrum.RecruitmentInput) (bildrum.RecruitmentRequest, error) {
	if p.Role != bildrum.RoleResearcher {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.EFORBIDDEN, "researchers only")
	}
	checked, err := in.Check(bildrum.DateOf(f.now()))
	if err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := bildrum.RecruitmentRequest{
		ID: fmt.Sprintf("rec-%d", len(f.requests)+1), RecruitmentInput: checked,
		Researcher: bildrum.RequesterOf(p), SubmittedAt: f.now(), Status: bildrum.RecruitmentPending,
	}
	f.requests = slices.Insert(f.requests, 0, bildrum.RecruitmentView{RecruitmentRequest: r})
	return r, nil
}

func (f *fakeRecruiter) find(p bildrum.Principal, id string) (int, error) {
	for i, v := range f.requests {
		if v.ID == id && (p.Role == bildrum.RolePermitOfficer || v.Researcher == bildrum.RequesterOf(p)) {
			return i, nil
		}
	}
	return 0, bildrum.Errorf(bildrum.ENOTFOUND, "no recruitment request %s", id)
}

func (f *fakeRecruiter) Decide(ctx context.Context, p bildrum.Principal, id string, approve bool, reason string) (bildrum.RecruitmentRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, decideCall{p.Name, id, approve, reason})
	i, err := f.find(p, id)
	if err != nil {
		return bildrum.RecruitmentRequest{}, err
	}
	v := &f.requests[i]
	if v.Status != bildrum.RecruitmentPending {
		return bildrum.RecruitmentRequest{}, bildrum.Errorf(bildrum.ECONFLICT, "request %s is %s, not pending", id, v.Status)
	}
	v.Decision = &bildrum.RecruitmentDecision{Approve: approve, Reason: reason, By: p.Name, Organisation: p.Organisation, At: f.now()}
	v.Status = bildrum.RecruitmentRejected
	if approve {
		v.Status = bildrum.RecruitmentApproved
	}
	return v.RecruitmentRequest, nil
}

// match plays the nodes and the hub after an approval: region 12 matched,
// the citizen of the tests got an invitation.
func (f *fakeRecruiter) match(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.requests {
		v := &f.requests[i]
		if v.ID != id {
			continue
		}
		v.Regions = []bildrum.RecruitmentRegion{
			{RegionAnswer: bildrum.RegionAnswer{Region: "12", Status: bildrum.AnswerOK}, ConsentVersion: 7, At: f.now()},
			{RegionAnswer: bildrum.RegionAnswer{Region: "14", Status: bildrum.AnswerDown, Reason: "could not be reached"}, At: f.now()},
		}
		f.inbox[citizen.Person] = append(f.inbox[citizen.Person], bildrum.InboxItem{
			ID: "inv-" + id, Status: bildrum.InvitationPending, Created: f.now(),
			Title: v.Title, Sponsor: v.Sponsor, EthicsApproval: v.EthicsApproval, InvitationText: v.InvitationText,
			Researcher: v.Researcher, Ends: v.Ends, Open: true, Region: "12", Criteria: v.Criteria,
		})
	}
}

// counts returns the request's counts as the broker would release them.
func (f *fakeRecruiter) counts(id string) *bildrum.RecruitmentCounts {
	invited, accepted, declined, pending := 0, 0, 0, 0
	for _, it := range f.inbox[citizen.Person] {
		if it.ID != "inv-"+id {
			continue
		}
		invited++
		switch it.Status {
		case bildrum.InvitationAccepted:
			accepted++
		case bildrum.InvitationDeclined, bildrum.InvitationWithdrawn:
			declined++
		default:
			pending++
		}
	}
	small := func(n int) bildrum.SmallCount {
		if n < 10 {
			return bildrum.SmallCount{Suppressed: true}
		}
		return bildrum.SmallCount{Count: &n}
	}
	return &bildrum.RecruitmentCounts{Invited: small(invited), Accepted: accepted, Declined: small(declined), Unanswered: small(pending), Threshold: 10}
}

func (f *fakeRecruiter) view(p bildrum.Principal, v bildrum.RecruitmentView) bildrum.RecruitmentView {
	if v.Status == bildrum.RecruitmentApproved || v.Status == bildrum.RecruitmentClosed {
		v.Counts = f.counts(v.ID)
		if p.Role == bildrum.RoleResearcher {
			for _, it := range f.inbox[citizen.Person] {
				if it.ID == "inv-"+v.ID && it.Status == bildrum.InvitationAccepted {
					v.Contacts = append(v.Contacts, bildrum.ReleasedContact{Email: it.Contact.Email, Phone: it.Contact.Phone, Accepted: it.Answered})
				}
			}
		}
	}
	return v
}

func (f *fakeRecruiter) List(ctx context.Context, p bildrum.Principal) ([]bildrum.RecruitmentView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bildrum.RecruitmentView
	for _, v := range f.requests {
		if p.Role == bildrum.RolePermitOfficer || v.Researcher == bildrum.RequesterOf(p) {
			out = append(out, f.view(p, v))
		}
	}
	return out, nil
}

func (f *fakeRecruiter) View(ctx context.Context, p bildrum.Principal, id string) (bildrum.RecruitmentView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(p, id)
	if err != nil {
		return bildrum.RecruitmentView{}, err
	}
	return f.view(p, f.requests[i]), nil
}

func (f *fakeRecruiter) Inbox(ctx context.Context, p bildrum.Principal) ([]bildrum.InboxItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.inbox[p.Person]), nil
}

func (f *fakeRecruiter) Answer(ctx context.Context, p bildrum.Principal, invitation string, accept bool) (bildrum.InboxItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, answerCall{p.Person, invitation, accept})
	for i, it := range f.inbox[p.Person] {
		if it.ID != invitation {
			continue
		}
		if it.Status != bildrum.InvitationPending || !it.Open {
			return bildrum.InboxItem{}, bildrum.Errorf(bildrum.ECONFLICT, "invitation %s is %s", invitation, it.Status)
		}
		it.Answered = f.now()
		it.Status = bildrum.InvitationDeclined
		if accept {
			it.Status = bildrum.InvitationAccepted
			it.Contact = f.contact
		}
		f.inbox[p.Person][i] = it
		return it, nil
	}
	return bildrum.InboxItem{}, bildrum.Errorf(bildrum.ENOTFOUND, "no invitation %s of yours", invitation)
}

// recruitmentServer serves Recruitment over the fake.
func recruitmentServer(t *testing.T) (*http.ServeMux, *fakeRecruiter) {
	t.Helper()
	f := newFakeRecruiter()
	mux := http.NewServeMux()
	(&Recruitment{Broker: f, Auth: testAuth(t)}).Routes(mux)
	return mux, f
}

// call sends a request with a bearer token ("" for none) and returns the
// recorded answer.
func call(mux http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// problemOf decodes problem details, failing the test when the answer is not one.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder) problem.Details {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, want %q; body %s", ct, problem.ContentType, rec.Body)
	}
	var d problem.Details
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatalf("problem details: %v: %s", err, rec.Body)
	}
	return d
}

// goodInput is a submission that passes RecruitmentInput.Check.
func goodInput() string {
	ends := bildrum.DateOf(time.Now()).AddMonths(3)
	return `{"title": "Tomosyntes vid tät bröstvävnad", "sponsor": "Karolinska Institutet", "ethics_approval": "Dnr 2026-01234-01",
		"criteria": {"regions": ["12"], "age": {"min": 50, "max": 69}, "density": ["c", "d"]},
		"invitation_text": "Vi undersöker om tomosyntes hittar fler cancrar hos kvinnor med tät bröstvävnad.",
		"max_invitations": 200, "ends": "` + ends.String() + `"}`
}

func TestRecruitmentRoles(t *testing.T) {
	mux, f := recruitmentServer(t)
	if _, err := f.Submit(t.Context(), researcher, mustInput(t, goodInput())); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"anonymous submits", "POST", "/api/v1/recruitment", "", goodInput(), http.StatusUnauthorized},
		{"anonymous lists", "GET", "/api/v1/recruitment", "", "", http.StatusUnauthorized},
		{"anonymous inbox", "GET", "/api/v1/me/invitations", "", "", http.StatusUnauthorized},
		{"unknown token", "GET", "/api/v1/recruitment", "tok-nobody", "", http.StatusUnauthorized},
		{"citizen submits", "POST", "/api/v1/recruitment", "tok-citizen", goodInput(), http.StatusForbidden},
		{"citizen lists", "GET", "/api/v1/recruitment", "tok-citizen", "", http.StatusForbidden},
		{"citizen views", "GET", "/api/v1/recruitment/rec-1", "tok-citizen", "", http.StatusForbidden},
		{"permit officer submits", "POST", "/api/v1/recruitment", "tok-officer", goodInput(), http.StatusForbidden},
		{"staff lists", "GET", "/api/v1/recruitment", "tok-staff", "", http.StatusForbidden},
		{"researcher decides", "POST", "/api/v1/recruitment/rec-1/decision", "tok-researcher", `{"approve": true}`, http.StatusForbidden},
		{"citizen decides", "POST", "/api/v1/recruitment/rec-1/decision", "tok-citizen", `{"approve": true}`, http.StatusForbidden},
		{"researcher reads an inbox", "GET", "/api/v1/me/invitations", "tok-researcher", "", http.StatusForbidden},
		{"permit officer accepts", "POST", "/api/v1/me/invitations/inv-1/accept", "tok-officer", "", http.StatusForbidden},
		{"researcher declines", "POST", "/api/v1/me/invitations/inv-1/decline", "tok-researcher", "", http.StatusForbidden},
		{"another researcher's request", "GET", "/api/v1/recruitment/rec-1", "tok-other", "", http.StatusNotFound},
		{"researcher lists", "GET", "/api/v1/recruitment", "tok-researcher", "", http.StatusOK},
		{"permit officer lists", "GET", "/api/v1/recruitment", "tok-officer", "", http.StatusOK},
		{"permit officer views", "GET", "/api/v1/recruitment/rec-1", "tok-officer", "", http.StatusOK},
		{"citizen reads her inbox", "GET", "/api/v1/me/invitations", "tok-citizen", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(mux, tt.method, tt.path, tt.token, tt.body)
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d; body %s", tt.method, tt.path, rec.Code, tt.want, rec.Body)
			}
			if tt.want >= 400 {
				if d := problemOf(t, rec); d.Status != tt.want || d.Detail == "" {
					t.Errorf("problem details %+v, want status %d and a detail", d, tt.want)
				}
			}
		})
	}
	if len(f.decisions) != 0 {
		t.Errorf("the broker was asked to decide %+v by a role that may not", f.decisions)
	}
}

func mustInput(t *testing.T, s string) bildrum.RecruitmentInput {
	t.Helper()
	var in bildrum.RecruitmentInput
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestRecruitmentSubmit(t *testing.T) {
	mux, f := recruitmentServer(t)
	rec := call(mux, "POST", "/api/v1/recruitment", "tok-researcher", goodInput())
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST /api/v1/recruitment = %d, want 201; body %s", rec.Code, rec.Body)
	}
	var got struct {
		ID         string                    `json:"id"`
		Status     bildrum.RecruitmentStatus `json:"status"`
		Title      string                    `json:"title"`
		Researcher bildrum.Requester         `json:"researcher"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "rec-1" || got.Status != bildrum.RecruitmentPending || got.Title != "Tomosyntes vid tät bröstvävnad" || got.Researcher != bildrum.RequesterOf(researcher) {
		t.Errorf("answer %+v, want rec-1 pending, the title, and the researcher", got)
	}
	if loc := rec.Header().Get("Location"); loc != "/api/v1/recruitment/rec-1" {
		t.Errorf("Location %q, want /api/v1/recruitment/rec-1", loc)
	}
	if len(f.requests) != 1 || f.requests[0].Criteria.Purpose != bildrum.PurposeRecruitment {
		t.Errorf("broker holds %+v, want one request for purpose recruitment", f.requests)
	}

	// The broker's own check comes back as problem details.
	bad := strings.Replace(goodInput(), `"max_invitations": 200`, `"max_invitations": 0`, 1)
	rec = call(mux, "POST", "/api/v1/recruitment", "tok-researcher", bad)
	if d := problemOf(t, rec); rec.Code != http.StatusBadRequest || !strings.Contains(d.Detail, "max_invitations") {
		t.Errorf("max_invitations 0: %d %+v, want 400 naming max_invitations", rec.Code, d)
	}
}

func TestRecruitmentBadBodies(t *testing.T) {
	mux, f := recruitmentServer(t)
	huge := strings.Replace(goodInput(), `"invitation_text": "`, `"invitation_text": "`+strings.Repeat("x", 40<<10), 1)
	tests := []struct {
		name, path, body string
		want             int
		detail           string
	}{
		{"unknown field", "/api/v1/recruitment", strings.Replace(goodInput(), `"sponsor"`, `"sponser"`, 1), 400, `unknown field "sponser"`},
		{"unknown criterion", "/api/v1/recruitment", strings.Replace(goodInput(), `"density"`, `"densty"`, 1), 400, `unknown field "densty"`},
		{"too large", "/api/v1/recruitment", huge, 413, "32 KiB"},
		{"wrong type", "/api/v1/recruitment", strings.Replace(goodInput(), `200`, `"many"`, 1), 400, "max_invitations: want a JSON number"},
		{"bad date", "/api/v1/recruitment", strings.Replace(goodInput(), `"ends": "`, `"ends": "31/`, 1), 400, "YYYY-MM-DD"},
		{"not JSON", "/api/v1/recruitment", `title=x`, 400, "not valid JSON"},
		{"two values", "/api/v1/recruitment", goodInput() + `{}`, 400, "more than one JSON value"},
		{"empty", "/api/v1/recruitment", ``, 400, "the body is empty"},
		{"decision: unknown field", "/api/v1/recruitment/rec-1/decision", `{"approve": true, "comment": "ok"}`, 400, `unknown field "comment"`},
		{"decision: too large", "/api/v1/recruitment/rec-1/decision", `{"approve": false, "reason": "` + strings.Repeat("x", 40<<10) + `"}`, 413, "32 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := "tok-researcher"
			if strings.HasSuffix(tt.path, "/decision") {
				token = "tok-officer"
			}
			rec := call(mux, "POST", tt.path, token, tt.body)
			d := problemOf(t, rec)
			if rec.Code != tt.want || d.Status != tt.want || !strings.Contains(d.Detail, tt.detail) {
				t.Errorf("POST %s = %d %q, want %d with %q", tt.path, rec.Code, d.Detail, tt.want, tt.detail)
			}
		})
	}
	if len(f.requests) != 0 || len(f.decisions) != 0 {
		t.Errorf("a bad body reached the broker: %+v %+v", f.requests, f.decisions)
	}
}

func TestRecruitmentDecision(t *testing.T) {
	mux, f := recruitmentServer(t)
	for range 2 {
		if _, err := f.Submit(t.Context(), researcher, mustInput(t, goodInput())); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, id, body string
		want           int
		detail         string
		call           *decideCall
	}{
		{"reject without reason", "rec-1", `{"approve": false}`, 400, "reason: required when rejecting", nil},
		{"reject with blank reason", "rec-1", `{"approve": false, "reason": "  \n "}`, 400, "reason: required when rejecting", nil},
		{"no decision", "rec-1", `{"reason": "fine"}`, 400, `"approve": true`, nil},
		{"approve", "rec-1", `{"approve": true}`, 200, "", &decideCall{officer.Name, "rec-1", true, ""}},
		{"decided already", "rec-1", `{"approve": false, "reason": "changed my mind"}`, 409, "not pending", &decideCall{officer.Name, "rec-1", false, "changed my mind"}},
		{"reject", "rec-2", `{"approve": false, "reason": " The invitation text does not say what taking part means. "}`, 200, "",
			&decideCall{officer.Name, "rec-2", false, "The invitation text does not say what taking part means."}},
		{"unknown request", "rec-9", `{"approve": true}`, 404, "rec-9", &decideCall{officer.Name, "rec-9", true, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.decisions)
			rec := call(mux, "POST", "/api/v1/recruitment/"+tt.id+"/decision", "tok-officer", tt.body)
			if rec.Code != tt.want {
				t.Fatalf("decision %s = %d, want %d; body %s", tt.body, rec.Code, tt.want, rec.Body)
			}
			if tt.want >= 400 {
				if d := problemOf(t, rec); !strings.Contains(d.Detail, tt.detail) {
					t.Errorf("detail %q, want %q", d.Detail, tt.detail)
				}
			}
			var got *decideCall
			if len(f.decisions) > before {
				got = &f.decisions[len(f.decisions)-1]
			}
			if diff := cmp.Diff(tt.call, got); diff != "" {
				t.Errorf("broker's Decide calls (-want +got):\n%s", diff)
			}
		})
	}
	var req bildrum.RecruitmentRequest
	rec := call(mux, "GET", "/api/v1/recruitment/rec-2", "tok-researcher", "")
	json.Unmarshal(rec.Body.Bytes(), &req)
	if req.Status != bildrum.RecruitmentRejected || req.Decision == nil || req.Decision.Reason == "" {
		t.Errorf("researcher sees %+v, want rejected with its reason", req)
	}
}

func TestRecruitmentListsAreArrays(t *testing.T) {
	mux, _ := recruitmentServer(t)
	for _, tt := range []struct{ path, token string }{
		{"/api/v1/recruitment", "tok-researcher"},
		{"/api/v1/recruitment", "tok-officer"},
		{"/api/v1/me/invitations", "tok-citizen"},
	} {
		rec := call(mux, "GET", tt.path, tt.token, "")
		if body := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusOK || body != "[]" {
			t.Errorf("GET %s as %s = %d %s, want 200 []", tt.path, tt.token, rec.Code, body)
		}
	}
}

func TestInvitationAnswers(t *testing.T) {
	mux, f := recruitmentServer(t)
	in := mustInput(t, goodInput())
	for range 2 {
		r, err := f.Submit(t.Context(), researcher, in)
		if err != nil {
			t.Fatal(err)
		}
		f.Decide(t.Context(), officer, r.ID, true, "")
		f.match(r.ID)
	}
	f.decisions = nil

	// Her inbox, with how she was found in her language.
	rec := call(mux, "GET", "/api/v1/me/invitations?lang=en", "tok-citizen", "")
	var inbox []inboxEntry
	if err := json.Unmarshal(rec.Body.Bytes(), &inbox); err != nil || len(inbox) != 2 {
		t.Fatalf("inbox = %s (%v), want two invitations", rec.Body, err)
	}
	if e := inbox[0]; e.RegionName != "Skåne" || !strings.Contains(e.WhyIntro, "Region Skåne searched") ||
		!slices.Contains(e.Why, "you were 50 to 69 years old") || e.InvitationText == "" {
		t.Errorf("inbox entry %+v: want Skåne, an English explanation and the text", e)
	}

	tests := []struct {
		name, path, token string
		header            bool // the CSRF header, for the cookie
		want              int
		status            bildrum.InvitationStatus
		call              *answerCall
	}{
		{"accept", "/api/v1/me/invitations/inv-rec-1/accept", "tok-citizen", false, 200, bildrum.InvitationAccepted, &answerCall{citizen.Person, "inv-rec-1", true}},
		{"accept again", "/api/v1/me/invitations/inv-rec-1/accept", "tok-citizen", false, 409, "", &answerCall{citizen.Person, "inv-rec-1", true}},
		{"cookie without header", "/api/v1/me/invitations/inv-rec-2/decline", "", false, 403, "", nil},
		{"decline with the cookie", "/api/v1/me/invitations/inv-rec-2/decline", "", true, 200, bildrum.InvitationDeclined, &answerCall{citizen.Person, "inv-rec-2", false}},
		{"unknown", "/api/v1/me/invitations/inv-x/decline", "tok-citizen", false, 404, "", &answerCall{citizen.Person, "inv-x", false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.answers)
			req := httptest.NewRequest("POST", tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			} else {
				req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: "tok-citizen"})
			}
			if tt.header {
				req.Header.Set(auth.CSRFHeader, "1")
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("POST %s = %d, want %d; body %s", tt.path, rec.Code, tt.want, rec.Body)
			}
			if tt.want == 200 {
				var e inboxEntry
				json.Unmarshal(rec.Body.Bytes(), &e)
				if e.Status != tt.status || len(e.Why) == 0 || !strings.HasPrefix(e.WhyIntro, "Du har valt") {
					t.Errorf("answer %+v, want status %s with a Swedish explanation", e, tt.status)
				}
				if tt.status == bildrum.InvitationAccepted && e.Contact.Email != "anna@example.se" {
					t.Errorf("accepted without the contact passed on: %+v", e.Contact)
				}
			}
			var got *answerCall
			if len(f.answers) > before {
				got = &f.answers[len(f.answers)-1]
			}
			if diff := cmp.Diff(tt.call, got); diff != "" {
				t.Errorf("broker's Answer calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecruitmentPage(t *testing.T) {
	mux, _ := recruitmentServer(t)
	tests := []struct {
		name, token string
		want        int
		has, hasNot []string
	}{
		{"researcher", "tok-researcher", 200,
			[]string{`id="recruit-form"`, `id="recruit-submit"`, `id="requests"`, `data-role="researcher"`, `value="25"`, `id="invitation-count"`, "0 / 2000", `src="/static/recruitment.js"`},
			[]string{"<script>"}},
		{"permit officer", "tok-officer", 200,
			[]string{`id="requests"`, `data-role="permit-officer"`, "Requests for trial recruitment", `id="refresh"`},
			[]string{`id="recruit-form"`}},
		{"citizen", "tok-citizen", 403, []string{"another role"}, nil},
		{"staff", "tok-staff", 403, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/recruitment", nil)
			req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: tt.token})
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			page := rec.Body.String()
			if rec.Code != tt.want {
				t.Fatalf("GET /recruitment as %s = %d, want %d", tt.name, rec.Code, tt.want)
			}
			for _, s := range tt.has {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(page, s) {
					t.Errorf("page has %q", s)
				}
			}
			if tt.want == 200 && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("no content security policy: %q", rec.Header().Get("Content-Security-Policy"))
			}
		})
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/recruitment", nil))
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/login?next=%2Frecruitment" {
		t.Errorf("GET /recruitment signed out = %d to %q, want 303 to /login?next=%%2Frecruitment", rec.Code, loc)
	}
}

func TestCriteriaPhrases(t *testing.T) {
	d := func(s string) bildrum.Date { v, _ := bildrum.ParseDate(s); return v }
	tests := []struct {
		name   string
		c      bildrum.Criteria
		sv, en []string
	}{
		{"nothing", bildrum.Criteria{Purpose: bildrum.PurposeRecruitment},
			[]string{"studien inte ställde några fler villkor"}, []string{"the study set no further conditions"}},
		{"ages and dates", bildrum.Criteria{Age: &bildrum.IntRange{Min: 50, Max: 69}, ExamDate: &bildrum.DateRange{From: d("2020-01-01"), To: d("2024-12-31")}},
			[]string{"du var 50–69 år gammal", "undersökningen gjordes mellan 2020-01-01 och 2024-12-31"},
			[]string{"you were 50 to 69 years old", "the examination was between 2020-01-01 and 2024-12-31"}},
		{"open ends", bildrum.Criteria{Age: &bildrum.IntRange{Min: 60}, ExamDate: &bildrum.DateRange{To: d("2019-06-30")}},
			[]string{"du var minst 60 år gammal", "undersökningen gjordes 2019-06-30 eller tidigare"},
			[]string{"you were at least 60 years old", "the examination was on 2019-06-30 or earlier"}},
		{"round, BI-RADS, density", bildrum.Criteria{Round: bildrum.RoundFirst, BIRADS: []bildrum.BIRADS{"1", "2"}, Density: []bildrum.Density{"d"}},
			[]string{"det var din första screeningundersökning", "röntgenläkarnas bedömning (BI-RADS) var 1 (inget att anmärka) eller 2 (godartat fynd)", "brösttätheten var d (mycket tät)"},
			[]string{"it was your first screening examination", "the radiologists' assessment (BI-RADS) was 1 (nothing found) or 2 (a benign finding)", "your breast density was d (extremely dense)"}},
		{"outcomes and tumour", bildrum.Criteria{Round: bildrum.RoundSubsequent, Outcomes: []bildrum.Finding{bildrum.FindingInterval}, TumourSizeMM: &bildrum.IntRange{Max: 20}, NodalStatus: []string{bildrum.NodesNegative}},
			[]string{"det var inte din första screeningundersökning", "en cancer upptäcktes efter undersökningen, före nästa kallelse", "tumören var högst 20 mm", "lymfkörtlarna i armhålan var fria från cancer"},
			[]string{"it was not your first screening examination", "a cancer was found after it, before your next invitation", "the tumour measured at most 20 mm", "the lymph nodes in the armpit were free of cancer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.sv, criteriaPhrases(tt.c, "sv")); diff != "" {
				t.Errorf("criteriaPhrases(%+v, sv) (-want +got):\n%s", tt.c, diff)
			}
			if diff := cmp.Diff(tt.en, criteriaPhrases(tt.c, "en")); diff != "" {
				t.Errorf("criteriaPhrases(%+v, en) (-want +got):\n%s", tt.c, diff)
			}
		})
	}
}

// memConsent is a consent register in memory, for the citizen's page.
type memConsent struct {
	rec bildrum.ConsentRecord
}

func (m *memConsent) PutConsent(ctx context.Context, person bildrum.PersonID, c bildrum.ConsentChoices, by string) (bildrum.ConsentRecord, error) {
	c, err := c.Check()
	if err != nil {
		return bildrum.ConsentRecord{}, err
	}
	m.rec = bildrum.ConsentRecord{Person: person, Choices: c, Version: m.rec.Version + 1, ChangedAt: time.Now(), ChangedBy: by}
	return m.rec, nil
}

func (m *memConsent) Consent(ctx context.Context, person bildrum.PersonID) (bildrum.ConsentRecord, error) {
	r := m.rec
	r.Person = person
	return r, nil
}

func (m *memConsent) ConsentHistory(ctx context.Context, person bildrum.PersonID) ([]bildrum.ConsentRecord, error) {
	return []bildrum.ConsentRecord{m.rec}, nil
}

func (m *memConsent) ConsentChanges(ctx context.Context, since int64, limit int) ([]bildrum.ConsentRecord, int64, error) {
	return nil, m.rec.Version, nil
}

func TestCitizenPageInbox(t *testing.T) {
	a := testAuth(t)
	tests := []struct {
		name, inbox, query string
		has, hasNot        []string
	}{
		{"swedish", "/api/v1/me/invitations", "", []string{`id="inbox"`, "Inbjudningar till studier", `data-inbox="/api/v1/me/invitations"`,
			"Varför fick jag den här?", "dras dina obesvarade inbjudningar tillbaka", `class="invitation card"`, `src="/static/inbox.js"`}, nil},
		{"english", "/api/v1/me/invitations", "?lang=en", []string{"Invitations to studies", "Why did I get this?", "your unanswered invitations are withdrawn"}, nil},
		{"no recruitment", "", "", nil, []string{`id="inbox"`, "inbox.js"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			(&Citizen{Register: &memConsent{}, Auth: a, Inbox: tt.inbox}).Routes(mux)
			req := httptest.NewRequest("GET", "/me"+tt.query, nil)
			req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: "tok-citizen"})
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			page := rec.Body.String()
			if rec.Code != 200 {
				t.Fatalf("GET /me = %d: %s", rec.Code, page)
			}
			for _, s := range tt.has {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(page, s) {
					t.Errorf("page has %q", s)
				}
			}
		})
	}
}

// TestBrowserRecruitment runs the pages' scripts in Chromium against the
// fake broker: the researcher submits (first wrongly, and reads why), the
// permit officer cannot reject without a reason and approves, the woman
// reads her invitation, why she got it, and accepts, and the researcher
// then sees the counts and her contact details.
func TestBrowserRecruitment(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	f := newFakeRecruiter()
	a := testAuth(t)
	register := &memConsent{}
	if _, err := register.PutConsent(t.Context(), citizen.Person, bildrum.ConsentChoices{TrialContact: f.contact}, citizen.Name); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&Sessions{Auth: a, Demo: []DemoPersona{
		{Name: "researcher", Role: bildrum.RoleResearcher, Token: "tok-researcher"},
		{Name: "permit-officer", Role: bildrum.RolePermitOfficer, Token: "tok-officer"},
		{Name: "citizen", Role: bildrum.RoleCitizen, Token: "tok-citizen"},
	}}).Routes(mux)
	(&Recruitment{Broker: f, Auth: a}).Routes(mux)
	(&Citizen{Register: register, Auth: a, Inbox: "/api/v1/me/invitations"}).Routes(mux)
	mux.Handle("GET /static/", staticHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	signIn := func(persona, page, wait string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/login?next="+page),
			chromedp.Click(chromedp.CSS(`button[data-persona="`+persona+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(wait)),
		)
		if err != nil {
			t.Fatalf("sign in as %s to %s: %v", persona, page, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// The researcher's first try lacks a title; the page says so.
	signIn("researcher", "/recruitment", "#recruit-form")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#recruit-submit`)), chromedp.WaitVisible(chromedp.CSS(`#recruit-problem`))); err != nil {
		t.Fatal(err)
	}
	if got := text("#recruit-problem"); !strings.Contains(got, "title: required") {
		t.Errorf("problem shown %q, want the title required", got)
	}
	letter := "Vi prövar tomosyntes.\n<b>Fet</b> text är inte HTML."
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Tomosyntes vid tät bröstvävnad"),
		chromedp.SendKeys(chromedp.CSS(`input[name=sponsor]`), "Karolinska Institutet"),
		chromedp.SendKeys(chromedp.CSS(`input[name=ethics_approval]`), "Dnr 2026-01234-01"),
		chromedp.Click(chromedp.CSS(`input[name=regions][value="12"]`)),
		chromedp.Click(chromedp.CSS(`input[name=density][value=d]`)),
		chromedp.SendKeys(chromedp.CSS(`#invitation-text`), letter),
		chromedp.SetValue(chromedp.CSS(`#ends`), bildrum.DateOf(time.Now()).AddMonths(2).String()),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := text("#invitation-count"), fmt.Sprintf("%d / 2000", len([]rune(letter))); got != want {
		t.Errorf("counter reads %q, want %q", got, want)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#recruit-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#requests .request[data-id="rec-1"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(`.request[data-id="rec-1"] .status`); got != "pending" {
		t.Errorf("status %q, want pending", got)
	}
	f.mu.Lock()
	c := f.requests[0].Criteria
	f.mu.Unlock()
	if !slices.Equal(c.Density, []bildrum.Density{"d"}) || !slices.Equal(c.Regions, []string{"12"}) || c.Age == nil || c.Age.Min != 50 {
		t.Errorf("broker got criteria %+v, want region 12, density d, from age 50", c)
	}

	// The permit officer must give a reason to reject; she approves.
	signIn("permit-officer", "/recruitment", `.request[data-id="rec-1"] .approve`)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.request[data-id="rec-1"] .reject`)),
		chromedp.WaitVisible(chromedp.CSS(`.request[data-id="rec-1"] .decision-problem`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(`.request[data-id="rec-1"] .decision-problem`); !strings.Contains(got, "reason: required when rejecting") {
		t.Errorf("reject without reason shows %q", got)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.request[data-id="rec-1"] .approve`)),
		chromedp.WaitVisible(chromedp.CSS(`.request[data-id="rec-1"][data-status="approved"] .count-invited`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(`.request[data-id="rec-1"] .status`); got != "approved" {
		t.Errorf("status after approval %q", got)
	}
	f.match("rec-1")

	// She finds the invitation in her inbox, reads why, and accepts.
	signIn("citizen", "/me", `.invitation[data-id="inv-rec-1"] .accept`)
	inv := `.invitation[data-id="inv-rec-1"]`
	if got := text(inv + " .inv-text"); !strings.Contains(got, "<b>Fet</b>") {
		t.Errorf("invitation text %q, want the researcher's text as written", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.invitation b').length`)); n != 0 {
		t.Errorf("the invitation text was read as HTML: %d <b> elements", n)
	}
	why, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(inv+" .why")))
	for _, want := range []string{"Region Skåne sökte", "du var 50–74 år gammal", "brösttätheten var d (mycket tät)"} {
		if !strings.Contains(why, want) {
			t.Errorf("why reads %q, want %q", why, want)
		}
	}
	if got, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(inv+" .inv-will-pass"))); got != "anna@example.se, 070-123 45 67" {
		t.Errorf("accepting would pass on %q", got)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(inv+" .accept")),
		chromedp.WaitVisible(chromedp.CSS(`.invitation[data-status="accepted"] .inv-contact`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(inv + " .invitation-status"); !strings.HasPrefix(got, "Du tackade ja") {
		t.Errorf("status after accepting %q", got)
	}
	if got := text(inv + " .inv-contact-list"); got != "anna@example.se, 070-123 45 67" {
		t.Errorf("passed on %q", got)
	}
	f.mu.Lock()
	answers := slices.Clone(f.answers)
	f.mu.Unlock()
	if diff := cmp.Diff([]answerCall{{citizen.Person, "inv-rec-1", true}}, answers); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}

	// The researcher sees the counts and her contact details.
	signIn("researcher", "/recruitment", `.request[data-id="rec-1"] .contact`)
	card := `.request[data-id="rec-1"] `
	for sel, want := range map[string]string{
		".count-invited": "fewer than 10", ".count-accepted": "1", ".count-declined": "fewer than 10", ".count-unanswered": "fewer than 10",
		".contact .contact-email": "anna@example.se", ".contact .contact-phone": "070-123 45 67",
	} {
		if got := text(card + sel); got != want {
			t.Errorf("%s reads %q, want %q", sel, got, want)
		}
	}
	if got := text(card + `.matching [data-region="14"]`); !strings.Contains(got, "could not be reached") {
		t.Errorf("region 14 reads %q", got)
	}
}
