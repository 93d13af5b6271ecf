package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// Error is an answer of the API outside 2xx. Problem is the server's
// problem document; for answers that are not problem+json (a proxy's HTML
// page, say) it is filled from the status and the start of the body.
type Error struct {
	Method     string
	Path       string
	StatusCode int
	Problem    wire.Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Problem.Code != "" {
		fmt.Fprintf(&b, " %s", e.Problem.Code)
	}
	if msg := e.Message(); msg != "" {
		fmt.Fprintf(&b, ": %s", msg)
	}
	return b.String()
}

// Message is the human part of the problem: its detail, else its title,
// with the offending field named.
func (e *Error) Message() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if e.Problem.Field != "" && !strings.Contains(msg, e.Problem.Field) {
		msg = fmt.Sprintf("%s: %s", e.Problem.Field, msg)
	}
	if len(e.Problem.Supported) > 0 {
		msg += fmt.Sprintf(" (supported: %s)", strings.Join(e.Problem.Supported, ", "))
	}
	return msg
}

// newError reads a non-2xx answer into an *Error.
func newError(method, path string, resp *http.Response) *Error {
	e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if p, ok := problem.Parse(resp.Header, body); ok {
		e.Problem = p
		if e.Problem.Status == 0 {
			e.Problem.Status = resp.StatusCode
		}
		return e
	}
	e.Problem = wire.Problem{
		Title:  http.StatusText(resp.StatusCode),
		Status: resp.StatusCode,
		Code:   string(cluster.CodeForStatus(resp.StatusCode)),
		Detail: snippet(body),
	}
	return e
}

// snippet returns the start of a non-problem body as one printable line,
// for error messages.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	return s
}

// StatusCode returns the HTTP status of an API error, 0 for other errors.
func StatusCode(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.StatusCode
	}
	return 0
}

func hasStatus(err error, status int) bool { return StatusCode(err) == status }

// IsInvalid reports a 400: the request named a bad field.
func IsInvalid(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsUnauthorized reports a 401: no, bad or revoked credential.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports a 403: authenticated, but not permitted.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsNotFound reports a 404: unknown cluster, or another account's.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports a 409: an illegal state change, such as terminating a
// terminated cluster.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsLimit reports a 429: the account's parallel-cluster limit or a rate
// limit.
func IsLimit(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }

// IsUnavailable reports a 503: no cluster became ready within the wait
// budget.
func IsUnavailable(err error) bool { return hasStatus(err, http.StatusServiceUnavailable) }

// IsTooLarge reports a 413: the request body is over the server's limit.
func IsTooLarge(err error) bool { return hasStatus(err, http.StatusRequestEntityTooLarge) }

// IsUnsupportedMediaType reports a 415: the body's Content-Type is not one
// the route takes.
func IsUnsupportedMediaType(err error) bool {
	return hasStatus(err, http.StatusUnsupportedMediaType)
}

// IsNoSpace reports a 507: the cluster's node has no room for what was
// sent.
func IsNoSpace(err error) bool { return hasStatus(err, http.StatusInsufficientStorage) }

// IsNotImplemented reports a 501: the cluster's backend cannot do this.
func IsNotImplemented(err error) bool { return hasStatus(err, http.StatusNotImplemented) }
