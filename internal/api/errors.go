package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/problem"
)

// writeError answers with a problem+json document and logs the error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.Write(w, r, err)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", "request_id", p.RequestID, "path", r.URL.Path, "status", p.Status, "code", p.Code, "err", err)
}

func writeJSON(w http.ResponseWriter, status int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
