package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
)

// maxRecruitmentBody caps a recruitment request or a decision: the
// invitation text is at most 2000 characters, so 32 KiB leaves room for
// any honest request.
const maxRecruitmentBody = 32 << 10

// recruiter is the recruitment broker at the hub, as the pages and APIs use it.
//
// Every method is called with the authenticated principal and enforces who
// may do what itself: a researcher sees and submits her own requests only,
// a permit officer decides, a citizen sees and answers her own invitations.
// Errors are domain errors: EINVALID for a bad submission or answer,
// ENOTFOUND for an unknown request or invitation (or one of somebody
// else), ECONFLICT for a decision on a request that is not pending or an
// answer to an invitation that is not pending or no longer open.
type recruiter interface {
	Submit(ctx context.Context, p bildrum.Principal, in bildrum.RecruitmentInput) (bildrum.RecruitmentRequest, error)
	Decide(ctx context.Context, p bildrum.Principal, id string, approve bool, reason string) (bildrum.RecruitmentRequest, error)
	List(ctx context.Context, p bildrum.Principal) ([]bildrum.RecruitmentView, error)
	View(ctx context.Context, p bildrum.Principal, id string) (bildrum.RecruitmentView, error)
	Inbox(ctx context.Context, p bildrum.Principal) ([]bildrum.InboxItem, error)
	Answer(ctx context.Context, p bildrum.Principal, invitation string, accept bool) (bildrum.InboxItem, error)
}

// Recruitment serves trial recruitment at the hub (DESIGN.md, flow 4): the
// researcher's requests and the permit authority's decisions on them
// (/recruitment and /api/v1/recruitment), and a woman's invitations
// (/api/v1/me/invitations, shown on her page /me).
type Recruitment struct {
	// Broker keeps the requests and invitations and enforces who may see
	// and do what.
	Broker recruiter
	Auth   *auth.Authenticator
	Log    *slog.Logger

	page *template.Template
}

// Routes adds the recruitment page and APIs to mux.
func (rc *Recruitment) Routes(mux *http.ServeMux) {
	rc.page = parse("recruitment.html")
	mux.HandleFunc("GET /recruitment", rc.recruitmentPage)
	mux.HandleFunc("POST /api/v1/recruitment", rc.Auth.Require(rc.submit, bildrum.RoleResearcher))
	mux.HandleFunc("GET /api/v1/recruitment", rc.Auth.Require(rc.list, bildrum.RoleResearcher, bildrum.RolePermitOfficer))
	mux.HandleFunc("GET /api/v1/recruitment/{id}", rc.Auth.Require(rc.view, bildrum.RoleResearcher, bildrum.RolePermitOfficer))
	mux.HandleFunc("POST /api/v1/recruitment/{id}/decision", rc.Auth.Require(rc.decide, bildrum.RolePermitOfficer))
	mux.HandleFunc("GET /api/v1/me/invitations", rc.Auth.Require(rc.inbox, bildrum.RoleCitizen))
	mux.HandleFunc("POST /api/v1/me/invitations/{id}/accept", rc.Auth.Require(rc.answer(true), bildrum.RoleCitizen))
	mux.HandleFunc("POST /api/v1/me/invitations/{id}/decline", rc.Auth.Require(rc.answer(false), bildrum.RoleCitizen))
}

// decodeBody decodes the JSON body of r into v: one JSON value, no unknown
// fields, at most maxRecruitmentBody bytes. On failure it answers with
// problem details (413 for a body too large, 400 otherwise, with example
// showing what to send) and returns false.
func (rc *Recruitment) decodeBody(w http.ResponseWriter, r *http.Request, v any, example string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRecruitmentBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooLarge):
		problem.Write(w, r, http.StatusRequestEntityTooLarge, bildrum.EINVALID,
			"the body is larger than "+strconv.Itoa(maxRecruitmentBody>>10)+" KiB: shorten the text")
	case bildrum.ErrorCode(err) == bildrum.EINVALID:
		// A field's own check, such as a malformed date.
		problem.Error(w, r, rc.Log, err)
	default:
		problem.Error(w, r, rc.Log, bildrum.Errorf(bildrum.EINVALID, "the body must be JSON like %s: %s", example, jsonProblem(err)))
	}
	return false
}

// jsonProblem says what was wrong with a JSON body in words, without Go's
// type names where it can.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return typeErr.Field + ": want a JSON " + jsonKind(typeErr.Type.Kind().String()) + ", not " + typeErr.Value
	case errors.As(err, &syntaxErr):
		return "not valid JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	}
	// "json: unknown field \"x\"" and the like read well enough.
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean (true or false)"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// writeJSONStatus is writeJSON with a status other than 200.
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

