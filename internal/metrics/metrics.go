// Package metrics is SMEK's Prometheus instrumentation: one dedicated
// registry (never the global default one), the metric families the server
// exports at /metrics, and small methods that the lifecycle, pool, API,
// webhook, backend and mail code call to record what happened.
//
// A nil *Metrics is valid and records nothing, so that packages can take
// one optionally.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "smek"

// Metrics holds SMEK's metric families and the registry they live in.
type Metrics struct {
	reg *prometheus.Registry

	claim        *prometheus.HistogramVec
	poolEmpty    prometheus.Counter
	clusterOps   *prometheus.CounterVec
	ttlExpiries  *prometheus.CounterVec
	webhooks     *prometheus.CounterVec
	backendCalls *prometheus.CounterVec
	rateLimit    *prometheus.GaugeVec
	mail         *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	jwksFetches  *prometheus.CounterVec
}

// Options configure New.
type Options struct {
	// Store, when set, feeds the clusters-by-state and pool-members gauges
	// at every scrape.
	Store Store
	// Logger reports store errors during a scrape.
	Logger *slog.Logger
	// Runtime adds the Go runtime and process collectors.
	Runtime bool
}

// claimBuckets span a warm claim (well under a second) to a cold start that
// waited for a server to boot (minutes).
var claimBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}

// New creates the metric families on a fresh registry.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		claim: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "claim_duration_seconds",
			Help:    "Time from a create request to a usable cluster, by whether a warm pool member was ready at once.",
			Buckets: claimBuckets,
		}, []string{"pool"}),
		poolEmpty: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "pool_empty_waits_total",
			Help: "Create requests that found no ready pool member and had to wait.",
		}),
		clusterOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cluster_operations_total",
			Help: "Cluster operations (create, stop, start, terminate, extend, and lost: a running cluster the health check gave up) by outcome (ok, failed, or an error code).",
		}, []string{"op", "outcome"}),
		ttlExpiries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "ttl_expiries_total",
			Help: "Clusters that reached their deadline, by what the sweeper did (stopped or terminated).",
		}, []string{"action"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "GitHub webhook deliveries by event and result.",
		}, []string{"event", "result"}),
		backendCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "backend_api_calls_total",
			Help: "Calls to a backend's API (e.g. Hetzner Cloud) by operation and result.",
		}, []string{"backend", "operation", "result"}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "backend_rate_limit_remaining",
			Help: "Requests left in the backend API's rate-limit window, as its last answer said.",
		}, []string{"backend"}),
		mail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "mail_messages_total",
			Help: "Notification mails by kind and result (sent, retried, failed, dropped).",
		}, []string{"kind", "result"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request durations by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "oidc_jwks_fetches_total",
			Help: "Fetches of a CI OIDC issuer's signing keys (JWKS) by issuer and result (ok or error).",
		}, []string{"issuer", "result"}),
	}
	m.reg.MustRegister(m.claim, m.poolEmpty, m.clusterOps, m.ttlExpiries, m.webhooks,
		m.backendCalls, m.rateLimit, m.mail, m.httpRequests, m.httpDuration, m.jwksFetches)
	if opts.Store != nil {
		logger := opts.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		m.reg.MustRegister(newStateCollector(opts.Store, logger))
	}
	if opts.Runtime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format; mount it
// at GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveClaim records how long a create took from request to usable
// cluster; warm is true when a ready pool member was there at once.
func (m *Metrics) ObserveClaim(warm bool, d time.Duration) {
	if m == nil {
		return
	}
	pool := "cold"
	if warm {
		pool = "warm"
	}
	m.claim.WithLabelValues(pool).Observe(d.Seconds())
}

// PoolEmptyWait counts a create that found no ready pool member and had to
// wait. The pool_servers gauge tells which flavor ran dry.
func (m *Metrics) PoolEmptyWait() {
	if m == nil {
		return
	}
	m.poolEmpty.Inc()
}

// ClusterOp counts a cluster operation: op is "create", "stop", "start",
// "terminate", "extend", "diagnostics" or "lost" (the health check gave a running
// cluster up); outcome is "ok", "failed" for a lost cluster, or the error
// code (cluster.ErrorCode).
func (m *Metrics) ClusterOp(op, outcome string) {
	if m == nil {
		return
	}
	m.clusterOps.WithLabelValues(op, outcome).Inc()
}

// TTLExpiry counts a cluster that reached its deadline; action is what the
// sweeper did: "stopped" or "terminated".
func (m *Metrics) TTLExpiry(action string) {
	if m == nil {
		return
	}
	m.ttlExpiries.WithLabelValues(action).Inc()
}

// WebhookDelivery counts a GitHub webhook delivery by its event
// (X-GitHub-Event) and result ("handled", "ignored", "duplicate",
// "bad-signature", "error").
func (m *Metrics) WebhookDelivery(event, result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(event, result).Inc()
}

// BackendCall counts a call to a backend's API; result is "ok" or a short
// error class such as "not_found", "rate_limited" or "error".
func (m *Metrics) BackendCall(backend, operation, result string) {
	if m == nil {
		return
	}
	m.backendCalls.WithLabelValues(backend, operation, result).Inc()
}

// RateLimitRemaining records the backend's last reported number of requests
// left (Hetzner's RateLimit-Remaining header).
func (m *Metrics) RateLimitRemaining(backend string, remaining int) {
	if m == nil {
		return
	}
	m.rateLimit.WithLabelValues(backend).Set(float64(remaining))
}

// Mail counts a notification mail of kind ("started", "stopped",
// "terminated", "expiring") by result: "sent", "retried" (an attempt failed
// and will be retried), "failed" (given up) or "dropped" (queue full).
// It makes *Metrics a notify.Metrics.
func (m *Metrics) Mail(kind, result string) {
	if m == nil {
		return
	}
	m.mail.WithLabelValues(kind, result).Inc()
}

// HTTPRequest counts a served request by its ServeMux route pattern and
// status code.
func (m *Metrics) HTTPRequest(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// JWKSFetch counts a fetch of an OIDC issuer's keys; result is "ok" or
// "error". It makes *Metrics an auth.OIDCMetrics. Forged tokens cannot
// drive it past one fetch per minute per issuer: a steady rise is an
// issuer that keeps failing, or rotating keys.
func (m *Metrics) JWKSFetch(issuer, result string) {
	if m == nil {
		return
	}
	m.jwksFetches.WithLabelValues(issuer, result).Inc()
}
