package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
)

// call makes a request with a body and returns status and body.
func call(t *testing.T, method, url, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRegisterExportImportRoundTrip: a region's staff export their register
// as CSV; the export re-imports unchanged; a bad file imports nothing and
// names the bad row; other regions' staff can neither read nor import.
func TestRegisterExportImportRoundTrip(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	node := e.Nodes[1].API // 12
	staff, other := e.Personas["staff-12"].Token, e.Personas["staff-14"].Token

	code, csv := call(t, "GET", node+"/exams?format=csv", staff, "", nil)
	if code != http.StatusOK || !bytes.HasPrefix(csv, []byte("id,person_id,region,")) {
		t.Fatalf("export = %d %.80q", code, csv)
	}
	var sum bildrum.RegisterSummary
	get(t, node+"/status", staff, &sum)
	if lines := bytes.Count(csv, []byte("\n")); lines != sum.Invitations+1 {
		t.Errorf("export has %d lines, want %d rows + header", lines, sum.Invitations)
	}
	code, body := call(t, "POST", node+"/register/import?name=export.csv", staff, "text/csv", csv)
	var rep struct{ Rows, Changed, Unchanged int }
	json.Unmarshal(body, &rep)
	if code != http.StatusOK || rep.Rows != sum.Invitations || rep.Changed != 0 || rep.Unchanged != sum.Invitations {
		t.Errorf("re-import of the export = %d %s, want every row unchanged", code, body)
	}

	// One bad check digit in the third data row: nothing is imported.
	lines := strings.Split(string(csv), "\n")
	f := strings.Split(lines[3], ",")
	f[1] = f[1][:11] + string("0123456789"[(int(f[1][11]-'0')+1)%10])
	lines[3] = strings.Join(f, ",")
	code, body = call(t, "POST", node+"/register/import?name=bad.csv", staff, "text/csv", []byte(strings.Join(lines, "\n")))
	var prob struct {
		Detail string `json:"detail"`
		Errors []struct {
			Line  int    `json:"line"`
			Field string `json:"field"`
		} `json:"errors"`
	}
	json.Unmarshal(body, &prob)
	if code != http.StatusBadRequest || len(prob.Errors) != 1 || prob.Errors[0].Line != 4 || prob.Errors[0].Field != "person_id" {
		t.Errorf("import with a bad personnummer = %d %s, want 400 naming line 4, person_id", code, body)
	}
	var after bildrum.RegisterSummary
	get(t, node+"/status", staff, &after)
	if after.DataVersion != sum.DataVersion {
		t.Errorf("a rejected import moved the data version from %d to %d", sum.DataVersion, after.DataVersion)
	}

	for _, tt := range []struct {
		name, method, url, token, ct string
		want                         int
	}{
		{"other region exports", "GET", node + "/exams?format=csv", other, "", http.StatusForbidden},
		{"other region imports", "POST", node + "/register/import", other, "text/csv", http.StatusForbidden},
		{"researcher imports", "POST", node + "/register/import", e.Personas["researcher"].Token, "text/csv", http.StatusForbidden},
		{"wrong content type", "POST", node + "/register/import", staff, "application/pdf", http.StatusUnsupportedMediaType},
	} {
		if code, _ := call(t, tt.method, tt.url, tt.token, tt.ct, []byte("x")); code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
		}
	}
}
