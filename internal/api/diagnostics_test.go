package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// TestDiagnosticsBounded: checks before any collection: tail-lines is
// named when bad, and collections beyond MaxDiagnostics are a 429.
func TestDiagnosticsBounded(t *testing.T) {
	s := New(Config{MaxDiagnostics: 1, Diagnostics: func(context.Context, cluster.Kubeconfig, io.Writer, int) error {
		t.Error("collected")
		return nil
	}})
	get := func(query string) wire.Problem {
		t.Helper()
		r := httptest.NewRequest("GET", "/v1/clusters/c-abc123/diagnostics"+query, nil)
		r.SetPathValue("id", "c-abc123")
		w := httptest.NewRecorder()
		s.v1Diagnostics(w, r, cluster.Principal{})
		var p wire.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("%d %s: %v", w.Code, w.Body, err)
		}
		if p.Status != w.Code {
			t.Errorf("problem status %d, answer %d", p.Status, w.Code)
		}
		return p
	}
	for _, q := range []string{"?tail-lines=0", "?tail-lines=-3", "?tail-lines=x", "?tail-lines=10001"} {
		if p := get(q); p.Status != http.StatusBadRequest || p.Field != "tail-lines" {
			t.Errorf("%s: %d field %q, want 400 naming tail-lines", q, p.Status, p.Field)
		}
	}
	s.diagnostics <- struct{}{} // one collection under way
	if p := get("?tail-lines=5"); p.Status != http.StatusTooManyRequests {
		t.Errorf("beyond MaxDiagnostics: %d %s, want 429", p.Status, p.Detail)
	}
}