const recruitmentExample = `{"title": "…", "sponsor": "…", "ethics_approval": "Dnr 2026-01234-01", "criteria": {"age": {"min": 50, "max": 69}}, "invitation_text": "…", "max_invitations": 200, "ends": "2026-12-31"}`

// submit answers POST /api/v1/recruitment: 201 with the stored request
// (its id and status pending) and its address in Location.
func (rc *Recruitment) submit(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	var in bildrum.RecruitmentInput
	if !rc.decodeBody(w, r, &in, recruitmentExample) {
		return
	}
	req, err := rc.Broker.Submit(r.Context(), p, in)
	if err != nil {
		problem.Error(w, r, rc.Log, err)
		return
	}
	w.Header().Set("Location", "/api/v1/recruitment/"+url.PathEscape(req.ID))
	writeJSONStatus(w, http.StatusCreated, req)
}

// list answers GET /api/v1/recruitment: a researcher's own requests, or
// every request for the permit authority, newest first.
func (rc *Recruitment) list(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	views, err := rc.Broker.List(r.Context(), p)
	if err != nil {
		problem.Error(w, r, rc.Log, err)
		return
	}
	if views == nil {
		views = []bildrum.RecruitmentView{}
	}
	writeJSON(w, views)
}

// view answers GET /api/v1/recruitment/{id}.
func (rc *Recruitment) view(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	v, err := rc.Broker.View(r.Context(), p, r.PathValue("id"))
	if err != nil {
		problem.Error(w, r, rc.Log, err)
		return
	}
	writeJSON(w, v)
}

// decisionInput is the body of POST /api/v1/recruitment/{id}/decision.
// Approve is a pointer so that a missing decision is told from a no.
type decisionInput struct {
	Approve *bool  `json:"approve"`
	Reason  string `json:"reason"`
}

// maxDecisionReason caps the reason of a decision, in characters.
const maxDecisionReason = 2000

// decide answers POST /api/v1/recruitment/{id}/decision with the decided
// request. A rejection must say why: the researcher reads the reason to
// amend her request.
func (rc *Recruitment) decide(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	var in decisionInput
	if !rc.decodeBody(w, r, &in, `{"approve": false, "reason": "why, for the researcher"}`) {
		return
	}
	reason := strings.TrimSpace(in.Reason)
	switch {
	case in.Approve == nil:
		problem.Error(w, r, rc.Log, bildrum.Errorf(bildrum.EINVALID, `approve: required: write "approve": true to approve the request or "approve": false to reject it`))
		return
	case !*in.Approve && reason == "":
		problem.Error(w, r, rc.Log, bildrum.Errorf(bildrum.EINVALID, "reason: required when rejecting: tell the researcher why the request is rejected, so that she can amend it"))
		return
	case len([]rune(reason)) > maxDecisionReason:
		problem.Error(w, r, rc.Log, bildrum.Errorf(bildrum.EINVALID, "reason: at most %d characters", maxDecisionReason))
		return
	}
	req, err := rc.Broker.Decide(r.Context(), p, r.PathValue("id"), *in.Approve, reason)
	if err != nil {
		problem.Error(w, r, rc.Log, err)
		return
	}
	writeJSON(w, req)
}

// inboxEntry is an invitation as her inbox API answers it: the item, the
// name of the region whose register matched her, and how she was found in
// plain words, in the language asked for (?lang=en, Swedish by default).
type inboxEntry struct {
	bildrum.InboxItem
	RegionName string `json:"region_name"`
	// WhyIntro says where and among whom she was looked for; Why has one
	// phrase per criterion her examination met.
	WhyIntro string   `json:"why_intro"`
	Why      []string `json:"why"`
}

func newInboxEntry(it bildrum.InboxItem, lang string) inboxEntry {
	e := inboxEntry{InboxItem: it, Why: criteriaPhrases(it.Criteria, lang)}
	e.RegionName = it.Region
	if reg, err := bildrum.RegionByCode(it.Region); err == nil {
		e.RegionName = reg.Name
	}
	e.WhyIntro = whyIntro.In(lang)
	e.WhyIntro = strings.ReplaceAll(e.WhyIntro, "{region}", e.RegionName)
	return e
}

// language is the language a citizen's request asks for: "en" or "sv".
func language(r *http.Request) string {
	if r.URL.Query().Get("lang") == "en" {
		return "en"
	}
	return "sv"
}

// inbox answers GET /api/v1/me/invitations: her invitations, newest first.
func (rc *Recruitment) inbox(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	items, err := rc.Broker.Inbox(r.Context(), p)
	if err != nil {
		problem.Error(w, r, rc.Log, err)
		return
	}
	out := make([]inboxEntry, 0, len(items))
	for _, it := range items {
		out = append(out, newInboxEntry(it, language(r)))
	}
	writeJSON(w, out)
}

