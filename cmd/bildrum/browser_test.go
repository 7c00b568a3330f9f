package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// number reads a figure as the pages print it (thin spaces between groups).
func number(t *testing.T, s string) int {
	t.Helper()
	s, _, _ = strings.Cut(s, "(") // "(last known)" follows the figure
	s = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number on the page: %q", s)
	}
	return n
}

// TestBrowserFederationPage opens the demo's first page in Chromium, checks
// that it shows the three regions with the counts their nodes hold, follows
// a region's link to its node, and sees a node going down marked as such.
func TestBrowserFederationPage(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()

	want := map[string]bildrum.RegisterSummary{}
	for _, n := range e.Nodes {
		var sum bildrum.RegisterSummary
		get(t, n.API+"/status", e.Personas["quality"].Token, &sum)
		want[n.Region] = sum
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(e.Hub.Web+"/"), chromedp.WaitVisible(chromedp.CSS("#nodes"))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll('#nodes tbody tr')).map(tr =>
		[tr.dataset.region, tr.cells[0].innerText, tr.querySelector('.women').innerText, tr.querySelector('.exams').innerText])`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("page shows %d regions, want 3: %v", len(rows), rows)
	}
	names := map[string]string{"01": "01 Stockholm", "12": "12 Skåne", "14": "14 Västra Götaland"}
	total := 0
	for _, r := range rows {
		region, label, women, exams := r[0], r[1], number(t, r[2]), number(t, r[3])
		if label != names[region] {
			t.Errorf("row %s is labelled %q, want %q", region, label, names[region])
		}
		if women != want[region].Women || exams != want[region].Exams {
			t.Errorf("row %s shows %d women %d exams, node holds %d and %d", region, women, exams, want[region].Women, want[region].Exams)
		}
		total += women
	}
	shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#total-women")))
	if err != nil {
		t.Fatal(err)
	}
	if number(t, shown) != total {
		t.Errorf("total women shown %q, want %d", shown, total)
	}
	answered, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#answered")))
	if answered != "3 of 3" {
		t.Errorf("#answered = %q, want \"3 of 3\"", answered)
	}
	tiles, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#tiles li').length`))
	if err != nil || tiles != 21 {
		t.Errorf("region tiles = %d (%v), want all 21 regions", tiles, err)
	}

	// Follow Skåne's link to its own node page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tr[data-region="12"] a`)), chromedp.WaitVisible(chromedp.CSS("#region"))); err != nil {
		t.Fatal(err)
	}
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#region")))
	exams, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#exams")))
	if !strings.Contains(heading, "Skåne") || number(t, exams) != want["12"].Exams {
		t.Errorf("node page shows %q with %q exams, want Skåne with %d", heading, exams, want["12"].Exams)
	}

	// Västra Götaland's node goes away: the page must say the answer is partial.
	d.nodes[2].Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.Hub.Web+"/"), chromedp.WaitVisible(chromedp.CSS("#partial"))); err != nil {
		t.Fatal(err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#nodes tr[data-region="14"] td:nth-child(2)`)))
	if !strings.Contains(status, "down") {
		t.Errorf("region 14's node status reads %q, want it marked down", status)
	}
	answered, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#answered")))
	if answered != "2 of 3" {
		t.Errorf("#answered = %q with one node down, want \"2 of 3\"", answered)
	}
}
