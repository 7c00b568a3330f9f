package dicomweb

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/problem"
)

// instances returns the instances a WADO-RS path names: a study, a series
// or one instance.
func (s *Server) instances(r *http.Request) ([]bildrum.Instance, error) {
	study, series, sop := r.PathValue("study"), r.PathValue("series"), r.PathValue("instance")
	if sop == "" {
		return s.cfg.Archive.Index().Instances(r.Context(), study, series)
	}
	in, err := s.cfg.Archive.Index().Instance(r.Context(), sop)
	if err != nil {
		return nil, err
	}
	if in.Study.StudyInstanceUID != study || in.Series.SeriesInstanceUID != series {
		return nil, bildrum.Errorf(bildrum.ENOTFOUND, "instance %s is not in series %s of study %s", sop, series, study)
	}
	return []bildrum.Instance{in}, nil
}

func patientsOf(instances []bildrum.Instance) []string {
	out := make([]string, len(instances))
	for i := range instances {
		out[i] = instances[i].Study.Patient.ID
	}
	return out
}

// accept is one media range of an Accept header.
type accept struct {
	mediaType string
	params    map[string]string
}

func parseAccept(r *http.Request) []accept {
	h := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(h) == "" {
		return []accept{{mediaType: "*/*"}}
	}
	var out []accept
	// Commas may appear inside quoted parameters only in theory; DICOMweb
	// clients do not quote commas.
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil {
			out = append(out, accept{mt, params})
		}
	}
	return out
}

// acceptsMultipart reports whether the Accept header allows a
// multipart/related response of parts of type part, with the transfer
// syntax ts (PS3.18 §8.7.3).
func acceptsMultipart(r *http.Request, part, ts string) (bool, string) {
	reason := ""
	for _, a := range parseAccept(r) {
		switch a.mediaType {
		case "*/*", "multipart/*":
			return true, ""
		case MediaMultipart:
			t := a.params["type"]
			if t != "" && !strings.EqualFold(t, part) {
				reason = fmt.Sprintf("parts of type %s cannot be returned here: ask for %s", t, part)
				continue
			}
			if want := a.params["transfer-syntax"]; want != "" && want != "*" && want != ts {
				reason = fmt.Sprintf("transfer syntax %s was asked for, but the instance is kept as received in %s and not transcoded: ask for transfer-syntax=* or %s", want, ts, ts)
				continue
			}
			return true, ""
		}
	}
	if reason == "" {
		reason = fmt.Sprintf("Accept %q: this resource is returned as multipart/related; type=%q", r.Header.Get("Accept"), part)
	}
	return false, reason
}

// multipartWriter writes a multipart/related body of known length, so that
// net/http sends it with a Content-Length, and files with sendfile.
type multipartWriter struct {
	boundary string
}

func newMultipart() *multipartWriter {
	b := make([]byte, 16)
	rand.Read(b)
	return &multipartWriter{boundary: "bildrum-" + hex.EncodeToString(b)}
}

func (m *multipartWriter) partHeader(contentType string) string {
	return "--" + m.boundary + "\r\nContent-Type: " + contentType + "\r\n\r\n"
}

func (m *multipartWriter) end() string { return "--" + m.boundary + "--\r\n" }

// length is the length of a body with parts of the sizes and types.
func (m *multipartWriter) length(sizes []int64, contentType string) int64 {
	n := int64(len(m.end()))
	for _, sz := range sizes {
		n += int64(len(m.partHeader(contentType))) + sz + 2
	}
	return n
}

