package api

import (
	"net/http"
	"strconv"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/wire"
)

// Bounds of the tail-lines query parameter of the diagnostics route.
const (
	defaultTailLines = 200
	maxTailLines     = 10000
)

// v1Diagnostics is GET /v1/clusters/{id}/diagnostics: a tar.gz bundle of
// what the tenant's credential sees on the running cluster — nodes, events,
// pods' status and logs — with a summary of the failing pods. Errors before
// the first byte are problems; what fails later is recorded in the bundle.
func (s *Server) v1Diagnostics(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tail, err := tailLines(r.URL.Query().Get("tail-lines"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.Diagnostics == nil {
		s.writeError(w, r, cluster.Errorf(cluster.EUNAVAILABLE, "", "this server does not collect diagnostics"))
		return
	}
	// Each collection holds a bundle's pages and logs in memory for up to
	// a minute: a bounded number at once.
	select {
	case s.diagnostics <- struct{}{}:
		defer func() { <-s.diagnostics }()
	default:
		s.writeError(w, r, cluster.Errorf(cluster.ELIMIT, "", "%d diagnostics are being collected; try again in a minute", cap(s.diagnostics)))
		return
	}
	res, err := s.life.DiagnosticsCredential(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", wire.MediaGzip)
	w.Header().Set("Content-Disposition", `attachment; filename="smek-diagnostics-`+string(res.Cluster.ID)+`.tar.gz"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := s.cfg.Diagnostics(r.Context(), res.Kubeconfig, w, tail); err != nil {
		// The answer is under way: the client sees a cut stream.
		s.log.Warn("diagnostics cut short", logkey.Cluster, res.Cluster.ID, logkey.Err, err)
	}
}

// tailLines parses the tail-lines query parameter.
func tailLines(v string) (int, error) {
	if v == "" {
		return defaultTailLines, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxTailLines {
		return 0, cluster.Errorf(cluster.EINVALID, "tail-lines", "tail-lines must be a whole number between 1 and %d", maxTailLines)
	}
	return n, nil
}
