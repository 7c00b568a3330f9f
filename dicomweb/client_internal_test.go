package dicomweb

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"reflect"
	"testing"
)

// TestStoreBody checks that the client's STOW-RS body is byte for byte
// what mime/multipart.Writer writes for the same parts, and that it goes
// out with its Content-Length, not in chunks, and is read back whole.
func TestStoreBody(t *testing.T) {
	for _, files := range [][][]byte{
		nil,
		{[]byte("DICM one")},
		{[]byte("DICM one"), {}, bytes.Repeat([]byte("DICM three "), 5000)},
	} {
		body, boundary, length := multipartRelated(files)
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		mw := multipart.NewWriter(&want)
		mw.SetBoundary(boundary)
		for _, f := range files {
			part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {MediaDICOM}})
			part.Write(f)
		}
		mw.Close()
		if !bytes.Equal(got, want.Bytes()) || length != int64(len(got)) {
			t.Errorf("%d files: body of %d bytes (length %d), want the %d bytes of multipart.Writer:\n%q\nwant\n%q", len(files), len(got), length, want.Len(), got, want.Bytes())
		}
	}

	files := [][]byte{[]byte("DICM first"), bytes.Repeat([]byte("DICM second "), 3000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 || r.ContentLength <= 0 {
			t.Errorf("request with Transfer-Encoding %v and Content-Length %d, want a Content-Length", r.TransferEncoding, r.ContentLength)
		}
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if i != len(files) {
					t.Errorf("request has %d parts, want %d", i, len(files))
				}
				break
			} else if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			got, _ := io.ReadAll(p)
			if i >= len(files) || !bytes.Equal(got, files[i]) || p.Header.Get("Content-Type") != MediaDICOM {
				t.Errorf("part %d: %d bytes of %s, want file %d", i, len(got), p.Header.Get("Content-Type"), i)
			}
		}
		w.Header().Set("Content-Type", MediaDICOMJSON)
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}
	if res, err := c.Store(context.Background(), "", files...); err != nil || res.Status != http.StatusOK {
		t.Fatalf("Store = %+v, %v", res, err)
	}
}

func TestEncodeQuery(t *testing.T) {
	for _, tc := range []struct {
		query url.Values
		want  string
	}{
		{url.Values{"PatientName": {"Anna*"}}, "PatientName=Anna*"},
		{url.Values{"PatientName": {"*nn?"}}, "PatientName=*nn%3F"},
		{url.Values{"PatientName": {"Berg^Anna*"}, "limit": {"10"}}, "PatientName=Berg%5EAnna*&limit=10"},
		{url.Values{"StudyDate": {"20240101-20241231"}}, "StudyDate=20240101-20241231"},
		{url.Values{"AccessionNumber": {"A&B=C %2A"}}, "AccessionNumber=A%26B%3DC+%252A"},
	} {
		got := encodeQuery(tc.query)
		if got != tc.want {
			t.Errorf("encodeQuery(%v) = %q, want %q", tc.query, got, tc.want)
		}
		back, err := url.ParseQuery(got)
		if err != nil || !reflect.DeepEqual(back, tc.query) {
			t.Errorf("url.ParseQuery(%q) = %v, %v; want %v back", got, back, err, tc.query)
		}
	}
}
