package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// TestBrowserResearcherAsksHowMany: the researcher signs in, lands on the
// feasibility page, counts women aged 50-69 and sees each region's bar (or
// "fewer than 10", never a small number), the total, and her budget drop.
func TestBrowserResearcherAsksHowMany(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	if err := d.hub.SyncConsentNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := d.Endpoints()
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="researcher"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feas-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#budgets tbody tr[data-region="14"]`)),
		chromedp.Click(chromedp.CSS(`#ask`)),
		chromedp.WaitVisible(chromedp.CSS(`#feas-bars .bar-row[data-region="14"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	values, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#feas-bars .bar-row')).map(r => r.dataset.region + '=' + r.querySelector('.value').textContent)`))
	if len(values) != 3 {
		t.Fatalf("bars %q, want three regions", values)
	}
	number := regexp.MustCompile(`^\d+`)
	for _, v := range values {
		_, val, _ := strings.Cut(v, "=")
		if val == "fewer than 10" {
			continue
		}
		n, err := strconv.Atoi(number.FindString(val))
		if err != nil || n < 10 {
			t.Errorf("bar %q: want a released count of at least 10 or \"fewer than 10\"", v)
		}
	}
	total, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#feas-total`)))
	if !strings.HasPrefix(total, "In total") && !strings.HasPrefix(total, "At least") {
		t.Errorf("total reads %q", total)
	}
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#budgets tr[data-region="12"] td.r').textContent !== "10.00"`)); err != nil {
		t.Errorf("budget of region 12 not shown as charged: %v", err)
	}
}