// answer returns the handler of POST /api/v1/me/invitations/{id}/accept
// (accept true) or …/decline: it answers with the invitation as it now is.
func (rc *Recruitment) answer(accept bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := bildrum.PrincipalFrom(r.Context())
		it, err := rc.Broker.Answer(r.Context(), p, r.PathValue("id"), accept)
		if err != nil {
			problem.Error(w, r, rc.Log, err)
			return
		}
		writeJSON(w, newInboxEntry(it, language(r)))
	}
}

// recruitmentPage is /recruitment: for a researcher a form for a new
// request and her requests with their counts and the contacts of the women
// who accepted; for a permit officer every request, with a decision on
// those pending. Its script uses the APIs above with the session cookie.
func (rc *Recruitment) recruitmentPage(w http.ResponseWriter, r *http.Request) {
	p, ok := pagePrincipal(w, r, rc.Auth, bildrum.RoleResearcher, bildrum.RolePermitOfficer)
	if !ok {
		return
	}
	names := map[string]string{}
	for _, reg := range bildrum.Regions() {
		names[reg.Code] = reg.Name
	}
	regionNames, _ := json.Marshal(names)
	render(w, r, rc.Log, rc.page, struct {
		Principal   bildrum.Principal
		Researcher  bool
		Regions     []bildrum.Region
		RegionNames string
		BIRADS      []category
		Density     []category
		MaxText     int
		MaxInvite   int
	}{p, p.Role == bildrum.RoleResearcher, bildrum.Regions(), string(regionNames),
		biradsCategories, densityCategories, bildrum.MaxInvitationText, bildrum.MaxInvitations})
}

// category is a code of a register field with its meaning in plain
// words, for the form and for a woman's explanation of how she was found.
type category struct {
	Code string
	Name text
}

// biradsCategories are the consensus BI-RADS assessment categories (ACR
// BI-RADS Atlas, 5th edition).
var biradsCategories = []category{
	{"0", text{"behövde fler bilder", "more images were needed"}},
	{"1", text{"inget att anmärka", "nothing found"}},
	{"2", text{"godartat fynd", "a benign finding"}},
	{"3", text{"troligen godartat", "probably benign"}},
	{"4", text{"misstänkt fynd", "a suspicious finding"}},
	{"5", text{"starkt misstänkt fynd", "a highly suspicious finding"}},
	{"6", text{"känd cancer", "a known cancer"}},
}

// densityCategories are the ACR breast composition categories.
var densityCategories = []category{
	{"a", text{"nästan bara fettvävnad", "almost entirely fatty"}},
	{"b", text{"spridd körtelvävnad", "scattered areas of dense tissue"}},
	{"c", text{"ojämnt tät", "heterogeneously dense"}},
	{"d", text{"mycket tät", "extremely dense"}},
}

// meaning returns " (what code means)" in lang, or "" for an unknown code.
func meaning(code string, categories []category, lang string) string {
	for _, c := range categories {
		if c.Code == code {
			return " (" + c.Name.In(lang) + ")"
		}
	}
	return ""
}

// whyIntro begins the explanation of how a woman was found; {region} is
// the region's name.
var whyIntro = text{
	"Du har valt att kunna bli inbjuden till studier. Region {region} sökte i sitt screeningregister bland kvinnor som gjort det valet, och du har en mammografiundersökning där",
	"You chose to be invited to studies. Region {region} searched its screening register among the women who made that choice, and you have a mammography examination where",
}

