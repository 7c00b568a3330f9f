package dicomweb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/dicomweb"
	"github.com/bildrum/bildrum/problem"
)

const anna = "195001182046"

func TestStowQidoWadoRoundTrip(t *testing.T) {
	n := newNode(t, "")
	ctx := context.Background()
	files := study(anna, 128, 96)
	res, err := n.client.Store(ctx, "", files...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || len(res.Referenced) != 4 || len(res.Failed) != 0 {
		t.Fatalf("Store = status %d, %d referenced, failed %v; want 200 and 4 stored", res.Status, len(res.Referenced), res.Failed)
	}
	studyUID, seriesUID, sop0 := uidOf(t, files[0])
	if got := res.Response["00081190"].Value; len(got) != 1 || got[0] != n.base+"/studies/"+studyUID {
		t.Errorf("Store response RetrieveURL = %v, want the study's URL", got)
	}

	studies, err := n.client.Search(ctx, "studies", url.Values{"PatientID": {anna}})
	if err != nil || len(studies) != 1 {
		t.Fatalf("Search(studies, PatientID) = %v, %v; want one study", studies, err)
	}
	st := studies[0]
	if st["0020000D"].Value[0] != studyUID || st["00201208"].Value[0] != float64(4) || st["00080061"].Value[0] != "MG" {
		t.Errorf("study match = %v, want study %s with 4 instances and modality MG", st, studyUID)
	}
	if pn := st["00100010"].Value[0].(map[string]any)["Alphabetic"]; pn != "Testsson^Anna" {
		t.Errorf("PatientName = %v, want Testsson^Anna in the PN JSON form", pn)
	}
	series, err := n.client.Search(ctx, "studies/"+studyUID+"/series", nil)
	if err != nil || len(series) != 1 || series[0]["0020000E"].Value[0] != seriesUID {
		t.Errorf("Search(series of study) = %v, %v; want its one series", series, err)
	}
	instances, err := n.client.Search(ctx, "studies/"+studyUID+"/series/"+seriesUID+"/instances", nil)
	if err != nil || len(instances) != 4 {
		t.Errorf("Search(instances of series) = %d, %v; want 4", len(instances), err)
	}

	// WADO-RS returns the stored bytes exactly.
	parts, err := n.client.Retrieve(ctx, "studies/"+studyUID)
	if err != nil || len(parts) != 4 {
		t.Fatalf("Retrieve(study) = %d parts, %v; want 4", len(parts), err)
	}
	for i := range files {
		if sha(parts[i]) != sha(files[i]) {
			t.Errorf("Retrieve(study) part %d: SHA-256 %s, want %s (the bytes stored)", i, sha(parts[i]), sha(files[i]))
		}
	}
	inst := "studies/" + studyUID + "/series/" + seriesUID + "/instances/" + sop0
	one, err := n.client.Retrieve(ctx, inst)
	if err != nil || len(one) != 1 || !bytes.Equal(one[0], files[0]) {
		t.Errorf("Retrieve(instance) = %d parts, %v; want the stored bytes", len(one), err)
	}
	seriesParts, err := n.client.Retrieve(ctx, "studies/"+studyUID+"/series/"+seriesUID)
	if err != nil || len(seriesParts) != 4 {
		t.Errorf("Retrieve(series) = %d parts, %v; want 4", len(seriesParts), err)
	}

	md, err := n.client.Metadata(ctx, inst)
	if err != nil || len(md) != 1 {
		t.Fatalf("Metadata(instance) = %v, %v", md, err)
	}
	if got := md[0]["7FE00010"].BulkDataURI; got != n.base+"/"+inst+"/frames/1" {
		t.Errorf("metadata PixelData BulkDataURI = %q, want the frames URL", got)
	}
	if md[0]["00280010"].Value[0] != float64(128) || md[0]["00281050"].Value[0] != float64(2048) || md[0]["00020010"].VR != "" {
		t.Errorf("metadata Rows, WindowCenter = %v, %v (and no file meta: %v); want 128, 2048", md[0]["00280010"], md[0]["00281050"], md[0]["00020010"])
	}

	frames, err := n.client.RetrieveFrames(ctx, inst+"/frames/1")
	if err != nil || len(frames) != 1 {
		t.Fatalf("RetrieveFrames = %d, %v", len(frames), err)
	}
	if want := files[0][len(files[0])-128*96*2:]; !bytes.Equal(frames[0], want) {
		t.Errorf("frame 1 (%d bytes) differs from the pixel data stored (%d bytes)", len(frames[0]), len(want))
	}

	for _, tt := range []struct {
		path, accept string
		decode       func(io.Reader) (image.Image, error)
		w, h         int
	}{
		{inst + "/rendered", "image/png", png.Decode, 96, 128},
		{inst + "/rendered?window=2048,4096,linear&viewport=48,64", "image/jpeg", jpeg.Decode, 48, 64},
		{inst + "/frames/1/rendered", "", jpeg.Decode, 96, 128},
		{"/studies/" + studyUID + "/thumbnail?viewport=32,32", "image/png", png.Decode, 24, 32},
		{"/studies/" + studyUID + "/series/" + seriesUID + "/rendered?window=100,50,sigmoid", "image/png", png.Decode, 96, 128},
	} {
		resp := n.request("GET", "/"+strings.TrimPrefix(tt.path, "/"), "radiologist", http.Header{"Accept": {tt.accept}}, nil)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("GET %s: status %d: %s", tt.path, resp.StatusCode, b)
			continue
		}
		img, err := tt.decode(resp.Body)
		if err != nil || img.Bounds().Dx() != tt.w || img.Bounds().Dy() != tt.h {
			t.Errorf("GET %s: image %v, %v; want %d×%d", tt.path, img.Bounds(), err, tt.w, tt.h)
		}
	}

	var reads, searches int
	for _, e := range n.rec.Events() {
		if e.Person != anna || e.Region != region || e.Purpose != bildrum.PurposeCare {
			t.Errorf("access event %+v: want person %s, region %s, purpose care", e, anna, region)
		}
		switch e.Kind {
		case bildrum.AccessImageRead:
			reads++
		case bildrum.AccessImageSearch:
			searches++
		}
	}
	if reads < 10 || searches != 3 {
		t.Errorf("recorded %d reads and %d searches; want one per read (at least 10) and 3 searches", reads, searches)
	}
}

