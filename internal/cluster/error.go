package cluster

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an application error. The API maps each code to an HTTP
// status in one place.
type Code string

// Application error codes.
const (
	EINVALID      Code = "invalid"                // bad input; names the field
	ETOOLARGE     Code = "too-large"              // request body over the limit
	EUNAUTHORIZED Code = "unauthorized"           // no, bad or revoked credential
	EFORBIDDEN    Code = "forbidden"              // authenticated but not permitted
	ESUSPENDED    Code = "suspended"              // the account may not create or start clusters
	ENOTFOUND     Code = "not-found"              // unknown, or another account's
	ECONFLICT     Code = "conflict"               // illegal state change
	ELIMIT        Code = "limit"                  // parallel-cluster or rate limit
	EUNAVAILABLE  Code = "unavailable"            // no capacity within the wait budget
	EINTERNAL     Code = "internal"               // our fault; the detail is logged only
	EMEDIATYPE    Code = "unsupported-media-type" // a body of a Content-Type the route does not take
	ENOSPACE      Code = "insufficient-storage"   // the server's or a node's disk is full
	EUNSUPPORTED  Code = "not-implemented"        // the cluster's backend cannot do it
)

// Error is SMEK's application error. Message is safe to show to the user;
// Err carries internal detail for the logs.
type Error struct {
	Code    Code
	Field   string // the offending input field, for EINVALID
	Message string
	// Supported lists the accepted values, for an unknown value.
	Supported []string
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with a user-safe message. field may be
// empty.
func Errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL for errors that are not
// application errors, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err; internal errors get a
// generic message so that no detail leaks.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// httpStatus is the one map from application error codes to HTTP statuses,
// for every SMEK endpoint.
var httpStatus = map[Code]int{
	EINVALID:      http.StatusBadRequest,
	ETOOLARGE:     http.StatusRequestEntityTooLarge,
	EUNAUTHORIZED: http.StatusUnauthorized,
	EFORBIDDEN:    http.StatusForbidden,
	ESUSPENDED:    http.StatusForbidden,
	ENOTFOUND:     http.StatusNotFound,
	ECONFLICT:     http.StatusConflict,
	ELIMIT:        http.StatusTooManyRequests,
	EUNAVAILABLE:  http.StatusServiceUnavailable,
	EINTERNAL:     http.StatusInternalServerError,
	EMEDIATYPE:    http.StatusUnsupportedMediaType,
	ENOSPACE:      http.StatusInsufficientStorage,
	EUNSUPPORTED:  http.StatusNotImplemented,
}

// Codes lists every application error code, for the API's documentation.
func Codes() []Code {
	return []Code{EINVALID, ETOOLARGE, EUNAUTHORIZED, EFORBIDDEN, ESUSPENDED, ENOTFOUND, ECONFLICT, ELIMIT, EUNAVAILABLE, EINTERNAL, EMEDIATYPE, ENOSPACE, EUNSUPPORTED}
}

// HTTPStatus returns the HTTP status that answers an error with this code.
func HTTPStatus(c Code) int {
	if s, ok := httpStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus guesses the code of an answer that carried none (a proxy's
// page, say) from its HTTP status: the first code that maps to it. A 500 and
// statuses no code maps to give "": they need not be ours.
func CodeForStatus(status int) Code {
	for _, c := range Codes() {
		if c != EINTERNAL && httpStatus[c] == status {
			return c
		}
	}
	return ""
}
