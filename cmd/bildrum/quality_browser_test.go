package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/bildrum/bildrum/quality"
	"github.com/chromedp/chromedp"
)

// TestBrowserQualityComparison: the national quality persona signs in and
// lands on the comparison page, which shows the three demo regions side by
// side, a funnel plot with a point per region and the trend lines.
func TestBrowserQualityComparison(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()

	var api struct {
		Complete bool             `json:"complete"`
		Reports  []quality.Report `json:"reports"`
	}
	if code := get(t, e.Hub.API+"/indicators?period=all", e.Personas["quality"].Token, &api); code != http.StatusOK || !api.Complete {
		t.Fatalf("GET /api/v1/indicators?period=all = %d complete=%v", code, api.Complete)
	}
	participation := map[string]string{}
	for _, r := range api.Reports {
		if r.AgeBand == "all" && r.Indicators[0].ID == quality.IDParticipation && r.Indicators[0].Rate != nil {
			participation[r.Region] = strconv.FormatFloat(*r.Indicators[0].Rate, 'f', 1, 64)
		}
	}

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.Hub.Web+"/login"),
		chromedp.Click(chromedp.CSS(`button[data-persona="quality"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#compare`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	heads, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#compare thead th[data-region]')).map(th => th.textContent)`))
	if strings.Join(heads, "|") != "01 Stockholm|12 Skåne|14 Västra Götaland" {
		t.Errorf("comparison columns %q, want the three demo regions", heads)
	}
	cells, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#compare tr[data-indicator="participation"] td.v')).map(td => td.firstChild.textContent)`))
	if len(cells) != 3 {
		t.Fatalf("participation row has %d region cells, want 3", len(cells))
	}
	for i, region := range []string{"01", "12", "14"} {
		if cells[i] != participation[region]+" %" {
			t.Errorf("participation of %s shown as %q, API says %s", region, cells[i], participation[region])
		}
	}
	points, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#funnel-plot circle.pt').length`))
	limits, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#funnel-plot path.limit95, #funnel-plot path.limit998').length`))
	lines, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#trend-plot path.trend').length`))
	if points != 3 || limits != 4 || lines != 3 {
		t.Errorf("funnel has %d points and %d limit curves, trend %d lines; want 3, 4, 3", points, limits, lines)
	}
	// Choosing another indicator redraws the funnel for it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-indicator="recall"] a`)), chromedp.WaitVisible(chromedp.CSS(`tr.selected[data-indicator="recall"]`))); err != nil {
		t.Fatal(err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#funnel`)))
	if !strings.HasPrefix(title, "Recall rate") {
		t.Errorf("after choosing recall the funnel is titled %q", title)
	}
}
