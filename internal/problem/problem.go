// Package problem writes and reads SMEK's problem documents (RFC 9457,
// application/problem+json): the one answer of every failed request, from
// the API, the GitHub App's routes and the test server alike, and what the
// client reads back. It depends on the standard library, the domain's error
// codes (cluster) and the wire types only, so that the action binary can
// link it.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// TypeBase prefixes every problem type: TypeBase + code, such as
// "urn:smek:problem:invalid". A URN names the code without promising a
// page behind it (RFC 9457 section 3.1.1); the README documents the codes.
const TypeBase = "urn:smek:problem:"

// Challenge is the WWW-Authenticate of every 401: the API takes bearer
// tokens.
const Challenge = `Bearer realm="smek"`

// StatusClientClosed is the status logged for a request whose client went
// away before the answer (nginx's 499); nothing is written then.
const StatusClientClosed = 499

// From returns the problem document that answers err for a request to
// instance (its path). The status follows the error's code; an internal
// error gets a generic message, so that no detail leaks, and a deadline
// that ran out is the service being unavailable.
func From(err error, instance string) wire.Problem {
	code := cluster.ErrorCode(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = cluster.EUNAVAILABLE
	}
	status := cluster.HTTPStatus(code)
	p := wire.Problem{
		Type:     TypeBase + string(code),
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   cluster.ErrorMessage(err),
		Instance: instance,
		Code:     string(code),
	}
	if e, ok := errors.AsType[*cluster.Error](err); ok {
		p.Field, p.Supported = e.Field, e.Supported
	}
	if code == cluster.EUNAVAILABLE && p.Detail == "internal error" {
		p.Detail = "the request timed out"
	}
	return p
}

// Write answers r with err as a problem document and returns the document
// for the caller's log. The request id is the one the answer already
// carries in its header. When the client went away, nothing is written and
// the document's status is StatusClientClosed.
func Write(w http.ResponseWriter, r *http.Request, err error) wire.Problem {
	p := From(err, r.URL.Path)
	p.RequestID = w.Header().Get(wire.HeaderRequestID)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		p.Status = StatusClientClosed
		return p
	}
	Send(w, p)
	return p
}

// NotAllowed answers a method the route does not take: 405, the methods
// it does take in Allow, and the code of bad input.
func NotAllowed(w http.ResponseWriter, r *http.Request, allow string, err error) {
	w.Header().Set("Allow", allow)
	p := From(err, r.URL.Path)
	p.RequestID = w.Header().Get(wire.HeaderRequestID)
	p.Status, p.Title = http.StatusMethodNotAllowed, http.StatusText(http.StatusMethodNotAllowed)
	Send(w, p)
}

// Send writes p as the answer, with p.Status as the HTTP status. A 401
// names the scheme the API expects.
func Send(w http.ResponseWriter, p wire.Problem) {
	h := w.Header()
	h.Set("Content-Type", wire.MediaProblem)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", Challenge)
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// Parse reads the problem document of an answer outside 2xx from its
// Content-Type and body. It reports false for anything else (a proxy's
// HTML page, say).
func Parse(header http.Header, body []byte) (wire.Problem, bool) {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt != wire.MediaProblem && mt != wire.MediaJSON {
		return wire.Problem{}, false
	}
	var p wire.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Code == "" && p.Title == "" {
		return wire.Problem{}, false
	}
	return p, true
}
