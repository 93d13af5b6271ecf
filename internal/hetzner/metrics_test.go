package hetzner

import "github.com/smek/action/internal/metrics"

// The server counts the backend's API calls with its metrics registry.
var _ Metrics = (*metrics.Metrics)(nil)
