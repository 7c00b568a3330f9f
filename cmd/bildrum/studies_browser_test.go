package main

import (
	"strings"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// TestBrowserStudiesAndViewer: Skåne's radiologist signs in at the node,
// sees the region's studies with thumbnails, opens one and sees its four
// views side by side, each image rendered by the node's WADO-RS.
func TestBrowserStudiesAndViewer(t *testing.T) {
	ctx := testenv.BrowserContext(t)
	d := startDemo(t, t.TempDir())
	node := d.Endpoints().Nodes[1] // 12, the radiologist's region

	err := chromedp.Do(ctx,
		chromedp.Navigate(node.Web+"/studies"),
		chromedp.WaitVisible(chromedp.CSS(`#personas`)),
		chromedp.Click(chromedp.CSS(`button[data-persona="radiologist"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#studies li img`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#studies li').length`))
	if n != testImages {
		t.Errorf("%d studies listed, want the %d examinations with images", n, testImages)
	}
	// Thumbnails really loaded (a broken image has no natural width).
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll('#studies img')).every(i => i.complete && i.naturalWidth > 0)`)); err != nil {
		t.Fatalf("thumbnails did not load: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#studies li a`)),
		chromedp.WaitVisible(chromedp.CSS(`#viewer figure[data-loaded="1"]`)),
		chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll('#viewer img')).every(i => i.complete && i.naturalWidth > 0)`),
	)
	if err != nil {
		t.Fatal(err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#viewer-status`)))
	views, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#viewer figure[data-loaded="1"]')).map(f => f.dataset.view)`))
	if !strings.HasPrefix(status, "4 of 4") || strings.Join(views, ",") != "RCC,LCC,RMLO,LMLO" {
		t.Errorf("viewer says %q with views %v, want all four standard views", status, views)
	}
}
