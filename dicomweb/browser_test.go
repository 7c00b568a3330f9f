package dicomweb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"
	"github.com/chromedp/chromedp"
)

// dicomwebClientJS is the UMD bundle of the npm package dicomweb-client,
// the DICOMweb client of the OHIF viewer, which scripts/test.sh installs
// with npm ci from testdata/js/package-lock.json.
var dicomwebClientJS = filepath.Join("testdata", "js", "node_modules", "dicomweb-client", "build", "dicomweb-client.js")

// browserPage drives dicomweb-client against the node from another origin:
// search, metadata, instance and frame retrieval, as a viewer does.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>dicomweb-client</title>
<script src="/dicomweb-client.js"></script></head>
<body><pre id="out">running</pre>
<script>
(async () => {
  const out = document.getElementById('out');
  try {
    const client = new DICOMwebClient.api.DICOMwebClient({url: %q, headers: {Authorization: 'Bearer ' + %q}});
    const studies = await client.searchForStudies({queryParams: {PatientID: %q}});
    const studyInstanceUID = studies[0]['0020000D'].Value[0];
    const series = await client.searchForSeries({studyInstanceUID});
    const seriesInstanceUID = series[0]['0020000E'].Value[0];
    const instances = await client.searchForInstances({studyInstanceUID, seriesInstanceUID});
    const sopInstanceUID = instances[0]['00080018'].Value[0];
    const ids = {studyInstanceUID, seriesInstanceUID, sopInstanceUID};
    const metadata = await client.retrieveInstanceMetadata(ids);
    const instance = await client.retrieveInstance(ids);
    const frames = await client.retrieveInstanceFrames({...ids, frameNumbers: [1]});
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', instance));
    out.textContent = JSON.stringify({
      studies: studies.length,
      instances: instances.length,
      sop: sopInstanceUID,
      patient: metadata[0]['00100020'].Value[0],
      sha256: Array.from(digest, b => b.toString(16).padStart(2, '0')).join(''),
      frameBytes: frames[0].byteLength,
    });
  } catch (e) {
    out.textContent = 'ERROR ' + e + ' ' + (e.request ? e.request.status + ' ' + e.request.responseText : '');
  }
  const done = document.createElement('p');
  done.id = 'done';
  document.body.appendChild(done);
})();
</script></body></html>`

// TestBrowserDICOMwebClient runs dicomweb-client in Chromium, from a page
// of another origin than the node's: CORS, bearer tokens, QIDO-RS JSON and
// WADO-RS multipart as a browser viewer meets them.
func TestBrowserDICOMwebClient(t *testing.T) {
	if _, err := os.Stat(dicomwebClientJS); err != nil {
		testenv.Unavailable(t, "the npm package dicomweb-client is not installed in dicomweb/testdata/js (npm ci there, as scripts/test.sh does)")
	}
	ctx := testenv.BrowserContext(t)
	n := newNode(t, "")
	files := study(anna, 64, 48)
	if _, err := n.client.Store(context.Background(), "", files...); err != nil {
		t.Fatal(err)
	}
	pageMux := http.NewServeMux()
	pageMux.HandleFunc("GET /dicomweb-client.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, dicomwebClientJS)
	})
	pageMux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, browserPage, n.base, n.tokens["radiologist"], anna)
	})
	page := httptest.NewServer(pageMux)
	t.Cleanup(page.Close)

	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Studies, Instances int
		Sop, Patient       string
		Sha256             string
		FrameBytes         int
	}
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("page says %q", text)
	}
	_, _, sop := uidOf(t, files[0])
	if got.Studies != 1 || got.Instances != 4 || got.Patient != anna || got.FrameBytes != 64*48*2 {
		t.Errorf("dicomweb-client saw %+v; want 1 study, 4 instances of patient %s, a frame of %d bytes", got, anna, 64*48*2)
	}
	for _, f := range files {
		if _, _, s := uidOf(t, f); s == got.Sop && sha(f) != got.Sha256 {
			t.Errorf("instance %s retrieved in the browser: SHA-256 %s, want %s", got.Sop, got.Sha256, sha(f))
		}
	}
	_ = sop
}
