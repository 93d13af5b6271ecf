package hetzner

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Metrics counts the backend's API calls; the server's *metrics.Metrics
// implements it.
type Metrics interface {
	// BackendTransport wraps next so that every call through it is counted.
	BackendTransport(backend string, next http.RoundTripper) http.RoundTripper
}

// NewClient returns the hcloud client SMEK uses: endpoint (hcloud.Endpoint
// when empty) and token; hcloud-go's own retries off, because the
// backend's retry layer already retries 429, 5xx and network errors with
// its own backoff and budget (both together would multiply the attempts);
// every call counted by m (nil: not counted) together with the
// RateLimit-Remaining of its answer.
func NewClient(endpoint, token string, m Metrics) *hcloud.Client {
	if endpoint == "" {
		endpoint = hcloud.Endpoint
	}
	var rt http.RoundTripper = http.DefaultTransport
	if m != nil {
		rt = m.BackendTransport("hetzner", rt)
	}
	hc := &http.Client{Transport: rt, Timeout: time.Minute}
	return hcloud.NewClient(
		hcloud.WithEndpoint(endpoint), hcloud.WithToken(token), hcloud.WithApplication("smek", ""),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}), hcloud.WithHTTPClient(hc),
	)
}
