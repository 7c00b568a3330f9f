package dicomweb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/bildrum/bildrum/archive"
)

// Client is a small DICOMweb client: STOW-RS, QIDO-RS and WADO-RS against
// any PS3.18 origin server (this package's, Orthanc's, a PACS's).
type Client struct {
	// BaseURL is the service root, such as http://host/dicomweb or
	// http://orthanc/dicom-web.
	BaseURL string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the HTTP client. Default http.DefaultClient.
	HTTP *http.Client
}

// StoreResult is the answer to a STOW-RS request.
type StoreResult struct {
	Status     int            // HTTP status: 200, 202, 409 …
	Response   archive.Object // the Store Instances Response Module
	Referenced []string       // SOP Instance UIDs stored
	Failed     map[string]int // Failure Reason by SOP Instance UID ("" when unknown)
	Reasons    []string       // Error Comment of each failure, where the server gives one
}

// StatusError is a response of an unexpected status.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("dicomweb: status %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// encodeQuery encodes query as url.Values.Encode does, except that the
// DICOM wildcard '*' is sent as it is, as RFC 3986 allows in a query and
// as web viewers send it (JavaScript's encodeURIComponent leaves it):
// Orthanc matches "Anna*" but takes "Anna%2A" for a name with no wildcard.
func encodeQuery(query url.Values) string {
	return strings.ReplaceAll(query.Encode(), "%2A", "*")
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header) (*http.Response, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + "/" + strings.TrimPrefix(path, "/")
	if len(query) > 0 {
		u += "?" + encodeQuery(query)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("dicomweb %s %s: %w", method, path, err)
	}
	if b, ok := body.(sizedBody); ok {
		req.ContentLength = b.length
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dicomweb %s %s: %w", method, path, err)
	}
	return resp, nil
}

// multipartRelated returns a multipart/related body of PS3.10 files, its
// boundary and its length: read from the files themselves, without a copy
// or a goroutine, and of a length known before it is sent, so that the
// request carries Content-Length rather than chunks. Its bytes are those
// of a mime/multipart.Writer with a Content-Type header per part.
func multipartRelated(files [][]byte) (body io.Reader, boundary string, length int64) {
	b := make([]byte, 12)
	rand.Read(b)
	boundary = "bildrum-client-" + hex.EncodeToString(b)
	readers := make([]io.Reader, 0, 2*len(files)+1)
	add := func(p []byte) {
		readers = append(readers, bytes.NewReader(p))
		length += int64(len(p))
	}
	for i, f := range files {
		delimiter := "\r\n--" + boundary + "\r\n"
		if i == 0 {
			delimiter = delimiter[2:]
		}
		add([]byte(delimiter + "Content-Type: " + MediaDICOM + "\r\n\r\n"))
		add(f)
	}
	add([]byte("\r\n--" + boundary + "--\r\n"))
	return io.MultiReader(readers...), boundary, length
}

// sizedBody is a request body of a known length.
type sizedBody struct {
	io.Reader
	length int64
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &StatusError{Status: resp.StatusCode, Body: string(b)}
}

// Store sends PS3.10 files by STOW-RS, to the study when it is not empty.
func (c *Client) Store(ctx context.Context, study string, files ...[]byte) (*StoreResult, error) {
	body, boundary, length := multipartRelated(files)
	path := "studies"
	if study != "" {
		path += "/" + study
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, sizedBody{body, length}, http.Header{
		"Content-Type": {fmt.Sprintf(`multipart/related; type="%s"; boundary=%s`, MediaDICOM, boundary)},
		"Accept":       {MediaDICOMJSON},
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res := &StoreResult{Status: resp.StatusCode, Failed: map[string]int{}}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != MediaDICOMJSON && mt != "application/json" {
		return res, statusError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res.Response); err != nil {
		return res, fmt.Errorf("dicomweb store: response: %w", err)
	}
	for _, item := range res.Response.Items("00081199") {
		res.Referenced = append(res.Referenced, item.String("00081155"))
	}
	for _, item := range res.Response.Items("00081198") {
		reason := 0
		if v := item["00081197"].Value; len(v) > 0 {
			if f, ok := v[0].(float64); ok {
				reason = int(f)
			}
		}
		res.Failed[item.String("00081155")] = reason
		if c := item.String("00000902"); c != "" {
			res.Reasons = append(res.Reasons, c)
		}
	}
	return res, nil
}

// Search runs a QIDO-RS search on a resource such as "studies" or
// "studies/{study}/series".
func (c *Client) Search(ctx context.Context, resource string, query url.Values) ([]archive.Object, error) {
	resp, err := c.do(ctx, http.MethodGet, resource, query, nil, http.Header{"Accept": {MediaDICOMJSON}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, statusError(resp)
	}
	var out []archive.Object
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("dicomweb search %s: %w", resource, err)
	}
	return out, nil
}

// Metadata retrieves the DICOM JSON metadata of a study, series or
// instance resource.
func (c *Client) Metadata(ctx context.Context, resource string) ([]archive.Object, error) {
	resp, err := c.do(ctx, http.MethodGet, strings.TrimSuffix(resource, "/")+"/metadata", nil, nil, http.Header{"Accept": {MediaDICOMJSON}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	var out []archive.Object
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("dicomweb metadata %s: %w", resource, err)
	}
	return out, nil
}

// Retrieve retrieves the instances of a study, series or instance
// resource (WADO-RS), each as the bytes the server sent.
func (c *Client) Retrieve(ctx context.Context, resource string) ([][]byte, error) {
	return c.retrieveParts(ctx, resource, fmt.Sprintf(`multipart/related; type="%s"; transfer-syntax=*`, MediaDICOM))
}

// RetrieveFrames retrieves frames of an instance resource, such as
// "studies/s/series/t/instances/i/frames/1,2", uncompressed.
func (c *Client) RetrieveFrames(ctx context.Context, resource string) ([][]byte, error) {
	return c.retrieveParts(ctx, resource, fmt.Sprintf(`multipart/related; type="%s"`, MediaOctet))
}

func (c *Client) retrieveParts(ctx context.Context, resource, accept string) ([][]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, resource, nil, nil, http.Header{"Accept": {accept}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
}

// ReadMultipart reads the parts of a multipart/related body.
func ReadMultipart(contentType string, body io.Reader) ([][]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != MediaMultipart || params["boundary"] == "" {
		return nil, fmt.Errorf("dicomweb: response of type %q, want multipart/related", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var out [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("dicomweb: multipart: %w", err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, p); err != nil {
			return out, fmt.Errorf("dicomweb: multipart part %d: %w", len(out)+1, err)
		}
		out = append(out, buf.Bytes())
	}
}