// retrieve answers WADO-RS retrieval of a study, series or instance as
// multipart/related application/dicom, each part the stored bytes exactly
// (PS3.18 §10.4.1.1).
func (s *Server) retrieve(w http.ResponseWriter, r *http.Request) {
	instances, err := s.instances(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, in := range instances {
		if ok, reason := acceptsMultipart(r, MediaDICOM, in.TransferSyntaxUID); !ok {
			problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, reason)
			return
		}
	}
	if err := s.record(r.Context(), bildrum.AccessImageRead, "WADO-RS "+r.URL.Path, patientsOf(instances)...); err != nil {
		s.fail(w, r, err)
		return
	}
	mp := newMultipart()
	sizes := make([]int64, len(instances))
	for i := range instances {
		sizes[i] = instances[i].Object.Size
	}
	// Open the first object before answering, so that a missing one is
	// an error response and not a cut connection.
	first, err := s.cfg.Archive.Open(r.Context(), instances[0])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", fmt.Sprintf(`multipart/related; type="%s"; boundary=%s`, MediaDICOM, mp.boundary))
	w.Header().Set("Content-Length", strconv.FormatInt(mp.length(sizes, MediaDICOM), 10))
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		first.Close()
		return
	}
	for i := range instances {
		rc := first
		if i > 0 {
			if rc, err = s.cfg.Archive.Open(r.Context(), instances[i]); err != nil {
				s.cfg.Log.Error("wado: object missing while answering", "sop", instances[i].SOPInstanceUID, "err", err)
				panic(http.ErrAbortHandler) // the client must see a cut body, not a short one
			}
		}
		io.WriteString(w, mp.partHeader(MediaDICOM))
		n, err := io.Copy(w, rc)
		rc.Close()
		if err != nil || n != instances[i].Object.Size {
			if r.Context().Err() == nil {
				s.cfg.Log.Error("wado: sending an object failed", "sop", instances[i].SOPInstanceUID, "sent", n, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "\r\n")
	}
	io.WriteString(w, mp.end())
}

// metadata answers WADO-RS metadata (PS3.18 §10.4.1.1.2): the DICOM JSON
// of each instance's header, with Pixel Data as a BulkDataURI to its frames.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	if !acceptsJSON(r) {
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, fmt.Sprintf("Accept %q: metadata are returned as application/dicom+json", r.Header.Get("Accept")))
		return
	}
	instances, err := s.instances(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.record(r.Context(), bildrum.AccessImageRead, "WADO-RS "+r.URL.Path, patientsOf(instances)...); err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.baseURL(r)
	out := make([]archive.Object, 0, len(instances))
	for i := range instances {
		in := &instances[i]
		h, _, closer, err := s.cfg.Archive.Header(r.Context(), *in)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		closer.Close()
		pixelURI := ""
		if in.NumberOfFrames > 0 {
			frames := make([]string, in.NumberOfFrames)
			for f := range frames {
				frames[f] = strconv.Itoa(f + 1)
			}
			pixelURI = instanceURL(base, in) + "/frames/" + strings.Join(frames, ",")
		}
		out = append(out, archive.Metadata(h, pixelURI))
	}
	w.Header().Set("Content-Type", MediaDICOMJSON)
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// parseFrames parses a frame list "1,3,4" (PS3.18 §10.4.1.1.5).
func parseFrames(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, bildrum.Errorf(bildrum.EINVALID, "frame list %q: give frame numbers from 1, separated by commas", list)
		}
		out = append(out, n)
	}
	return out, nil
}

