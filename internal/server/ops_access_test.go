package server_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
)

// TestIntegrationOperatorPagesOffTheAPIAddress: by default the status page
// and /metrics are not served on the API's address, to anyone: not without
// a token, not with an API token, and not to a client on the same host (a
// reverse proxy there makes every request local). /healthz and /readyz stay
// open there and say nothing but their checks.
func TestIntegrationOperatorPagesOffTheAPIAddress(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{})
	token := smek.Token("ci", smektest.TokenOptions{})
	for _, path := range []string{"/", "/metrics"} {
		for _, tok := range []string{"", token} {
			status, b := call(t, "GET", smek.URL+path, tok, "", "application/json")
			problemOf(t, status, b, 404, "not-found")
		}
	}
	status, b := call(t, "GET", smek.URL+"/healthz", "", "", "")
	if status != 200 || string(b) != "{\"status\":\"ok\"}\n" {
		t.Errorf("/healthz: %d %q, want 200 {\"status\":\"ok\"}", status, b)
	}
	<-smek.Pool.Recovered()
	status, b = call(t, "GET", smek.URL+"/readyz", "", "", "")
	var checks map[string]string
	if err := json.Unmarshal(b, &checks); err != nil {
		t.Fatalf("/readyz: %s: %v", b, err)
	}
	if keys := slices.Sorted(maps.Keys(checks)); status != 200 || !slices.Equal(keys, []string{"backend", "database"}) {
		t.Errorf("/readyz: %d %s, want 200 with the backend and database checks only", status, b)
	}
}

// TestIntegrationOperatorToken: with an ops token the status page and
// /metrics on the ops address answer only requests that bear it, and the
// API's address still does not serve them.
func TestIntegrationOperatorToken(t *testing.T) {
	const opsToken = "ops-0123456789abcdef"
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.OpsAddr = "127.0.0.1:0"
		c.OpsToken = opsToken
	}})
	apiToken := smek.Token("ci", smektest.TokenOptions{})
	for _, path := range []string{"/", "/metrics"} {
		for _, tok := range []string{"", apiToken, opsToken + "x"} {
			status, b := call(t, "GET", smek.OpsURL()+path, tok, "", "application/json")
			problemOf(t, status, b, 401, "unauthorized")
		}
		if status, b := call(t, "GET", smek.OpsURL()+path, opsToken, "", ""); status != 200 || len(b) == 0 {
			t.Errorf("%s with the ops token: %d %.100s", path, status, b)
		}
		status, b := call(t, "GET", smek.URL+path, opsToken, "", "application/json")
		problemOf(t, status, b, 404, "not-found")
	}
}
