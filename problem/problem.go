// Package problem writes HTTP errors as RFC 9457 problem details and maps
// the domain's error codes to HTTP statuses, in one place for every API of
// bildrum.
package problem

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/bildrum/bildrum"
)

// ContentType is the media type of problem details (RFC 9457 §3).
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem details object.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code,omitempty"` // the bildrum error code, for programs
}

// Status returns the HTTP status for a domain error code.
func Status(code string) int {
	switch code {
	case bildrum.EINVALID:
		return http.StatusBadRequest
	case bildrum.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case bildrum.EFORBIDDEN:
		return http.StatusForbidden
	case bildrum.ENOTFOUND:
		return http.StatusNotFound
	case bildrum.ECONFLICT:
		return http.StatusConflict
	case bildrum.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Write answers with problem details for status, with the standard status
// text as title.
func Write(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bildrum"`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Details{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
		Code:     code,
	})
}

// WriteExtended answers with problem details carrying extension members
// (RFC 9457 §3.2), such as the list of bad rows of an import.
func WriteExtended(w http.ResponseWriter, r *http.Request, status int, code, detail string, ext map[string]any) {
	body := map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status,
		"detail": detail, "instance": r.URL.Path, "code": code,
	}
	for k, v := range ext {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// Error answers with the problem details of err. Internal errors are logged
// with the request and shown only as a generic message.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := bildrum.ErrorCode(err)
	if code == bildrum.EINTERNAL && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	Write(w, r, Status(code), code, bildrum.ErrorMessage(err))
}
