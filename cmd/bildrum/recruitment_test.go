package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/docs"
	"github.com/bildrum/bildrum/synth"
)

// population is the demo's synthetic population: every woman, and which of
// them have an attended examination.
func population(t *testing.T, d *Demo) (all, examined []bildrum.PersonID) {
	t.Helper()
	seen := map[bildrum.PersonID]bool{}
	ex := map[bildrum.PersonID]bool{}
	if _, err := synth.Generate(t.Context(), synth.Config{Seed: d.cfg.Seed, Regions: d.cfg.Regions}, func(e bildrum.ScreeningEpisode) error {
		if !seen[e.Person] {
			seen[e.Person] = true
			all = append(all, e.Person)
		}
		if e.Attended && !e.Examined.IsZero() && !ex[e.Person] {
			ex[e.Person] = true
			examined = append(examined, e.Person)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all, examined
}

// apiCall is one operation of docs/openapi.yaml.
type apiCall struct{ method, path string }

// openAPICalls lists every operation docs/openapi.yaml documents.
func openAPICalls(t *testing.T) []apiCall {
	t.Helper()
	pathRE := regexp.MustCompile(`^  (/\S*):\s*$`)
	methodRE := regexp.MustCompile(`^    (get|post|put|delete|patch):\s*$`)
	var out []apiCall
	path := ""
	sc := bufio.NewScanner(bytes.NewReader(docs.OpenAPI))
	for sc.Scan() {
		if m := pathRE.FindStringSubmatch(sc.Text()); m != nil {
			path = m[1]
		} else if m := methodRE.FindStringSubmatch(sc.Text()); m != nil && path != "" {
			out = append(out, apiCall{strings.ToUpper(m[1]), path})
		}
		if strings.HasPrefix(sc.Text(), "components:") {
			break
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d operations in docs/openapi.yaml", len(out))
	}
	return out
}

// TestRecruitmentRevealsOnlyThoseWhoAccept runs a request through every
// stage and, at each, calls every API of docs/openapi.yaml on the hub and
// on every node with the researcher's token: no answer ever holds a
// woman's identity number, nor the contact details of any woman but the one
// who accepted, and hers only after she did. Only opted-in women are
// invited, each once.
func TestRecruitmentRevealsOnlyThoseWhoAccept(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	ctx := t.Context()
	researcher, officer := e.Personas["researcher"].Token, e.Personas["permit-officer"].Token
	anna := e.Personas["citizen"]
	all, examined := population(t, d)

	// Anna (the demo citizen) opts in; Berit and Cecilia are opted in by
	// the synthetic population and get tokens of their own.
	annaContact := map[string]any{"opt_in": true, "email": "anna.accepterar@example.com", "phone": "070-1740650"}
	if code := send(t, "PUT", e.Hub.API+"/me/consent", anna.Token, map[string]any{"opt_outs": []string{}, "trial_contact": annaContact, "care_blocks": []string{}}, nil); code != http.StatusOK {
		t.Fatalf("anna opts in: %d", code)
	}
	var secrets []string // what the researcher must never see
	optedIn := map[bildrum.PersonID]bool{anna.PersonID: true}
	var others []bildrum.PersonID
	for _, p := range all {
		secrets = append(secrets, string(p), string(p[:8])+"-"+string(p[8:]), string(p[2:]))
		c, _ := synth.ConsentChoices(d.cfg.Seed, p)
		if c.TrialContact.OptIn && p != anna.PersonID {
			optedIn[p] = true
			secrets = append(secrets, c.TrialContact.Email)
			if slices.Contains(examined, p) {
				others = append(others, p)
			}
		}
	}
	tokens := map[bildrum.PersonID]string{}
	for i, p := range others[:2] {
		tok := fmt.Sprintf("recruitment-test-citizen-%d", i)
		if err := d.hub.db.PutCredential(ctx, bildrum.HashToken(tok), bildrum.Principal{Name: string(p), Role: bildrum.RoleCitizen, Person: p}); err != nil {
			t.Fatal(err)
		}
		tokens[p] = tok
	}
	berit, cecilia := others[0], others[1]
	if err := d.hub.SyncConsentNow(ctx); err != nil {
		t.Fatal(err)
	}

	in := map[string]any{"title": "Tät bröstvävnad och kompletterande MR", "sponsor": "Karolinska Universitetssjukhuset",
		"ethics_approval": "Dnr 2026-01234-01", "criteria": map[string]any{}, "max_invitations": 100000, "ends": "2099-12-31",
		"invitation_text": "Vi söker kvinnor som vill pröva kompletterande MR efter mammografi. Undersökningen tar 30 minuter."}
	var req struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	code, body := call(t, "POST", e.Hub.API+"/recruitment", researcher, "application/json", mustJSON(in))
	if code != http.StatusCreated || json.Unmarshal(body, &req) != nil || req.Status != "pending" {
		t.Fatalf("POST /api/v1/recruitment = %d %s", code, body)
	}

	bases := []string{e.Hub.Web}
	for _, n := range e.Nodes {
		bases = append(bases, n.Web)
	}
	probe := func(stage string, allowed ...string) {
		t.Helper()
		for _, op := range openAPICalls(t) {
			persons := []string{""}
			if strings.Contains(op.path, "{person}") {
				persons = []string{string(anna.PersonID), string(berit), string(cecilia)}
			}
			for _, base := range bases {
				for _, person := range persons {
					path := strings.NewReplacer("{id}", req.ID, "{person}", person, "{path}", "0/x000").Replace(op.path)
					var payload []byte
					switch {
					case op.path == "/api/v1/feasibility":
						payload = []byte(`{"purpose":"research"}`)
					case op.path == "/api/v1/recruitment":
						payload = mustJSON(in)
					case op.method != "GET":
						payload = []byte(`{"approve":true,"reason":"x"}`)
					}
					code, body := call(t, op.method, base+path, researcher, "application/json", payload)
					// An answer may echo the number the researcher put in the
					// path herself (a problem's "instance"): that she knew.
					if person != "" {
						body = bytes.ReplaceAll(body, []byte(person), nil)
					}
					for _, s := range secrets {
						if !slices.Contains(allowed, s) && bytes.Contains(body, []byte(s)) {
							t.Errorf("%s: %s %s%s (%d) reveals %q", stage, op.method, base, path, code, s)
						}
					}
				}
			}
		}
	}
	secrets = append(secrets, "anna.accepterar@example.com", "070-1740650")
	probe("submitted")

	if code, body := call(t, "POST", e.Hub.API+"/recruitment/"+req.ID+"/decision", researcher, "application/json", []byte(`{"approve":true}`)); code != http.StatusForbidden {
		t.Errorf("the researcher decided her own request: %d %s", code, body)
	}
	if code, body := call(t, "POST", e.Hub.API+"/recruitment/"+req.ID+"/decision", officer, "application/json", []byte(`{"approve":true}`)); code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, body)
	}
	if err := d.hub.MatchRecruitmentNow(ctx); err != nil {
		t.Fatal(err)
	}
	// Exactly the opted-in women with an examination are invited, once.
	invited := 0
	for _, p := range all {
		invs, err := d.hub.db.Invitations(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, inv := range invs {
			if inv.Request == req.ID {
				n++
			}
		}
		want := 0
		if optedIn[p] && slices.Contains(examined, p) {
			want = 1
		}
		if n != want {
			t.Errorf("%s: %d invitations, want %d (opted in %v)", p, n, want, optedIn[p])
		}
		invited += n
	}
	if invited < 20 {
		t.Fatalf("only %d women invited", invited)
	}
	probe("matched")

	answer := func(token, verb string) {
		t.Helper()
		var inbox []bildrum.InboxItem
		if code := get(t, e.Hub.API+"/me/invitations", token, &inbox); code != http.StatusOK || len(inbox) != 1 || !inbox[0].Open {
			t.Fatalf("inbox: %d %+v", code, inbox)
		}
		if code, body := call(t, "POST", e.Hub.API+"/me/invitations/"+inbox[0].ID+"/"+verb, token, "application/json", nil); code != http.StatusOK {
			t.Fatalf("%s: %d %s", verb, code, body)
		}
	}
	answer(anna.Token, "accept")
	answer(tokens[berit], "decline")
	probe("answered", "anna.accepterar@example.com", "070-1740650")

	var view bildrum.RecruitmentView
	if code := get(t, e.Hub.API+"/recruitment/"+req.ID, researcher, &view); code != http.StatusOK {
		t.Fatalf("view: %d", code)
	}
	if len(view.Contacts) != 1 || view.Contacts[0].Email != "anna.accepterar@example.com" || view.Contacts[0].Phone != "070-1740650" {
		t.Errorf("contacts %+v, want anna's only", view.Contacts)
	}
	if c := view.Counts; c == nil || c.Accepted != 1 || c.Invited.Count == nil || *c.Invited.Count != invited || !c.Declined.Suppressed || !c.Unanswered.Suppressed {
		t.Errorf("counts %+v, want %d invited, 1 accepted, declined and unanswered suppressed", view.Counts, invited)
	}

	// Every step is in the transparency log, for the woman concerned.
	if err := d.hub.CarryAccessEvents(ctx); err != nil {
		t.Fatal(err)
	}
	var events struct {
		Events []struct {
			Kind string `json:"kind"`
		} `json:"events"`
	}
	if code := get(t, e.Hub.API+"/me/events", anna.Token, &events); code != http.StatusOK {
		t.Fatalf("events: %d", code)
	}
	var kinds []string
	for _, ev := range events.Events {
		kinds = append(kinds, ev.Kind)
	}
	for _, k := range []string{"recruitment-match", "recruitment-invite", "recruitment-accept", "recruitment-contact-release"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("anna's events %v lack %s", kinds, k)
		}
	}

	// Cecilia withdraws her opt-in: her pending invitation is withdrawn.
	if code := send(t, "PUT", e.Hub.API+"/me/consent", tokens[cecilia], map[string]any{"opt_outs": []string{}, "trial_contact": map[string]any{"opt_in": false}, "care_blocks": []string{}}, nil); code != http.StatusOK {
		t.Fatalf("cecilia withdraws: %d", code)
	}
	var inbox []bildrum.InboxItem
	if get(t, e.Hub.API+"/me/invitations", tokens[cecilia], &inbox); len(inbox) != 1 || inbox[0].Status != bildrum.InvitationWithdrawn {
		t.Errorf("cecilia's inbox after withdrawing: %+v", inbox)
	}
}
