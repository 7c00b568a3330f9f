package dicomweb_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/dicomweb"
)

// memIndex is an in-memory image index for fuzzing: fuzzing instruments
// every package, and an instrumented SQLite is too slow to fuzz through.
// It keeps the parts of the contract that STOW-RS relies on.
type memIndex struct {
	mu        sync.Mutex
	instances map[string]bildrum.Instance
}

func (m *memIndex) PutInstances(ctx context.Context, in []bildrum.Instance) ([]error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(in))
	for i, inst := range in {
		if prev, ok := m.instances[inst.SOPInstanceUID]; ok && prev.Object.SHA256 != inst.Object.SHA256 {
			errs[i] = bildrum.Errorf(bildrum.ECONFLICT, "other content")
			continue
		}
		m.instances[inst.SOPInstanceUID] = inst
	}
	return errs, nil
}

func (m *memIndex) Instance(ctx context.Context, sop string) (bildrum.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in, ok := m.instances[sop]; ok {
		return in, nil
	}
	return bildrum.Instance{}, bildrum.Errorf(bildrum.ENOTFOUND, "no instance %s", sop)
}

func (m *memIndex) Instances(ctx context.Context, study, series string) ([]bildrum.Instance, error) {
	return nil, bildrum.Errorf(bildrum.ENOTFOUND, "not kept")
}

func (m *memIndex) SearchStudies(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.Study, bool, error) {
	return nil, false, nil
}

func (m *memIndex) SearchSeries(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.SeriesMatch, bool, error) {
	return nil, false, nil
}

func (m *memIndex) SearchInstances(ctx context.Context, q bildrum.ImageQuery) ([]bildrum.Instance, bool, error) {
	return nil, false, nil
}

func (m *memIndex) ObjectReferenced(ctx context.Context, key string) (bool, error) { return true, nil }

// memCredentials accepts one token, of staff of the region.
type memCredentials struct{ token string }

func (c memCredentials) PutCredential(ctx context.Context, h bildrum.TokenHash, p bildrum.Principal) error {
	return nil
}

func (c memCredentials) PrincipalByToken(ctx context.Context, h bildrum.TokenHash) (bildrum.Principal, error) {
	if h == bildrum.HashToken(c.token) {
		return personas["staff-12"], nil
	}
	return bildrum.Principal{}, bildrum.Errorf(bildrum.ENOTFOUND, "unknown")
}

// FuzzStow sends arbitrary bytes to STOW-RS, as the one part of a
// multipart/related body and as the whole body: the server must answer
// with a PS3.18 status, never fail otherwise, and index only whole,
// well-formed instances with the SHA-256 of the bytes sent.
func FuzzStow(f *testing.F) {
	good := archivetest.Mammogram(&archivetest.Image{Rows: 8, Columns: 8})
	f.Add(good, false)
	f.Add(good[:len(good)/2], false)
	f.Add(good[:200], false)
	f.Add([]byte("DICM"), false)
	_, body := multipartBody([][]byte{good})
	f.Add(body.Bytes(), true)

	blobs, err := archive.OpenFileBlobs(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	index := &memIndex{instances: map[string]bildrum.Instance{}}
	token := auth.NewToken()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := dicomweb.NewServer(dicomweb.Config{Archive: archive.New(index, blobs), Region: region, Log: log, MaxRequestBytes: 1 << 20,
		Auth: &auth.Authenticator{Store: memCredentials{token}, Log: log}, Recorder: &recorder{}})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Routes(mux, "/dicomweb")

	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		ct, b := `multipart/related; type="application/dicom"; boundary=fuzz`, data
		if !raw {
			c, buf := multipartBody([][]byte{data})
			ct, b = c, buf.Bytes()
		}
		req := httptest.NewRequest("POST", "/dicomweb/studies", bytes.NewReader(b))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted:
			if raw {
				return
			}
			h, err := archive.ReadHeader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("status %d for input the reader refuses: %v", rec.Code, err)
			}
			in, _ := h.Instance()
			stored, err := index.Instance(context.Background(), in.SOPInstanceUID)
			if err != nil {
				t.Fatalf("status %d but instance %s not indexed: %v", rec.Code, in.SOPInstanceUID, err)
			}
			if stored.Object.SHA256 == sha(data) {
				rc, err := blobs.Open(context.Background(), stored.Object.Key)
				if err != nil {
					t.Fatalf("indexed instance %s has no object: %v", in.SOPInstanceUID, err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, data) {
					t.Fatalf("object of %s differs from the bytes sent", in.SOPInstanceUID)
				}
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("STOW of %d bytes: status %d: %s", len(data), rec.Code, rec.Body)
		}
	})
}
