package githubapp

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// status maps an application error code to its HTTP status.
func status(code cluster.Code) int {
	switch code {
	case cluster.EINVALID:
		return http.StatusBadRequest
	case cluster.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case cluster.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case cluster.EFORBIDDEN:
		return http.StatusForbidden
	case cluster.ENOTFOUND:
		return http.StatusNotFound
	case cluster.ECONFLICT:
		return http.StatusConflict
	case cluster.ELIMIT:
		return http.StatusTooManyRequests
	case cluster.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers with err as a problem document; internal errors are
// logged and answered without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := cluster.ErrorCode(err)
	if code == cluster.EINTERNAL {
		log.Error("request failed", "path", r.URL.Path, logErr, err)
	}
	writeProblem(w, r, status(code), err)
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
