package clienttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"

	"github.com/smek/action/internal/wire"
)

// Bundle packs files (name → content) as a diagnostics bundle: a tar.gz
// of regular files, as GET /v1/clusters/{id}/diagnostics answers.
func Bundle(files map[string]string, order ...string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range order {
		body := files[name]
		// Writing into a bytes.Buffer does not fail.
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// FakeSummary is the summary.md of the fake's default bundle.
const FakeSummary = "### Cluster diagnostics\n\n1 node(s), 0 not ready; 0 pod(s), 0 failing; 0 event(s), 0 warning(s).\n"

// diagnostics answers the running cluster's bundle: DiagnosticsBundle when
// set, else a bundle of nodes.txt and summary.md. tail-lines is checked as
// the real server does.
func (s *Server) diagnostics(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := r.URL.Query().Get("tail-lines"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 10000 {
			problem(w, http.StatusBadRequest, "invalid", "tail-lines", "tail-lines must be a whole number between 1 and 10000")
			return
		}
	}
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus != "running" {
		problem(w, http.StatusConflict, "conflict", "cluster-id", "cluster is "+c.ClusterStatus)
		return
	}
	body := s.DiagnosticsBundle
	if body == nil {
		body = Bundle(map[string]string{"nodes.txt": "node smek-" + c.ClusterID + "\n", "summary.md": FakeSummary}, "nodes.txt", "summary.md")
	}
	w.Header().Set("Content-Type", wire.MediaGzip)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