func TestStowIdempotentAndConflicting(t *testing.T) {
	n := newNode(t, "")
	ctx := context.Background()
	files := study(anna, 64, 48)
	if res, err := n.client.Store(ctx, "", files...); err != nil || res.Status != http.StatusOK {
		t.Fatalf("first Store = %+v, %v", res, err)
	}
	res, err := n.client.Store(ctx, "", files...)
	if err != nil || res.Status != http.StatusOK || len(res.Referenced) != 4 {
		t.Errorf("storing the same bytes again = status %d, %d referenced, %v; want 200, all 4 (idempotent)", res.Status, len(res.Referenced), err)
	}
	changed := bytes.Clone(files[1])
	changed[len(changed)-1] ^= 0xFF // one pixel differs, same SOP Instance UID
	_, _, sop := uidOf(t, changed)
	res, err = n.client.Store(ctx, "", changed)
	if err != nil || res.Status != http.StatusConflict || res.Failed[sop] != dicomweb.FailureDuplicateInstance {
		t.Errorf("storing other bytes under a stored SOP Instance UID = status %d, failed %v, %v; want 409 with Failure Reason 0x0111", res.Status, res.Failed, err)
	}
	other := study(anna, 64, 48)[0]
	res, err = n.client.Store(ctx, "", changed, other)
	if err != nil || res.Status != http.StatusAccepted || len(res.Referenced) != 1 || len(res.Failed) != 1 {
		t.Errorf("one new and one conflicting = status %d, %v referenced, %v failed, %v; want 202, 1 and 1", res.Status, res.Referenced, res.Failed, err)
	}
	parts, err := n.client.Retrieve(ctx, "studies/"+func() string { s, _, _ := uidOf(t, files[1]); return s }())
	if err != nil || len(parts) != 4 || !bytes.Equal(parts[1], files[1]) {
		t.Errorf("after the conflict, the first bytes stay stored: %d parts, %v", len(parts), err)
	}
	if n.countInstances() != 5 {
		t.Errorf("index holds %d instances, want 5", n.countInstances())
	}
}

