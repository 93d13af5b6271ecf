package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
)

// writeError answers with a problem+json document and logs the error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.Write(w, r, err)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", logkey.RequestID, p.RequestID, logkey.Path, r.URL.Path, logkey.Status, p.Status, logkey.Code, p.Code, logkey.Err, err)
}

func writeJSON(w http.ResponseWriter, status int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