// frames answers WADO-RS frames of an instance with native pixel data as
// multipart/related application/octet-stream, little endian
// (PS3.18 §10.4.1.1.5).
func (s *Server) frames(w http.ResponseWriter, r *http.Request) {
	numbers, err := parseFrames(r.PathValue("frames"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ok, reason := acceptsMultipart(r, MediaOctet, archive.ExplicitVRLittleEndian); !ok {
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, reason)
		return
	}
	instances, err := s.instances(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in := instances[0]
	h, ra, closer, err := s.cfg.Archive.Header(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer closer.Close()
	type span struct{ off, n int64 }
	spans := make([]span, len(numbers))
	sizes := make([]int64, len(numbers))
	for i, f := range numbers {
		off, n, err := h.Frame(f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		spans[i], sizes[i] = span{off, n}, n
	}
	if err := s.record(r.Context(), bildrum.AccessImageRead, "WADO-RS "+r.URL.Path, in.Study.Patient.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	bits, _ := h.Int(tagBitsAllocated)
	swap := h.TransferSyntaxUID == archive.ExplicitVRBigEndian && bits == 16
	mp := newMultipart()
	partType := MediaOctet + "; transfer-syntax=" + archive.ExplicitVRLittleEndian
	w.Header().Set("Content-Type", fmt.Sprintf(`multipart/related; type="%s"; boundary=%s`, MediaOctet, mp.boundary))
	w.Header().Set("Content-Length", strconv.FormatInt(mp.length(sizes, partType), 10))
	w.Header().Set("Cache-Control", "no-store")
	for _, sp := range spans {
		io.WriteString(w, mp.partHeader(partType))
		if swap {
			buf := make([]byte, sp.n)
			if _, err := ra.ReadAt(buf, sp.off); err != nil {
				panic(http.ErrAbortHandler)
			}
			for i := 0; i+1 < len(buf); i += 2 {
				binary.LittleEndian.PutUint16(buf[i:], binary.BigEndian.Uint16(buf[i:]))
			}
			w.Write(buf)
		} else if _, err := io.Copy(w, io.NewSectionReader(ra, sp.off, sp.n)); err != nil {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "\r\n")
	}
	io.WriteString(w, mp.end())
}

// renderOptions parses the query parameters of rendered resources
// (PS3.18 §8.3.5.1): window=center,width,function; viewport=w,h; quality.
func renderOptions(r *http.Request) (archive.RenderOptions, int, error) {
	var opt archive.RenderOptions
	q := r.URL.Query()
	if v := q.Get("window"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) != 3 {
			return opt, 0, bildrum.Errorf(bildrum.EINVALID, "window=%q: write window=center,width,function with function linear, linear-exact or sigmoid (PS3.18 §8.3.5.1.3)", v)
		}
		c, err1 := strconv.ParseFloat(parts[0], 64)
		wd, err2 := strconv.ParseFloat(parts[1], 64)
		fn := map[string]string{"linear": archive.VOILinear, "linear-exact": archive.VOILinearExact, "sigmoid": archive.VOISigmoid}[strings.ToLower(parts[2])]
		if err1 != nil || err2 != nil || fn == "" {
			return opt, 0, bildrum.Errorf(bildrum.EINVALID, "window=%q: write window=center,width,function with numbers and function linear, linear-exact or sigmoid (PS3.18 §8.3.5.1.3)", v)
		}
		opt.Window = &archive.Window{Center: c, Width: wd, Function: fn}
	}
	if v := q.Get("viewport"); v != "" {
		parts := strings.Split(v, ",")
		var err1, err2 error
		if len(parts) >= 2 {
			opt.Width, err1 = strconv.Atoi(parts[0])
			opt.Height, err2 = strconv.Atoi(parts[1])
		}
		if len(parts) < 2 || err1 != nil || err2 != nil || opt.Width < 0 || opt.Height < 0 || opt.Width > 16384 || opt.Height > 16384 {
			return opt, 0, bildrum.Errorf(bildrum.EINVALID, "viewport=%q: write viewport=width,height in pixels (PS3.18 §8.3.5.1.2)", v)
		}
	}
	quality := 90
	if v := q.Get("quality"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return opt, 0, bildrum.Errorf(bildrum.EINVALID, "quality=%q: give a number from 1 to 100", v)
		}
		quality = n
	}
	return opt, quality, nil
}

// renderedType picks image/jpeg (the default of PS3.18 §8.7.4) or image/png
// from the Accept header.
func renderedType(r *http.Request) (string, bool) {
	for _, a := range parseAccept(r) {
		switch a.mediaType {
		case MediaJPEG, "*/*", "image/*":
			return MediaJPEG, true
		case MediaPNG:
			return MediaPNG, true
		}
	}
	return "", false
}

// rendered answers WADO-RS rendered resources (PS3.18 §10.4.1.1.3): a
// frame of the instance, or of the first instance of a series or study.
func (s *Server) rendered(w http.ResponseWriter, r *http.Request) {
	opt, quality, err := renderOptions(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, opt, quality)
}

// thumbnail answers WADO-RS thumbnails: the rendered image scaled to fit
// 256×256 unless a viewport is given.
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	opt, quality, err := renderOptions(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if opt.Width == 0 && opt.Height == 0 {
		opt.Width, opt.Height = 256, 256
	}
	s.render(w, r, opt, quality)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, opt archive.RenderOptions, quality int) {
	mediaType, ok := renderedType(r)
	if !ok {
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, fmt.Sprintf("Accept %q: rendered images are image/jpeg or image/png", r.Header.Get("Accept")))
		return
	}
	if f := r.PathValue("frames"); f != "" {
		numbers, err := parseFrames(f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		opt.Frame = numbers[0]
	}
	instances, err := s.instances(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in := instances[0]
	for _, cand := range instances {
		if cand.Rows > 0 {
			in = cand // the first image of a study or series
			break
		}
	}
	img, err := s.cfg.Archive.Render(r.Context(), in, opt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.record(r.Context(), bildrum.AccessImageRead, "WADO-RS "+r.URL.Path, in.Study.Patient.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-store")
	if err := encodeImage(w, img, mediaType, quality); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		s.cfg.Log.Warn("rendered: encoding failed", "err", err)
	}
}

func encodeImage(w io.Writer, img image.Image, mediaType string, quality int) error {
	if mediaType == MediaPNG {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		return enc.Encode(w, img)
	}
	return jpeg.Encode(w, img, &jpeg.Options{Quality: quality})
}

var tagBitsAllocated = tagOf(0x0028, 0x0100)
