package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/metrics"
	"github.com/smek/action/internal/notify"
	"github.com/smek/action/internal/sqlite"
)

// The packages that report metrics declare what they need; *Metrics fits.
var (
	_ lifecycle.Metrics = (*metrics.Metrics)(nil)
	_ notify.Metrics    = (*metrics.Metrics)(nil)
	_ auth.OIDCMetrics  = (*metrics.Metrics)(nil)
	_ metrics.Store     = (*sqlite.DB)(nil)
)

func TestCountersAndHistograms(t *testing.T) {
	m := metrics.New(metrics.Options{})

	m.ObserveClaim(true, 300*time.Millisecond)
	m.ObserveClaim(true, 700*time.Millisecond)
	m.ObserveClaim(false, 45*time.Second)
	m.PoolEmptyWait()
	m.ClusterOp("create", "ok")
	m.ClusterOp("create", "ok")
	m.ClusterOp("stop", string(cluster.ECONFLICT))
	m.ClusterOp("start", "ok")
	m.ClusterOp("terminate", "ok")
	m.TTLExpiry("stopped")
	m.TTLExpiry("terminated")
	m.TTLExpiry("terminated")
	m.WebhookDelivery("workflow_run", "handled")
	m.WebhookDelivery("ping", "ignored")
	m.BackendCall("hetzner", "server.rebuild", "ok")
	m.BackendCall("hetzner", "server.rebuild", "rate_limited")
	m.RateLimitRemaining("hetzner", 3542)
	m.RateLimitRemaining("hetzner", 3541)
	m.Mail("started", "sent")
	m.Mail("expiring", "failed")
	m.HTTPRequest("POST /create", 200, 40*time.Millisecond)
	m.JWKSFetch("https://token.actions.githubusercontent.com", "ok")
	m.JWKSFetch("https://token.actions.githubusercontent.com", "ok")
	m.JWKSFetch("https://gitlab.com", "error")

	tests := []struct {
		family string
		want   string
	}{
		{"smek_claim_duration_seconds", `
# HELP smek_claim_duration_seconds Time from a create request to a usable cluster, by whether a warm pool member was ready at once.
# TYPE smek_claim_duration_seconds histogram
smek_claim_duration_seconds_bucket{pool="cold",le="0.05"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="0.1"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="0.25"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="0.5"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="1"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="2"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="5"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="10"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="30"} 0
smek_claim_duration_seconds_bucket{pool="cold",le="60"} 1
smek_claim_duration_seconds_bucket{pool="cold",le="120"} 1
smek_claim_duration_seconds_bucket{pool="cold",le="300"} 1
smek_claim_duration_seconds_bucket{pool="cold",le="600"} 1
smek_claim_duration_seconds_bucket{pool="cold",le="+Inf"} 1
smek_claim_duration_seconds_sum{pool="cold"} 45
smek_claim_duration_seconds_count{pool="cold"} 1
smek_claim_duration_seconds_bucket{pool="warm",le="0.05"} 0
smek_claim_duration_seconds_bucket{pool="warm",le="0.1"} 0
smek_claim_duration_seconds_bucket{pool="warm",le="0.25"} 0
smek_claim_duration_seconds_bucket{pool="warm",le="0.5"} 1
smek_claim_duration_seconds_bucket{pool="warm",le="1"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="2"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="5"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="10"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="30"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="60"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="120"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="300"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="600"} 2
smek_claim_duration_seconds_bucket{pool="warm",le="+Inf"} 2
smek_claim_duration_seconds_sum{pool="warm"} 1
smek_claim_duration_seconds_count{pool="warm"} 2
`},
		{"smek_pool_empty_waits_total", `
# HELP smek_pool_empty_waits_total Create requests that found no ready pool member and had to wait.
# TYPE smek_pool_empty_waits_total counter
smek_pool_empty_waits_total 1
`},
		{"smek_cluster_operations_total", `
# HELP smek_cluster_operations_total Cluster operations (create, stop, start, terminate, extend, and lost: a running cluster the health check gave up) by outcome (ok, failed, or an error code).
# TYPE smek_cluster_operations_total counter
smek_cluster_operations_total{op="create",outcome="ok"} 2
smek_cluster_operations_total{op="start",outcome="ok"} 1
smek_cluster_operations_total{op="stop",outcome="conflict"} 1
smek_cluster_operations_total{op="terminate",outcome="ok"} 1
`},
		{"smek_ttl_expiries_total", `
# HELP smek_ttl_expiries_total Clusters that reached their deadline, by what the sweeper did (stopped or terminated).
# TYPE smek_ttl_expiries_total counter
smek_ttl_expiries_total{action="stopped"} 1
smek_ttl_expiries_total{action="terminated"} 2
`},
		{"smek_webhook_deliveries_total", `
# HELP smek_webhook_deliveries_total GitHub webhook deliveries by event and result.
# TYPE smek_webhook_deliveries_total counter
smek_webhook_deliveries_total{event="ping",result="ignored"} 1
smek_webhook_deliveries_total{event="workflow_run",result="handled"} 1
`},
		{"smek_backend_api_calls_total", `
# HELP smek_backend_api_calls_total Calls to a backend's API (e.g. Hetzner Cloud) by operation and result.
# TYPE smek_backend_api_calls_total counter
smek_backend_api_calls_total{backend="hetzner",operation="server.rebuild",result="ok"} 1
smek_backend_api_calls_total{backend="hetzner",operation="server.rebuild",result="rate_limited"} 1
`},
		{"smek_backend_rate_limit_remaining", `
# HELP smek_backend_rate_limit_remaining Requests left in the backend API's rate-limit window, as its last answer said.
# TYPE smek_backend_rate_limit_remaining gauge
smek_backend_rate_limit_remaining{backend="hetzner"} 3541
`},
		{"smek_mail_messages_total", `
# HELP smek_mail_messages_total Notification mails by kind and result (sent, retried, failed, dropped).
# TYPE smek_mail_messages_total counter
smek_mail_messages_total{kind="expiring",result="failed"} 1
smek_mail_messages_total{kind="started",result="sent"} 1
`},
		{"smek_http_requests_total", `
# HELP smek_http_requests_total HTTP requests by route pattern and status code.
# TYPE smek_http_requests_total counter
smek_http_requests_total{code="200",route="POST /create"} 1
`},
		{"smek_oidc_jwks_fetches_total", `
# HELP smek_oidc_jwks_fetches_total Fetches of a CI OIDC issuer's signing keys (JWKS) by issuer and result (ok or error).
# TYPE smek_oidc_jwks_fetches_total counter
smek_oidc_jwks_fetches_total{issuer="https://gitlab.com",result="error"} 1
smek_oidc_jwks_fetches_total{issuer="https://token.actions.githubusercontent.com",result="ok"} 2
`},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tt.want), tt.family); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestStateGaugesFromSQLite fills a real database and scrapes the handler:
// the cluster and pool gauges must say what the tables say.
func TestStateGaugesFromSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acct, err := db.EnsureAccount(ctx, "alice", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, status := range []string{"running", "running", "stopped", "terminated"} {
		exec(`INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster,
			minutes_to_live, notification_email, created_at, expires_at) VALUES (?, ?, ?, '1.27.4', '1-mid', 0, 1, 60, '', 1, 2)`,
			"c-aaaaa"+string(rune('0'+i)), acct.ID, status)
	}
	for i, s := range []struct {
		priv  int
		state string
	}{{0, "ready"}, {0, "ready"}, {0, "claimed"}, {1, "bootstrapping"}, {0, "deleted"}} {
		exec(`INSERT INTO servers (id, backend, k8s_version, size, privileged, state, created_at, updated_at)
			VALUES (?, 'local', '1.27.4', '1-mid', ?, ?, 1, 1)`, "srv-"+string(rune('a'+i)), s.priv, s.state)
	}

	m := metrics.New(metrics.Options{Store: db})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200:\n%s", res.StatusCode, body)
	}
	for _, want := range []string{
		`smek_clusters{state="running"} 2`,
		`smek_clusters{state="stopped"} 1`,
		`smek_clusters{state="terminated"} 1`,
		`smek_clusters{state="pending"} 0`,
		`smek_pool_servers{flavor="1.27.4/1-mid/baseline",k8s_version="1.27.4",privileged="false",size="1-mid",state="ready"} 2`,
		`smek_pool_servers{flavor="1.27.4/1-mid/baseline",k8s_version="1.27.4",privileged="false",size="1-mid",state="claimed"} 1`,
		`smek_pool_servers{flavor="1.27.4/1-mid/privileged",k8s_version="1.27.4",privileged="true",size="1-mid",state="bootstrapping"} 1`,
		`smek_state_scrape_ok 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), `state="deleted"`) {
		t.Errorf("scrape shows deleted pool members:\n%s", body)
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_clusters Clusters by state.
# TYPE smek_clusters gauge
smek_clusters{state="failed"} 0
smek_clusters{state="pending"} 0
smek_clusters{state="running"} 2
smek_clusters{state="stopped"} 1
smek_clusters{state="terminated"} 1
smek_clusters{state="terminating"} 0
`), "smek_clusters"); err != nil {
		t.Error(err)
	}
}

type brokenStore struct{}

func (brokenStore) ClusterCounts(context.Context) (map[cluster.Status]int, error) {
	return nil, errors.New("database is locked")
}

func (brokenStore) MemberCounts(context.Context) (map[cluster.Flavor]map[string]int, error) {
	return nil, errors.New("database is locked")
}

func TestStateGaugesReportStoreFailure(t *testing.T) {
	m := metrics.New(metrics.Options{Store: brokenStore{}})
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_state_scrape_ok 1 when the cluster and pool counts could be read from the database.
# TYPE smek_state_scrape_ok gauge
smek_state_scrape_ok 0
`), "smek_state_scrape_ok", "smek_clusters"); err != nil {
		t.Error(err)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveClaim(true, time.Second)
	m.PoolEmptyWait()
	m.ClusterOp("create", "ok")
	m.TTLExpiry("stopped")
	m.WebhookDelivery("ping", "ignored")
	m.BackendCall("hetzner", "x", "ok")
	m.RateLimitRemaining("hetzner", 1)
	m.Mail("started", "sent")
	m.HTTPRequest("GET /", 200, time.Millisecond)
}