// TestStowConcurrent stores from several clients at once, so that the
// requests' commits share transactions, each request with a part that is
// not DICOM: every request must acknowledge its good instances, report the
// bad one, and every instance acknowledged must be retrievable byte for
// byte.
func TestStowConcurrent(t *testing.T) {
	n := newNode(t, "")
	ctx := context.Background()
	const clients = 6
	results := make([]*dicomweb.StoreResult, clients)
	sent := make([][][]byte, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		sent[c] = study(anna, 32, 24)[:2]
		wg.Go(func() {
			parts := append(sent[c], []byte("not a DICOM file"))
			results[c], errs[c] = n.client.Store(ctx, "", parts...)
		})
	}
	wg.Wait()
	for c, res := range results {
		if errs[c] != nil || res.Status != http.StatusAccepted || len(res.Referenced) != 2 || len(res.Failed) != 1 {
			t.Errorf("client %d: %+v, %v; want 202 with 2 instances stored and 1 failed", c, res, errs[c])
			continue
		}
		for _, f := range sent[c] {
			studyUID, seriesUID, sop := uidOf(t, f)
			got, err := n.client.Retrieve(ctx, "studies/"+studyUID+"/series/"+seriesUID+"/instances/"+sop)
			if err != nil || len(got) != 1 || !bytes.Equal(got[0], f) {
				t.Errorf("client %d: acknowledged instance %s: %d parts, %v; want its bytes", c, sop, len(got), err)
			}
		}
	}
	if got := n.countInstances(); got != 2*clients {
		t.Errorf("the index holds %d instances, want %d", got, 2*clients)
	}
}

func TestStowBadInput(t *testing.T) {
	good := study(anna, 32, 24)
	studyUID, _, _ := uidOf(t, good[0])
	truncated := good[1][:len(good[1])-100]
	notDICOM := []byte(strings.Repeat("this is not DICOM ", 20))
	ct, body := multipartBody([][]byte{good[0]})
	unclosed := body.Bytes()[:body.Len()-10]

	tests := []struct {
		name        string
		path        string
		contentType string
		body        []byte
		max         int64
		wantStatus  int
		wantFailure int    // Failure Reason of the first failed instance
		wantText    string // in the problem details or the Warning header
	}{
		{"json body", "/studies", "application/dicom+json", []byte(`[]`), 0, 415, 0, "multipart/related"},
		{"plain dicom", "/studies", "application/dicom", good[0], 0, 415, 0, "multipart/related"},
		{"xml parts", "/studies", `multipart/related; type="application/dicom+xml"; boundary=x`, []byte("--x--"), 0, 415, 0, "application/dicom parts only"},
		{"no boundary", "/studies", `multipart/related; type="application/dicom"`, []byte(""), 0, 400, 0, "boundary"},
		{"no parts", "/studies", `multipart/related; type="application/dicom"; boundary=x`, []byte("--x--\r\n"), 0, 400, 0, "no parts"},
		{"not closed", "/studies", ct, unclosed, 0, 400, 0, "nothing was stored"},
		{"oversize", "/studies", ct, body.Bytes(), 1000, 413, 0, "larger than this server accepts"},
		{"truncated", "/studies", "", nil, 0, 409, dicomweb.FailureCannotUnderstand, "truncated"},
		{"not dicom", "/studies", "", nil, 0, 409, dicomweb.FailureCannotUnderstand, "DICM"},
		{"wrong part type", "/studies", "", nil, 0, 409, dicomweb.FailureCannotUnderstand, "not application/dicom"},
		{"other study", "/studies/1.2.3.4", "", nil, 0, 409, dicomweb.FailureStudyMismatch, "not to study 1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, "", func(c *dicomweb.Config) { c.MaxRequestBytes = tt.max })
			ct, b := tt.contentType, tt.body
			switch tt.name {
			case "truncated":
				c, buf := multipartBody([][]byte{truncated})
				ct, b = c, buf.Bytes()
			case "not dicom":
				c, buf := multipartBody([][]byte{notDICOM})
				ct, b = c, buf.Bytes()
			case "wrong part type":
				c, buf := multipartBody([][]byte{good[0]}, "image/jpeg")
				ct, b = c, buf.Bytes()
			case "other study":
				c, buf := multipartBody([][]byte{good[0]})
				ct, b = c, buf.Bytes()
			}
			resp := n.request("POST", tt.path, "staff-12", http.Header{"Content-Type": {ct}}, bytes.NewReader(b))
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("POST %s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.wantStatus, raw)
			}
			text := string(raw) + strings.Join(resp.Header.Values("Warning"), " ")
			if !strings.Contains(text, tt.wantText) {
				t.Errorf("POST %s: response %s (Warning %v) does not say %q", tt.name, raw, resp.Header.Values("Warning"), tt.wantText)
			}
			if tt.wantFailure != 0 {
				var obj archive.Object
				json.Unmarshal(raw, &obj)
				failed := obj["00081198"].Value
				if len(failed) != 1 || failed[0].(map[string]any)["00081197"].(map[string]any)["Value"].([]any)[0] != float64(tt.wantFailure) {
					t.Errorf("POST %s: FailedSOPSequence %v, want Failure Reason %#x", tt.name, failed, tt.wantFailure)
				}
			} else if mt := resp.Header.Get("Content-Type"); mt != problem.ContentType {
				t.Errorf("POST %s: Content-Type %q, want problem details", tt.name, mt)
			}
			if got := n.countInstances(); got != 0 {
				t.Errorf("POST %s stored %d instances, want none", tt.name, got)
			}
			_ = studyUID
		})
	}
}

