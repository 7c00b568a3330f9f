package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// TestBrowserRegionStaffSeeTheirRows: Skåne's screening staff sign in at
// their node, search their register for invasive cancers, page through
// rows, and find the export link carrying the same filter.
func TestBrowserRegionStaffSeeTheirRows(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	node := e.Nodes[1]
	var all, invasive struct {
		Total int `json:"total"`
	}
	get(t, node.API+"/exams?limit=1", e.Personas["staff-12"].Token, &all)
	get(t, node.API+"/exams?limit=1&outcome=invasive", e.Personas["staff-12"].Token, &invasive)

	err := chromedp.Do(ctx,
		chromedp.Navigate(node.Web+"/exams"),
		chromedp.WaitVisible(chromedp.CSS(`#personas`)),
		chromedp.Click(chromedp.CSS(`button[data-persona="staff-12"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rows`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	count, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#count")))
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#rows tbody tr').length`))
	if !strings.HasSuffix(count, "of "+itoa(all.Total)) || rows != 50 {
		t.Errorf("first page says %q with %d rows, want 50 of %d", count, rows, all.Total)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name=outcome]`), "invasive"),
		chromedp.Click(chromedp.CSS(`#filters button`)),
		chromedp.WaitReady(chromedp.CSS(`select[name=outcome] option[value="invasive"][selected]`)), // the new page
	)
	if err != nil {
		t.Fatal(err)
	}
	// The new page may still be loading when its select is first seen:
	// wait for its count before reading the rows.
	want := "of " + itoa(invasive.Total)
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`(document.getElementById('count')?.textContent || '').endsWith(`+strconv.Quote(want)+`)`)); err != nil {
		t.Logf("waiting for the count: %v", err)
	}
	count, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#count")))
	outcomes, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rows tbody .outcome')).map(e => e.textContent)`))
	if invasive.Total == 0 || !strings.HasSuffix(count, "of "+itoa(invasive.Total)) {
		t.Errorf("invasive search says %q, want %d rows", count, invasive.Total)
	}
	for _, o := range outcomes {
		if !strings.HasPrefix(o, string(bildrum.OutcomeInvasive)) {
			t.Errorf("row with outcome %q in a search for invasive", o)
		}
	}
	href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('export').getAttribute('href')`))
	if !strings.Contains(href, "outcome=invasive") || !strings.Contains(href, "format=csv") {
		t.Errorf("export link %q does not carry the search", href)
	}
}
