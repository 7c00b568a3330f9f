package dicomweb

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/problem"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Failure Reason (0008,1197) values of the Store Instances Response Module
// (PS3.18 §I.2.2; codes not listed there are from PS3.7 Annex C or this
// server's own, as docs/dicom-conformance.md says).
const (
	FailureProcessing        = 0x0110 // processing failure (PS3.18 Table I.2-2)
	FailureDuplicateInstance = 0x0111 // duplicate SOP Instance with other content (PS3.7 §C.4.2)
	FailureOutOfResources    = 0xA700 // refused: out of resources (PS3.18 Table I.2-2)
	FailureCannotUnderstand  = 0xC000 // not a well-formed PS3.10 file, or a UID missing (PS3.18 Table I.2-2)
	FailureStudyMismatch     = 0xC409 // Study Instance UID differs from the one in the request URL (this server)
)

// Tags of the Store Instances Response Module (PS3.18 Table I.2-1).
var (
	tagFailedSOPSequence       = tag.Tag{Group: 0x0008, Element: 0x1198}
	tagReferencedSOPSequence   = tag.Tag{Group: 0x0008, Element: 0x1199}
	tagReferencedSOPClassUID   = tag.Tag{Group: 0x0008, Element: 0x1150}
	tagReferencedSOPInstanceUI = tag.Tag{Group: 0x0008, Element: 0x1155}
	tagFailureReason           = tag.Tag{Group: 0x0008, Element: 0x1197}
	tagRetrieveURL             = tag.Tag{Group: 0x0008, Element: 0x1190}
	tagErrorComment            = tag.Tag{Group: 0x0000, Element: 0x0902}
)

func tagOf(group, element uint16) tag.Tag { return tag.Tag{Group: group, Element: element} }

