package bildrum

import (
	"errors"
	"fmt"
)

// Error codes of the domain. Adapters map them once each: to HTTP problem
// details (package problem), DIMSE statuses and CLI exit codes.
const (
	ECONFLICT     = "conflict"     // the request conflicts with stored state
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed this
	EINTERNAL     = "internal"     // a fault of ours; details are logged, not shown
	EINVALID      = "invalid"      // the input is malformed or out of range
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	EUNAUTHORIZED = "unauthorized" // no or unknown credentials
	EUNAVAILABLE  = "unavailable"  // a part needed for the answer is down or stale
)

// Error is a domain error: a machine-readable code and a message written for
// the person who made the request, saying what was wrong and what to do.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("bildrum error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, or a generic message for internal errors, which must not leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error: the operator has been told. Try again later."
}
