package metrics

import (
	"net/http"
	"strconv"
	"strings"
)

// BackendTransport wraps the HTTP transport of a backend's API client (for
// Hetzner: hcloud.WithHTTPClient(&http.Client{Transport: ...})). It counts
// every call by operation and result and records the RateLimit-Remaining
// header of each answer.
//
// The operation is the method and the path with numeric segments replaced
// by {id} ("POST /v1/servers/{id}/actions/rebuild"), so that the label set
// stays bounded. Results: "ok" (2xx/3xx), "rate_limited" (429),
// "client_error" (other 4xx), "server_error" (5xx), "error" (no answer).
func (m *Metrics) BackendTransport(backend string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := next.RoundTrip(r)
		op := r.Method + " " + pathTemplate(r.URL.Path)
		if err != nil {
			m.BackendCall(backend, op, "error")
			return res, err
		}
		m.BackendCall(backend, op, resultOf(res.StatusCode))
		if v := res.Header.Get("RateLimit-Remaining"); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				m.RateLimitRemaining(backend, n)
			}
		}
		return res, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func resultOf(code int) string {
	switch {
	case code == http.StatusTooManyRequests:
		return "rate_limited"
	case code >= 500:
		return "server_error"
	case code >= 400:
		return "client_error"
	}
	return "ok"
}

// pathTemplate replaces the numeric segments of path by {id}.
func pathTemplate(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}