// criteriaPhrases turns the criteria of a recruitment request into plain
// phrases in Swedish or English (lang "en"), one per criterion, each
// completing whyIntro. Criteria that select nothing give one phrase saying
// any examination matched.
func criteriaPhrases(c bildrum.Criteria, lang string) []string {
	en := lang == "en"
	say := func(sv, eng string) string {
		if en {
			return eng
		}
		return sv
	}
	or := say(" eller ", " or ")
	var out []string
	if a := c.Age; a != nil && (a.Min > 0 || a.Max > 0) {
		switch {
		case a.Min > 0 && a.Max > 0:
			out = append(out, say(fmt.Sprintf("du var %d–%d år gammal", a.Min, a.Max), fmt.Sprintf("you were %d to %d years old", a.Min, a.Max)))
		case a.Min > 0:
			out = append(out, say(fmt.Sprintf("du var minst %d år gammal", a.Min), fmt.Sprintf("you were at least %d years old", a.Min)))
		default:
			out = append(out, say(fmt.Sprintf("du var högst %d år gammal", a.Max), fmt.Sprintf("you were at most %d years old", a.Max)))
		}
	}
	if d := c.ExamDate; d != nil && (!d.From.IsZero() || !d.To.IsZero()) {
		switch {
		case !d.From.IsZero() && !d.To.IsZero():
			out = append(out, say("undersökningen gjordes mellan "+d.From.String()+" och "+d.To.String(), "the examination was between "+d.From.String()+" and "+d.To.String()))
		case !d.From.IsZero():
			out = append(out, say("undersökningen gjordes "+d.From.String()+" eller senare", "the examination was on "+d.From.String()+" or later"))
		default:
			out = append(out, say("undersökningen gjordes "+d.To.String()+" eller tidigare", "the examination was on "+d.To.String()+" or earlier"))
		}
	}
	switch c.Round {
	case bildrum.RoundFirst:
		out = append(out, say("det var din första screeningundersökning", "it was your first screening examination"))
	case bildrum.RoundSubsequent:
		out = append(out, say("det var inte din första screeningundersökning", "it was not your first screening examination"))
	}
	if len(c.BIRADS) > 0 {
		var parts []string
		for _, b := range c.BIRADS {
			parts = append(parts, string(b)+meaning(string(b), biradsCategories, lang))
		}
		out = append(out, say("röntgenläkarnas bedömning (BI-RADS) var ", "the radiologists' assessment (BI-RADS) was ")+strings.Join(parts, or))
	}
	if len(c.Density) > 0 {
		var parts []string
		for _, d := range c.Density {
			parts = append(parts, string(d)+meaning(string(d), densityCategories, lang))
		}
		out = append(out, say("brösttätheten var ", "your breast density was ")+strings.Join(parts, or))
	}
	if len(c.Outcomes) > 0 {
		var parts []string
		for _, f := range c.Outcomes {
			parts = append(parts, findingTexts[f].In(lang))
		}
		out = append(out, strings.Join(parts, or))
	}
	if s := c.TumourSizeMM; s != nil && (s.Min > 0 || s.Max > 0) {
		switch {
		case s.Min > 0 && s.Max > 0:
			out = append(out, say(fmt.Sprintf("tumören var %d–%d mm", s.Min, s.Max), fmt.Sprintf("the tumour measured %d to %d mm", s.Min, s.Max)))
		case s.Min > 0:
			out = append(out, say(fmt.Sprintf("tumören var minst %d mm", s.Min), fmt.Sprintf("the tumour measured at least %d mm", s.Min)))
		default:
			out = append(out, say(fmt.Sprintf("tumören var högst %d mm", s.Max), fmt.Sprintf("the tumour measured at most %d mm", s.Max)))
		}
	}
	if len(c.NodalStatus) == 1 {
		switch c.NodalStatus[0] {
		case bildrum.NodesNegative:
			out = append(out, say("lymfkörtlarna i armhålan var fria från cancer", "the lymph nodes in the armpit were free of cancer"))
		case bildrum.NodesPositive:
			out = append(out, say("cancern hade spridit sig till lymfkörtlarna i armhålan", "the cancer had spread to the lymph nodes in the armpit"))
		}
	}
	if len(c.Views) > 0 {
		out = append(out, say("bilder togs av ", "images were taken of ")+strings.Join(viewNames(c.Views, lang), say(" och ", " and ")))
	}
	if len(out) == 0 {
		out = append(out, say("studien inte ställde några fler villkor", "the study set no further conditions"))
	}
	return out
}

// findingTexts say each finding of Criteria.Outcomes in plain words.
var findingTexts = map[bildrum.Finding]text{
	bildrum.FindingScreenInvasive: {"en invasiv cancer hittades när du kallades tillbaka efter undersökningen", "an invasive cancer was found when you were called back after it"},
	bildrum.FindingScreenDCIS:     {"tidiga cellförändringar (DCIS) hittades när du kallades tillbaka efter undersökningen", "early cell changes (DCIS) were found when you were called back after it"},
	bildrum.FindingInterval:       {"en cancer upptäcktes efter undersökningen, före nästa kallelse", "a cancer was found after it, before your next invitation"},
	bildrum.FindingBenign:         {"du kallades tillbaka och utredningen visade något godartat", "you were called back and the follow-up found something benign"},
}

// viewNames names mammography views in plain words.
func viewNames(views []string, lang string) []string {
	names := map[string]text{
		bildrum.ViewRCC:  {"höger bröst uppifrån", "the right breast from above"},
		bildrum.ViewLCC:  {"vänster bröst uppifrån", "the left breast from above"},
		bildrum.ViewRMLO: {"höger bröst snett från sidan", "the right breast at an angle from the side"},
		bildrum.ViewLMLO: {"vänster bröst snett från sidan", "the left breast at an angle from the side"},
	}
	var out []string
	for _, v := range views {
		if t, ok := names[v]; ok {
			out = append(out, t.In(lang))
		} else {
			out = append(out, v)
		}
	}
	return out
}
