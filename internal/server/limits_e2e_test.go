package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/sqlite"
	"github.com/smek/action/internal/wire"
)

// Issue 12: with max-clusters 1, create and stop three times, then start
// the three at once over HTTP: one runs, the other two get the limit's 429.
func TestIntegrationConcurrentStartsHonourTheLimit(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("one", smektest.TokenOptions{MaxClusters: 1})
	var ids []string
	for range 3 {
		c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"keep-cluster": true}`)
		mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, "")
		ids = append(ids, c.ClusterID)
	}

	type answer struct {
		status int
		body   []byte
	}
	answers := make([]answer, len(ids))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-start
			answers[i].status, answers[i].body = call(t, "POST", smek.URL+"/v1/clusters/"+id+"/start", token, "", "application/json")
		})
	}
	close(start)
	wg.Wait()
	started := 0
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			started++
		case http.StatusTooManyRequests:
			p := problemOf(t, a.status, a.body, http.StatusTooManyRequests, "limit")
			if !strings.Contains(p.Detail, "limit of 1 cluster") {
				t.Errorf("refused start of %s: detail %q does not name the limit", ids[i], p.Detail)
			}
		default:
			t.Errorf("start of %s: %d %s", ids[i], a.status, a.body)
		}
	}
	if started != 1 {
		t.Errorf("got %d clusters started, want 1", started)
	}
	list := mustJSON[wire.ClusterList](t, 200, "GET", smek.URL+"/v1/clusters?status=running", token, "")
	if len(list.Clusters) != 1 {
		t.Errorf("got %d running clusters, want 1", len(list.Clusters))
	}
}

// max-clusters 0 suspends the account: creates (seed and /v1) and starts
// are a 403 "suspended" that names the limit; force-terminate still works.
func TestIntegrationSuspendedAccount(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("paused", smektest.TokenOptions{})
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"keep-cluster": true}`)
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, "")
	zero := 0
	if _, err := smek.DB.EnsureAccount(context.Background(), "paused", sqlite.AccountLimits{MaxClusters: &zero}); err != nil {
		t.Fatal(err)
	}

	for _, req := range []struct{ path, body string }{
		{"/create", `{"notification-email": "a@example.com"}`},
		{"/v1/clusters", `{}`},
		{"/start", `{"cluster-id": "` + c.ClusterID + `"}`},
		{"/v1/clusters/" + c.ClusterID + "/start", ""},
	} {
		status, b := call(t, "POST", smek.URL+req.path, token, req.body, "application/json")
		p := problemOf(t, status, b, http.StatusForbidden, "suspended")
		if !strings.Contains(p.Detail, "max-clusters") || !strings.Contains(p.Detail, "paused") {
			t.Errorf("POST %s: detail %q does not name the account and its max-clusters", req.path, p.Detail)
		}
	}
	got := mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/stop", token, `{"cluster-id": "`+c.ClusterID+`", "force-terminate": true}`)
	if got.ClusterStatus != "terminated" {
		t.Errorf("force-terminate of a suspended account's cluster: %s", got.ClusterStatus)
	}
}

// TestIntegrationStoppedLifetimeMail: a stopped cluster shows when it ends
// (stopped-expires-at, 168 h after the stop by default); a day before, its
// owner is mailed once; at that time it is terminated, and says so.
func TestIntegrationStoppedLifetimeMail(t *testing.T) {
	g := startSMTPGate(t)
	clk := newClock()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Clock: clk, Configure: func(c *server.Config) {
		c.SMTPURL = "smtp://" + g.addr + "?starttls=off"
		c.MailFrom = "smek@example.com"
		c.PublicURL = "https://smek.example.com"
	}})
	token := smek.Token("keeper", smektest.TokenOptions{})
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token,
		`{"notification-email": "dora@example.com", "keep-cluster": true}`)
	expectMail(t, g, "dora@example.com", c.ClusterID, "is running", "")
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, "")
	expectMail(t, g, "dora@example.com", c.ClusterID, "was stopped", "")

	v := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, "")
	if v.StoppedAt == nil || v.StoppedExpiresAt == nil || v.StoppedExpiresAt.Sub(*v.StoppedAt) != 168*time.Hour {
		t.Fatalf("stopped cluster: stopped-at %v, stopped-expires-at %v; want the latter 168h after the former", v.StoppedAt, v.StoppedExpiresAt)
	}

	clk.Advance(143 * time.Hour) // 25 hours left: no warning yet
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // 23 hours left
	for range 2 {              // a second sweep does not warn again
		if err := smek.Life.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	warning := expectMail(t, g, "dora@example.com", c.ClusterID, "will be terminated", "https://smek.example.com")
	if !strings.Contains(warning.Text, "https://smek.example.com/start") {
		t.Errorf("the warning does not tell how to start the cluster to keep it:\n%s", warning.Text)
	}

	clk.Advance(24 * time.Hour) // past the stopped lifetime
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next mail is the end, not a second warning.
	expectMail(t, g, "dora@example.com", c.ClusterID, "was terminated", "")
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "terminated" || got.StoppedExpiresAt != nil {
		t.Errorf("after the stopped lifetime: %+v, want terminated without a stopped deadline", got)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/events", token, "")
	if last := evs.Events[len(evs.Events)-1]; last.Type != "terminated" || last.Cause != "ttl" || !strings.Contains(last.Message, "168h") {
		t.Errorf("last event %+v, want terminated by ttl naming the stopped lifetime", last)
	}
}

// An account with max-stopped-clusters 0 may not stop a cluster: /stop and
// the /v1 stop answer 429 naming the limit, the cluster runs on, and
// force-terminate still ends it.
func TestIntegrationStoppedLimit(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("nokeep", smektest.TokenOptions{})
	zero := 0
	if _, err := smek.DB.EnsureAccount(context.Background(), "nokeep", sqlite.AccountLimits{MaxStoppedClusters: &zero}); err != nil {
		t.Fatal(err)
	}
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"keep-cluster": true}`)
	for _, req := range []struct{ path, body string }{
		{"/stop", `{"cluster-id": "` + c.ClusterID + `"}`},
		{"/v1/clusters/" + c.ClusterID + "/stop", ""},
	} {
		status, b := call(t, "POST", smek.URL+req.path, token, req.body, "application/json")
		if p := problemOf(t, status, b, http.StatusTooManyRequests, "limit"); !strings.Contains(p.Detail, "max-stopped-clusters") {
			t.Errorf("POST %s: detail %q does not name max-stopped-clusters", req.path, p.Detail)
		}
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "running" {
		t.Errorf("after refused stops: %s, want running", got.ClusterStatus)
	}
	got := mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/stop", token, `{"cluster-id": "`+c.ClusterID+`", "force-terminate": true}`)
	if got.ClusterStatus != "terminated" {
		t.Errorf("force-terminate: %s", got.ClusterStatus)
	}
}