func TestQueryParameters(t *testing.T) {
	n := newNode(t, "")
	ctx := context.Background()
	berit := "195203072227"
	var files [][]byte
	files = append(files, study(anna, 16, 16)...)
	files = append(files, study(berit, 16, 16)...)
	if res, err := n.client.Store(ctx, "", files...); err != nil || res.Status != http.StatusOK {
		t.Fatalf("Store = %+v, %v", res, err)
	}
	annaStudy, _, _ := uidOf(t, files[0])
	beritStudy, _, _ := uidOf(t, files[4])
	tests := []struct {
		query      string
		wantStatus int
		want       []string // study UIDs
		warning    string
	}{
		{"PatientID=" + anna, 200, []string{annaStudy}, ""},
		{"00100020=" + berit, 200, []string{beritStudy}, ""},
		{"PatientName=testsson*", 200, []string{annaStudy, beritStudy}, ""},
		{"PatientName=T?STSSON^ANNA", 200, []string{annaStudy, beritStudy}, ""},
		{"StudyDate=20240101-20241231", 200, []string{annaStudy, beritStudy}, ""},
		{"StudyDate=-20231231", 200, nil, ""},
		{"StudyDate=20240115", 200, []string{annaStudy, beritStudy}, ""},
		{"StudyInstanceUID=" + beritStudy + "," + annaStudy, 200, []string{annaStudy, beritStudy}, ""},
		{"ModalitiesInStudy=MG&PatientID=" + berit, 200, []string{beritStudy}, ""},
		{"ModalitiesInStudy=CT", 200, nil, ""},
		{"limit=1", 200, []string{annaStudy}, "more matches"},
		{"limit=1&offset=1", 200, []string{beritStudy}, ""},
		{"includefield=all&fuzzymatching=false", 200, []string{annaStudy, beritStudy}, ""},
		{"includefield=00081030,StudyDescription", 200, []string{annaStudy, beritStudy}, ""},
		{"fuzzymatching=true&PatientID=" + anna, 200, []string{annaStudy}, "fuzzymatching"},
		{"InstitutionName=x", 200, []string{annaStudy, beritStudy}, "not supported for matching"},
		{"StudyDate=2024-01-15", 400, nil, "YYYYMMDD"},
		{"limit=-1", 400, nil, "whole number"},
		{"offset=x", 400, nil, "whole number"},
		{"fuzzymatching=maybe", 400, nil, "true or false"},
		{"NoSuchAttribute=1", 400, nil, "neither a DICOM attribute"},
		{"includefield=nonsense", 400, nil, "includefield"},
		{"StudyInstanceUID=1.2.*", 400, nil, "without wildcards"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp := n.request("GET", "/studies?"+tt.query, "staff-12", http.Header{"Accept": {"application/dicom+json"}}, nil)
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET /studies?%s: status %d, want %d: %s", tt.query, resp.StatusCode, tt.wantStatus, raw)
			}
			text := string(raw) + strings.Join(resp.Header.Values("Warning"), " ")
			if tt.warning != "" && !strings.Contains(text, tt.warning) {
				t.Errorf("GET /studies?%s: response %s, Warning %v; want it to say %q", tt.query, raw, resp.Header.Values("Warning"), tt.warning)
			}
			if tt.wantStatus != 200 {
				return
			}
			var got []archive.Object
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			var uids []string
			for _, o := range got {
				uids = append(uids, o["0020000D"].Value[0].(string))
			}
			if strings.Join(uids, " ") != strings.Join(tt.want, " ") {
				t.Errorf("GET /studies?%s = %v, want %v", tt.query, uids, tt.want)
			}
		})
	}
	if resp := n.request("GET", "/studies", "staff-12", http.Header{"Accept": {"application/dicom+xml"}}, nil); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("QIDO with Accept application/dicom+xml: status %d, want 406", resp.StatusCode)
	}
}