// stow stores the instances of a multipart/related request (PS3.18 §10.5).
// Instances are acknowledged only after all parts are read and the index
// has committed them, so a refused request (400, 413, 415) stores nothing.
func (s *Server) stow(w http.ResponseWriter, r *http.Request) {
	studyInURL := r.PathValue("study")
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil || mt != MediaMultipart:
		problem.Write(w, r, http.StatusUnsupportedMediaType, bildrum.EINVALID,
			fmt.Sprintf("Content-Type %q: send multipart/related; type=\"application/dicom\" with one PS3.10 file per part (PS3.18 §10.5.1)", r.Header.Get("Content-Type")))
		return
	case params["type"] != "" && !strings.EqualFold(params["type"], MediaDICOM):
		problem.Write(w, r, http.StatusUnsupportedMediaType, bildrum.EINVALID,
			fmt.Sprintf("multipart/related of type %q is not supported: this server stores application/dicom parts only (PS3.18 §10.5.1)", params["type"]))
		return
	case params["boundary"] == "":
		problem.Write(w, r, http.StatusBadRequest, bildrum.EINVALID, "the multipart/related Content-Type has no boundary parameter")
		return
	}
	if r.ContentLength > s.cfg.MaxRequestBytes {
		problem.Write(w, r, http.StatusRequestEntityTooLarge, bildrum.EINVALID, s.tooLarge())
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
	// The multipart reader reads 4 KB at a time; a large buffer under it
	// lets each read from the connection take what has arrived, instead of
	// a system call per 4 KB of a mammogram. A body of known small size
	// gets a buffer of its size; any other (such as a chunked one, whose
	// size is unknown) one of the pool's.
	var br *bufio.Reader
	if r.ContentLength > 0 && r.ContentLength < stowReadBuffer {
		br = bufio.NewReaderSize(body, int(r.ContentLength))
	} else {
		br = stowReaders.Get().(*bufio.Reader)
		br.Reset(body)
		defer func() {
			br.Reset(nil) // drop the request's body and buffered bytes
			stowReaders.Put(br)
		}()
	}
	mr := multipart.NewReader(br, params["boundary"])

	type outcome struct {
		inst    bildrum.Instance
		failure int    // 0 for success
		reason  string // for failures
		batched bool   // in the batch, awaiting commit
	}
	var outcomes []outcome
	batch := s.cfg.Archive.NewBatch()
	batch.Study = studyInURL
	defer batch.Close()
	var tooBig *http.MaxBytesError
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.As(err, &tooBig) {
			problem.Write(w, r, http.StatusRequestEntityTooLarge, bildrum.EINVALID, s.tooLarge())
			return
		} else if err != nil {
			problem.Write(w, r, http.StatusBadRequest, bildrum.EINVALID, fmt.Sprintf("the multipart/related body is malformed after %d parts (%v): nothing was stored", len(outcomes), err))
			return
		}
		if ct := part.Header.Get("Content-Type"); ct != "" {
			if pt, _, _ := mime.ParseMediaType(ct); pt != MediaDICOM {
				outcomes = append(outcomes, outcome{failure: FailureCannotUnderstand, reason: fmt.Sprintf("part %d has Content-Type %q, not application/dicom", len(outcomes)+1, ct)})
				part.Close()
				continue
			}
		}
		inst, err := batch.Add(r.Context(), part)
		part.Close()
		switch {
		case err == nil:
			outcomes = append(outcomes, outcome{inst: inst, batched: true})
		case errors.As(err, &tooBig):
			problem.Write(w, r, http.StatusRequestEntityTooLarge, bildrum.EINVALID, s.tooLarge())
			return
		case errors.Is(err, archive.ErrReceive):
			if r.Context().Err() != nil {
				return // the client went away: nothing to answer, nothing stored
			}
			problem.Write(w, r, http.StatusBadRequest, bildrum.EINVALID, fmt.Sprintf("reading part %d failed (%v): nothing was stored", len(outcomes)+1, errors.Unwrap(err)))
			return
		case errors.Is(err, archive.ErrStudyMismatch):
			outcomes = append(outcomes, outcome{inst: inst, failure: FailureStudyMismatch, reason: err.Error()})
		case bildrum.ErrorCode(err) == bildrum.EINVALID:
			outcomes = append(outcomes, outcome{inst: inst, failure: FailureCannotUnderstand, reason: bildrum.ErrorMessage(err)})
		case bildrum.ErrorCode(err) == bildrum.ECONFLICT:
			outcomes = append(outcomes, outcome{inst: inst, failure: FailureDuplicateInstance, reason: bildrum.ErrorMessage(err)})
		default:
			s.cfg.Log.Error("stow: receive failed", "err", err)
			outcomes = append(outcomes, outcome{inst: inst, failure: FailureOutOfResources, reason: "the archive could not write the instance: the operator has been told"})
		}
	}
	if len(outcomes) == 0 {
		problem.Write(w, r, http.StatusBadRequest, bildrum.EINVALID, "the request has no parts: send one application/dicom part per instance")
		return
	}
	// The batch holds the instances received whole, in order; commit
	// them now, then answer: only then are they acknowledged.
	errs, err := batch.Commit(r.Context())
	if err != nil {
		s.cfg.Log.Error("stow: index commit failed", "err", err)
		problem.Write(w, r, http.StatusInternalServerError, bildrum.EINTERNAL, "the archive could not record the instances: nothing was stored; the operator has been told")
		return
	}
	j := 0
	for i := range outcomes {
		if !outcomes[i].batched {
			continue
		}
		switch err := errs[j]; bildrum.ErrorCode(err) {
		case "":
		case bildrum.EINVALID:
			outcomes[i].failure, outcomes[i].reason = FailureCannotUnderstand, bildrum.ErrorMessage(err)
		case bildrum.ECONFLICT:
			outcomes[i].failure, outcomes[i].reason = FailureDuplicateInstance, bildrum.ErrorMessage(err)
		default: // the instance's bytes could not be made durable
			s.cfg.Log.Error("stow: store failed", "err", err)
			outcomes[i].failure, outcomes[i].reason = FailureOutOfResources, "the archive could not write the instance: the operator has been told"
		}
		j++
	}

	base := s.baseURL(r)
	resp := archive.Object{}
	var refs, fails []any
	studies := map[string]bool{}
	for _, o := range outcomes {
		item := archive.Object{
			archive.Key(tagReferencedSOPClassUID):   uidAttr(o.inst.SOPClassUID),
			archive.Key(tagReferencedSOPInstanceUI): uidAttr(o.inst.SOPInstanceUID),
		}
		if o.failure == 0 {
			studies[o.inst.Study.StudyInstanceUID] = true
			item[archive.Key(tagRetrieveURL)] = archive.Attr{VR: "UR", Value: []any{instanceURL(base, &o.inst)}}
			refs = append(refs, item)
			continue
		}
		item[archive.Key(tagFailureReason)] = archive.Attr{VR: "US", Value: []any{o.failure}}
		item[archive.Key(tagErrorComment)] = archive.Attr{VR: "LO", Value: []any{o.reason}}
		fails = append(fails, item)
		w.Header().Add("Warning", fmt.Sprintf(`299 bildrum %q`, strings.ToValidUTF8(o.reason, "?")))
	}
	if len(refs) > 0 {
		resp[archive.Key(tagReferencedSOPSequence)] = archive.Attr{VR: "SQ", Value: refs}
	}
	if len(fails) > 0 {
		resp[archive.Key(tagFailedSOPSequence)] = archive.Attr{VR: "SQ", Value: fails}
	}
	if len(studies) == 1 {
		for uid := range studies {
			resp[archive.Key(tagRetrieveURL)] = archive.Attr{VR: "UR", Value: []any{base + "/studies/" + uid}}
		}
	}
	status := http.StatusOK
	switch {
	case len(refs) == 0:
		status = http.StatusConflict
	case len(fails) > 0:
		status = http.StatusAccepted
	}
	w.Header().Set("Content-Type", MediaDICOMJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(resp)
}

// stowReadBuffer is the size of the buffer a STOW-RS body is read through
// (smaller for a smaller body).
const stowReadBuffer = 256 << 10

// stowReaders keeps the read buffers of STOW-RS bodies for reuse, so that a
// stream of small requests of unknown length does not allocate and clear
// stowReadBuffer bytes for each. A reader is Reset to its request's body
// when taken, which discards whatever it buffered before.
var stowReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, stowReadBuffer) }}

func (s *Server) tooLarge() string {
	return fmt.Sprintf("the request body is larger than this server accepts (%d bytes): nothing was stored; send the instances in several requests", s.cfg.MaxRequestBytes)
}

func uidAttr(uid string) archive.Attr {
	if uid == "" {
		return archive.Attr{VR: "UI"}
	}
	return archive.Attr{VR: "UI", Value: []any{uid}}
}

func instanceURL(base string, in *bildrum.Instance) string {
	return base + "/studies/" + in.Study.StudyInstanceUID + "/series/" + in.Series.SeriesInstanceUID + "/instances/" + in.SOPInstanceUID
}
