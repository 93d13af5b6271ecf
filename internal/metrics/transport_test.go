package metrics_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smek/action/internal/metrics"
)

// TestBackendTransport drives a real HTTP client through the transport
// against a server that answers like the Hetzner Cloud API: a
// RateLimit-Remaining header on every answer, 429 when the budget is gone.
func TestBackendTransport(t *testing.T) {
	remaining := 3
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remaining--
		w.Header().Set("RateLimit-Limit", "3600")
		w.Header().Set("RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
		switch {
		case remaining < 0:
			w.WriteHeader(http.StatusTooManyRequests)
		case strings.HasSuffix(r.URL.Path, "/404"):
			w.WriteHeader(http.StatusNotFound)
		default:
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()

	m := metrics.New(metrics.Options{})
	client := &http.Client{Transport: m.BackendTransport("hetzner", nil)}
	for _, req := range []struct{ method, path string }{
		{"POST", "/v1/servers/4711/actions/rebuild"},
		{"GET", "/v1/servers/404"},
		{"POST", "/v1/servers/815/actions/rebuild"},
		{"GET", "/v1/servers"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_backend_api_calls_total Calls to a backend's API (e.g. Hetzner Cloud) by operation and result.
# TYPE smek_backend_api_calls_total counter
smek_backend_api_calls_total{backend="hetzner",operation="GET /v1/servers",result="rate_limited"} 1
smek_backend_api_calls_total{backend="hetzner",operation="GET /v1/servers/{id}",result="client_error"} 1
smek_backend_api_calls_total{backend="hetzner",operation="POST /v1/servers/{id}/actions/rebuild",result="ok"} 2
# HELP smek_backend_rate_limit_remaining Requests left in the backend API's rate-limit window, as its last answer said.
# TYPE smek_backend_rate_limit_remaining gauge
smek_backend_rate_limit_remaining{backend="hetzner"} 0
`), "smek_backend_api_calls_total", "smek_backend_rate_limit_remaining"); err != nil {
		t.Error(err)
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused")
}

func TestBackendTransportCountsErrors(t *testing.T) {
	m := metrics.New(metrics.Options{})
	client := &http.Client{Transport: m.BackendTransport("hetzner", failingTransport{})}
	if _, err := client.Get("http://api.invalid/v1/servers/1"); err == nil {
		t.Fatal("got no error")
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_backend_api_calls_total Calls to a backend's API (e.g. Hetzner Cloud) by operation and result.
# TYPE smek_backend_api_calls_total counter
smek_backend_api_calls_total{backend="hetzner",operation="GET /v1/servers/{id}",result="error"} 1
`), "smek_backend_api_calls_total"); err != nil {
		t.Error(err)
	}
}
