package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// problemTypeBase prefixes the stable problem type URIs.
const problemTypeBase = "urn:smek:problem:"

// problem turns err into the problem document the client sees. Internal
// errors get a generic message; their detail goes to the log only.
func problem(r *http.Request, err error) wire.Problem {
	code := cluster.ErrorCode(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = cluster.EUNAVAILABLE
	}
	status := cluster.HTTPStatus(code)
	p := wire.Problem{
		Type:      problemTypeBase + string(code),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    cluster.ErrorMessage(err),
		Instance:  r.URL.Path,
		Code:      string(code),
		RequestID: requestID(r.Context()),
	}
	if e, ok := errors.AsType[*cluster.Error](err); ok {
		p.Field, p.Supported = e.Field, e.Supported
	}
	if code == cluster.EUNAVAILABLE && p.Detail == "internal error" {
		p.Detail = "the request timed out"
	}
	return p
}

// writeError answers with a problem+json document and logs the error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem(r, err)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		level, p.Status = slog.LevelInfo, 499 // the client went away
	}
	s.log.Log(r.Context(), level, "request failed", "request_id", p.RequestID, "path", r.URL.Path, "status", p.Status, "code", p.Code, "err", err)
	if p.Status == 499 {
		return
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smek"`)
	}
	writeJSON(w, p.Status, wire.MediaProblem, p)
}

func writeJSON(w http.ResponseWriter, status int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
