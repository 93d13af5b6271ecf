package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestMetricsAfterCreateAndStop scrapes /metrics after a create/stop cycle.
func TestMetricsAfterCreateAndStop(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) {
		c.OpsAddr = "127.0.0.1:0"
		c.Prices = map[string]float64{"ccx33": 0.5}
	}})
	token := smek.Token("metered", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{}`)
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, "")
	status, body := call(t, "GET", smek.OpsURL()+"/metrics", "", "", "")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	text := string(body)
	for _, want := range []string{
		`smek_cluster_operations_total{op="create",outcome="ok"} 1`,
		`smek_cluster_operations_total{op="stop",outcome="ok"} 1`,
		`smek_clusters{state="stopped"} 1`,
		`smek_claim_duration_seconds_count{pool="warm"} 1`,
		`smek_pool_cost_scrape_ok 1`,
		`smek_pool_server_hours{category="stopped",flavor="1.36.3/1-mid/baseline"}`,
		`smek_pool_cost_rate_euros_per_hour{flavor="1.36.3/1-mid/baseline"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The prices the metrics use are recorded for `pool status`: the
	// built-in list (the local backend reads no live prices) under the
	// operator's.
	rec, ok, err := smek.DB.RecordedCostModel(context.Background())
	if err != nil || !ok || rec.Source != "built-in list prices + the operator's prices" || rec.Model.Hourly["ccx33"] != 0.5 || rec.Model.Hourly["cx22"] != 0.006 {
		t.Errorf("recorded cost model: %+v, %v, %v", rec, ok, err)
	}
	// The status page shows the pool of the default version.
	status, page := call(t, "GET", smek.OpsURL()+"/", "", "", "text/html")
	if status != 200 || !strings.Contains(string(page), "1.36.3") {
		t.Errorf("status page: status %d, shows the pool flavor: %t", status, strings.Contains(string(page), "1.36.3"))
	}
}