func TestAuthorization(t *testing.T) {
	n := newNode(t, "")
	tests := []struct {
		persona string
		want    int
	}{
		{"", http.StatusUnauthorized},
		{"researcher", http.StatusForbidden},
		{"staff-01", http.StatusForbidden},
		{"staff-12", http.StatusOK},
		{"radiologist", http.StatusOK},
	}
	for _, tt := range tests {
		for _, path := range []string{"/studies", "/studies/1.2.3/metadata"} {
			resp := n.request("GET", path, tt.persona, nil, nil)
			want := tt.want
			if want == http.StatusOK && path != "/studies" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("GET %s as %q: status %d, want %d: %s", path, tt.persona, resp.StatusCode, want, b)
			}
		}
	}
	ct, body := multipartBody(study(anna, 8, 8)[:1])
	if resp := n.request("POST", "/studies", "researcher", http.Header{"Content-Type": {ct}}, body); resp.StatusCode != http.StatusForbidden {
		t.Errorf("STOW as researcher: status %d, want 403", resp.StatusCode)
	}
	if n.countInstances() != 0 || len(n.rec.Events()) != 0 {
		t.Errorf("refused requests stored %d instances and recorded %d events, want none", n.countInstances(), len(n.rec.Events()))
	}
}

func TestUnknownResources(t *testing.T) {
	n := newNode(t, "")
	files := study(anna, 8, 8)
	if _, err := n.client.Store(context.Background(), "", files...); err != nil {
		t.Fatal(err)
	}
	studyUID, seriesUID, sop := uidOf(t, files[0])
	for _, path := range []string{
		"/studies/1.2.3",
		"/studies/1.2.3/metadata",
		"/studies/" + studyUID + "/series/1.2.3",
		"/studies/" + studyUID + "/series/" + seriesUID + "/instances/1.2.3",
		"/studies/1.2.3/series/" + seriesUID + "/instances/" + sop,
		"/studies/" + studyUID + "/series/" + seriesUID + "/instances/" + sop + "/frames/2",
		"/nonsense",
	} {
		resp := n.request("GET", path, "staff-12", nil, nil)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != problem.ContentType || !bytes.Contains(raw, []byte(`"detail"`)) {
			t.Errorf("GET %s: status %d %s: %s; want 404 problem details with a reason", path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
		}
	}
	for _, tt := range []struct{ path, accept string }{
		{"/studies/" + studyUID, `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50`},
		{"/studies/" + studyUID + "/series/" + seriesUID + "/instances/" + sop + "/frames/1", `multipart/related; type="image/jpeg"`},
		{"/studies/" + studyUID + "/series/" + seriesUID + "/instances/" + sop + "/rendered", "image/gif"},
		{"/studies/" + studyUID + "/metadata", "application/dicom+xml"},
	} {
		resp := n.request("GET", tt.path, "staff-12", http.Header{"Accept": {tt.accept}}, nil)
		if resp.StatusCode != http.StatusNotAcceptable {
			t.Errorf("GET %s Accept %s: status %d, want 406", tt.path, tt.accept, resp.StatusCode)
		}
	}
	for _, q := range []string{"window=1,2", "window=a,b,linear", "window=1,2,cubic", "viewport=x", "quality=101", "window=10,0,linear"} {
		resp := n.request("GET", "/studies/"+studyUID+"/rendered?"+q, "staff-12", nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("rendered?%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

func TestCORS(t *testing.T) {
	n := newNode(t, "")
	resp := n.request("OPTIONS", "/studies", "", http.Header{
		"Origin":                         {"http://viewer.example"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"authorization"},
	}, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: status %d, headers %v; want 204 allowing any origin and the Authorization header", resp.StatusCode, resp.Header)
	}
	resp = n.request("GET", "/studies", "staff-12", http.Header{"Origin": {"http://viewer.example"}}, nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Warning") {
		t.Errorf("CORS GET: headers %v; want Allow-Origin * and Warning exposed", resp.Header)
	}
	only := newNode(t, "", func(c *dicomweb.Config) { c.CORSOrigins = []string{"http://pacs.example"} })
	if resp := only.request("GET", "/studies", "staff-12", http.Header{"Origin": {"http://evil.example"}}, nil); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("origin not allowed got Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestRecorderFailureRefusesReads(t *testing.T) {
	n := newNode(t, "")
	files := study(anna, 8, 8)
	if _, err := n.client.Store(context.Background(), "", files...); err != nil {
		t.Fatal(err)
	}
	studyUID, _, _ := uidOf(t, files[0])
	n.rec.mu.Lock()
	n.rec.fail = true
	n.rec.mu.Unlock()
	for _, path := range []string{"/studies/" + studyUID, "/studies/" + studyUID + "/metadata", "/studies/" + studyUID + "/rendered", "/studies?PatientID=" + anna} {
		resp := n.request("GET", path, "staff-12", nil, nil)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || bytes.Contains(raw, []byte("DICM")) {
			t.Errorf("GET %s with the access log down: status %d; want 503 and no images", path, resp.StatusCode)
		}
	}
}

// batchRecorder is a recorder that also records many events at once, and
// counts how often it was asked to.
type batchRecorder struct {
	recorder
	batches int
}

func (r *batchRecorder) RecordAccesses(ctx context.Context, events []bildrum.AccessEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	r.events = append(r.events, events...)
	return nil
}

// TestSearchRecordsEveryWomanAtOnce checks that a search finding the
// studies of several women records one event for each, in one batch where
// the recorder takes batches (one wait for the disk, not one per woman).
func TestSearchRecordsEveryWomanAtOnce(t *testing.T) {
	rec := &batchRecorder{}
	n := newNode(t, "", func(c *dicomweb.Config) { c.Recorder = rec })
	ctx := context.Background()
	women := []string{anna, "195203072227", "189001019802"}
	for _, w := range women {
		if res, err := n.client.Store(ctx, "", study(w, 16, 16)...); err != nil || res.Status != http.StatusOK {
			t.Fatalf("Store = %+v, %v", res, err)
		}
	}
	found, err := n.client.Search(ctx, "studies", nil)
	if err != nil || len(found) != len(women) {
		t.Fatalf("Search(studies) = %d studies, %v; want %d", len(found), err, len(women))
	}
	got := map[bildrum.PersonID]int{}
	for _, e := range rec.Events() {
		if e.Kind == bildrum.AccessImageSearch {
			got[e.Person]++
		}
	}
	for _, w := range women {
		if got[bildrum.PersonID(w)] != 1 {
			t.Errorf("search events for %s: %d, want 1 (all: %v)", w, got[bildrum.PersonID(w)], got)
		}
	}
	if rec.batches != 1 {
		t.Errorf("the search was recorded in %d batches, want 1", rec.batches)
	}
}
