package problem

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// What Write answers, Parse reads back: the client and the server speak
// one document.
func TestWriteParse(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantDetail string
	}{
		{"invalid", &cluster.Error{Code: cluster.EINVALID, Field: "k8s-version", Message: "not offered", Supported: []string{"1.36.3"}}, 400, "invalid", "not offered"},
		{"wrapped not found", fmt.Errorf("get: %w", cluster.Errorf(cluster.ENOTFOUND, "", "no cluster")), 404, "not-found", "no cluster"},
		{"internal hides detail", errors.New("disk on fire"), 500, "internal", "internal error"},
		{"deadline", context.DeadlineExceeded, 503, "unavailable", "the request timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set(wire.HeaderRequestID, "req-1")
			Write(w, httptest.NewRequest(http.MethodGet, "/v1/clusters", nil), tt.err)
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d, want %d", w.Code, tt.wantStatus)
			}
			p, ok := Parse(w.Header(), w.Body.Bytes())
			if !ok {
				t.Fatalf("Parse: not a problem: %q %q", w.Header().Get("Content-Type"), w.Body)
			}
			if p.Type != TypeBase+tt.wantCode || p.Code != tt.wantCode || p.Status != tt.wantStatus || p.Detail != tt.wantDetail {
				t.Errorf("got %+v, want type %s, status %d, detail %q", p, TypeBase+tt.wantCode, tt.wantStatus, tt.wantDetail)
			}
			if p.RequestID != "req-1" || p.Instance != "/v1/clusters" {
				t.Errorf("got request-id %q instance %q, want req-1 and /v1/clusters", p.RequestID, p.Instance)
			}
		})
	}
}

func TestWriteUnauthorizedChallenges(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), cluster.Errorf(cluster.EUNAUTHORIZED, "", "no token"))
	if got := w.Header().Get("WWW-Authenticate"); got != Challenge {
		t.Errorf("got WWW-Authenticate %q, want %q", got, Challenge)
	}
}

// A client that went away gets nothing written; the log sees 499.
func TestWriteClientGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	p := Write(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil), context.Canceled)
	if p.Status != StatusClientClosed || w.Body.Len() != 0 {
		t.Errorf("got status %d and %d bytes written, want %d and none", p.Status, w.Body.Len(), StatusClientClosed)
	}
}

func TestParseRefusesOtherAnswers(t *testing.T) {
	tests := []struct{ contentType, body string }{
		{"text/html", `<html>bad gateway</html>`},
		{wire.MediaProblem, `not json`},
		{wire.MediaJSON, `{"clusters": []}`},
	}
	for _, tt := range tests {
		h := http.Header{"Content-Type": {tt.contentType}}
		if p, ok := Parse(h, []byte(tt.body)); ok {
			t.Errorf("Parse(%s, %q) = %+v, want false", tt.contentType, tt.body, p)
		}
	}
}
