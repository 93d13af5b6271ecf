package server_test

// The integration tests prove features through the server exactly as
// server.Start wires it (internal/smektest): the embedded GitHub App and
// the standalone App's delivery route, notification mail, CI OIDC tokens,
// /readyz and the operator's address. They are named TestIntegration...:
//
//	go test -race -run Integration ./internal/server/

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
)

// waitFor receives from ch, failing the test after timeout. The timeout
// only bounds a wait on a real signal; nothing passes because time went by.
func waitFor[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("no %s within %s", what, timeout)
		var zero T
		return zero
	}
}

// TestIntegrationReadyzAndOpsAddress: /readyz reports the database and the
// backend; with OpsAddr set the status page and /metrics are served there
// and not on the API's address, which keeps serving the API.
func TestIntegrationReadyzAndOpsAddress(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.OpsAddr = "127.0.0.1:0"
	}})
	ops := smek.OpsURL()
	if ops == "" || ops == smek.URL {
		t.Fatalf("ops URL %q: want an address of its own (API on %s)", ops, smek.URL)
	}

	// Ready: the database answers and the pool has taken over the backend.
	<-smek.Pool.Recovered()
	status, body := call(t, "GET", smek.URL+"/readyz", "", "", "")
	var checks map[string]string
	if err := json.Unmarshal(body, &checks); err != nil {
		t.Fatalf("/readyz: %s: %v", body, err)
	}
	if status != 200 || checks["database"] != "ok" || checks["backend"] != "ok" {
		t.Fatalf("/readyz: %d %v, want 200 with database and backend ok", status, checks)
	}

	// The operator's pages are on the ops address only.
	status, page := call(t, "GET", ops+"/", "", "", "text/html")
	if status != 200 || !strings.Contains(string(page), "<html") {
		t.Errorf("status page on the ops address: %d %.200s", status, page)
	}
	status, metrics := call(t, "GET", ops+"/metrics", "", "", "")
	if status != 200 || !strings.Contains(string(metrics), "smek_http_requests_total") {
		t.Errorf("/metrics on the ops address: %d %.200s", status, metrics)
	}
	for _, path := range []string{"/", "/metrics"} {
		status, b := call(t, "GET", smek.URL+path, "", "", "application/json")
		problemOf(t, status, b, 404, "not-found")
	}
	// The API address still serves the API.
	token := smek.Token("ops", smektest.TokenOptions{})
	mustJSON[map[string]any](t, 200, "GET", smek.URL+"/v1/clusters", token, "")

	// A database that no longer answers makes the server unready.
	if err := smek.DB.Close(); err != nil {
		t.Fatal(err)
	}
	status, body = call(t, "GET", smek.URL+"/readyz", "", "", "")
	checks = nil
	if err := json.Unmarshal(body, &checks); err != nil {
		t.Fatalf("/readyz: %s: %v", body, err)
	}
	if status != 503 || checks["database"] != "failing" || checks["backend"] != "ok" {
		t.Errorf("/readyz with the database closed: %d %v, want 503 with database failing", status, checks)
	}
}
