package githubapp

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// writeError answers with err as a problem document; internal errors are
// logged and answered without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if p := problem.Write(w, r, err); p.Status == http.StatusInternalServerError {
		log.Error("request failed", logkey.Path, r.URL.Path, logkey.Err, err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
