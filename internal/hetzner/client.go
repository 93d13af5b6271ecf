package hetzner

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/metrics"
)

// NewClient returns the hcloud client SMEK uses: endpoint (hcloud.Endpoint
// when empty) and token; hcloud-go's own retries off, because the
// backend's retry layer already retries 429, 5xx and network errors with
// its own backoff and budget (both together would multiply the attempts);
// every call counted by m (nil: not counted) together with the
// RateLimit-Remaining of its answer.
func NewClient(endpoint, token string, m *metrics.Metrics) *hcloud.Client {
	if endpoint == "" {
		endpoint = hcloud.Endpoint
	}
	hc := &http.Client{Transport: m.BackendTransport("hetzner", nil), Timeout: time.Minute}
	return hcloud.NewClient(
		hcloud.WithEndpoint(endpoint), hcloud.WithToken(token), hcloud.WithApplication("smek", ""),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}), hcloud.WithHTTPClient(hc),
	)
}
