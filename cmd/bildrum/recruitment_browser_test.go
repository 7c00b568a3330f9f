package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// TestBrowserRecruitment runs the whole recruitment flow in Chromium: the
// researcher submits a request on her page, the permit officer approves it
// on his, the demo citizen finds the invitation in her inbox and accepts,
// and the researcher then sees her contact details, and nothing of the
// women who did not accept.
func TestBrowserRecruitment(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	citizen := e.Personas["citizen"]
	// She opted in to trial contact earlier (her page's toggle is tested
	// with her other choices).
	if code := send(t, "PUT", e.Hub.API+"/me/consent", citizen.Token, map[string]any{"opt_outs": []string{},
		"trial_contact": map[string]any{"opt_in": true, "email": "demo.kvinna@example.com", "phone": "070-1740677"}, "care_blocks": []string{}}, nil); code != http.StatusOK {
		t.Fatalf("opt in: %d", code)
	}
	if err := d.hub.SyncConsentNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="researcher"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feas-form`)),
		chromedp.Navigate(e.Hub.Web+"/recruitment"),
		chromedp.WaitVisible(chromedp.CSS(`#recruit-form`)),
		chromedp.SetValue(chromedp.CSS(`input[name="title"]`), "Tät bröstvävnad och kompletterande MR"),
		chromedp.SetValue(chromedp.CSS(`input[name="sponsor"]`), "Karolinska Universitetssjukhuset"),
		chromedp.SetValue(chromedp.CSS(`input[name="ethics_approval"]`), "Dnr 2026-01234-01"),
		chromedp.SetValue(chromedp.CSS(`input[name="age_min"]`), ""),
		chromedp.SetValue(chromedp.CSS(`input[name="age_max"]`), ""),
		chromedp.Click(chromedp.CSS(`input[name="density"][value="b"]`)),
		chromedp.Click(chromedp.CSS(`input[name="density"][value="a"]`)),
		chromedp.Click(chromedp.CSS(`input[name="density"][value="c"]`)),
		chromedp.Click(chromedp.CSS(`input[name="density"][value="d"]`)),
		chromedp.SetValue(chromedp.CSS(`#invitation-text`), "Vi söker kvinnor som vill pröva kompletterande MR efter mammografi."),
		chromedp.SetValue(chromedp.CSS(`input[name="max_invitations"]`), "1000"),
		chromedp.SetValue(chromedp.CSS(`#ends`), "2099-12-31"),
		chromedp.Click(chromedp.CSS(`#recruit-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#requests .request[data-status="pending"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#requests .request').dataset.id`))
	if err != nil || id == "" {
		t.Fatalf("request id %q: %v", id, err)
	}
	card := `#requests .request[data-id="` + id + `"]`
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="permit-officer"]`)),
		chromedp.WaitVisible(chromedp.CSS(card+` .approve`)),
		chromedp.Click(chromedp.CSS(card+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(card+`[data-status="approved"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.hub.MatchRecruitmentNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	var inbox []map[string]any
	if code := get(t, e.Hub.API+"/me/invitations", citizen.Token, &inbox); code != http.StatusOK || len(inbox) != 1 {
		var view any
		get(t, e.Hub.API+"/recruitment/"+id, e.Personas["permit-officer"].Token, &view)
		t.Fatalf("her inbox after matching: %d %v; the request: %v", code, inbox, view)
	}
	inv := `#invitations .invitation.open`
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="citizen"]`)),
		chromedp.WaitVisible(chromedp.CSS(inv)),
	)
	if err != nil {
		t.Fatal(err)
	}
	why, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#invitations .invitation .why').textContent`))
	home, _ := bildrum.RegionByCode(citizen.Region)
	if !strings.Contains(why, home.Name) || !strings.Contains(strings.ToLower(why), "tät") && !strings.Contains(why, "a, b, c") {
		t.Errorf("why she was invited reads %q, want her region %s and the density criterion", why, home.Name)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(inv+` .accept`)),
		chromedp.WaitVisible(chromedp.CSS(`#invitations .invitation[data-status="accepted"] .inv-contact`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="researcher"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feas-form`)),
		chromedp.Navigate(e.Hub.Web+"/recruitment"),
		chromedp.WaitVisible(chromedp.CSS(card+` .contact .contact-email`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	contacts, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('`+card+` .contact')).map(r => r.querySelector('.contact-email').textContent + ' ' + r.querySelector('.contact-phone').textContent)`))
	if len(contacts) != 1 || contacts[0] != "demo.kvinna@example.com 070-1740677" {
		t.Errorf("contacts on the researcher's page %q, want the demo citizen's only", contacts)
	}
	invited, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(card+` .count-invited`)))
	if n := number(t, invited); n < 10 {
		t.Errorf("invited reads %q", invited)
	}
}
