package main

import (
	"strings"
	"testing"

	"github.com/bildrum/bildrum/consent"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// TestBrowserCitizenChangesHerChoices: the demo's citizen signs in with one
// click, opts out of research on "Mina data", sees every region confirm it,
// finds it kept after a reload, and the node's own check then refuses
// research for her.
func TestBrowserCitizenChangesHerChoices(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/me"), // not signed in: sent to sign in, then back
		chromedp.WaitVisible(chromedp.CSS(`#personas`)),
		chromedp.Click(chromedp.CSS(`button[data-persona="citizen"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#choices`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if heading != "Mina data" {
		t.Errorf("landing heading %q, want Mina data", heading)
	}
	checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[data-purpose="research"]').checked`))
	if err != nil || !checked {
		t.Fatalf("research allowed before any choice = %v (%v), want true", checked, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`input[data-purpose="research"] + .slider`)),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#result .badge[data-region="14"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result")))
	for _, r := range []string{"01 ✓", "12 ✓", "14 ✓"} {
		if !strings.Contains(saved, r) {
			t.Errorf("after saving the page says %q, want %q", saved, r)
		}
	}
	// In English after a reload, her choice is kept.
	err = chromedp.Do(ctx, chromedp.Navigate(e.Hub.Web+"/me?lang=en"), chromedp.WaitVisible(chromedp.CSS(`#choices`)))
	if err != nil {
		t.Fatal(err)
	}
	heading, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	checked, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[data-purpose="research"]').checked`))
	stats, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[data-purpose="statistics"]').checked`))
	if heading != "My data" || checked || !stats {
		t.Errorf("after reload: heading %q, research allowed %v, statistics allowed %v; want My data, false, true", heading, checked, stats)
	}
	var dec consent.Decision
	send(t, "GET", e.Nodes[1].API+"/consent/"+string(e.Personas["citizen"].PersonID)+"?purpose=research", e.Personas["staff-12"].Token, nil, &dec)
	if dec.Allowed {
		t.Errorf("node 12 still allows research for her: %+v", dec)
	}

	// Her change is an event in the transparency log, and her browser
	// verifies it itself against the signed checkpoint.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#events td.proof.verified`))); err != nil {
		proofs, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#events`)))
		t.Fatalf("no verified event on her page: %v\n%s", err, proofs)
	}
	// A second change: two leaves, so the first one's proof is not empty.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`input[data-purpose="education"] + .slider`)),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#result .badge[data-region="14"]`)),
		chromedp.Navigate(e.Hub.Web+"/me?lang=en"),
		chromedp.WaitVisible(chromedp.CSS(`#events tr[data-index="0"] td.proof.verified`)),
		chromedp.WaitVisible(chromedp.CSS(`#events tr[data-index="1"] td.proof.verified`)),
	)
	if err != nil {
		events, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#events`)))
		t.Fatalf("after a second change: %v\n%s", err, events)
	}
	kinds, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#events tbody tr')).map(tr => tr.cells[2].textContent + ' | ' + tr.cells[4].textContent)`))
	if len(kinds) != 2 {
		t.Fatalf("her events %q, want two", kinds)
	}
	for _, k := range kinds {
		if !strings.HasPrefix(k, "consent-change") || !strings.Contains(k, "✓ verified in tree of 2") {
			t.Errorf("event %q, want a consent change verified in the tree of 2", k)
		}
	}
}
