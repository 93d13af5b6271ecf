package githubapp

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// writeError answers with err as a problem document; internal errors are
// logged and answered without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := cluster.ErrorCode(err)
	if code == cluster.EINTERNAL {
		log.Error("request failed", "path", r.URL.Path, logErr, err)
	}
	writeProblem(w, r, cluster.HTTPStatus(code), err)
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, err error) {
	p := wire.Problem{
		Type:     "https://smek.dev/problems/" + string(cluster.ErrorCode(err)),
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   cluster.ErrorMessage(err),
		Instance: r.URL.Path,
		Code:     string(cluster.ErrorCode(err)),
	}
	if ce, ok := err.(*cluster.Error); ok {
		p.Field = ce.Field
	}
	w.Header().Set("Content-Type", wire.MediaProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
