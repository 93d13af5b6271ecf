package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/httpserver"
	"github.com/smek/action/internal/httpserver/httpservertest"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// shortTimeouts are the listeners' timeouts in these tests: far shorter
// than a cold create, which boots a control plane while its request waits.
var shortTimeouts = httpserver.Timeouts{Header: 300 * time.Millisecond, Body: 300 * time.Millisecond, Idle: 300 * time.Millisecond}

// slowClient sends head, then rest a byte at a time, four per header
// deadline, to the server at base until it closes the connection; ask
// must be served meanwhile.
func slowClient(t *testing.T, base, head, rest string, ask func() error) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	lived := httpservertest.SlowClient(t, u.Host, head, rest, shortTimeouts.Header/4, ask)
	t.Logf("cut after %v", lived.Round(time.Millisecond))
}

// TestSlowClientsAreCutOnEveryListener sends heads and bodies a byte at a
// time to the API, the webhook and the ops address: each connection is
// closed within its deadline while other clients are served.
func TestSlowClientsAreCutOnEveryListener(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.HTTPTimeouts = shortTimeouts
		c.OpsAddr = "127.0.0.1:0"
		c.GitHubWebhookSecret = ghSecret
	}})
	token := smek.Token("patient", smektest.TokenOptions{})
	versions := func() error {
		status, b := call(t, "GET", smek.URL+"/v1/versions", token, "", "application/json")
		if status != 200 {
			return fmt.Errorf("GET /v1/versions: %d %s", status, b)
		}
		return nil
	}
	metrics := func() error {
		status, _ := call(t, "GET", smek.OpsURL()+"/metrics", "", "", "")
		if status != 200 {
			return fmt.Errorf("GET /metrics: %d", status)
		}
		return nil
	}
	tests := []struct {
		name, base, head, rest string
		ask                    func() error
	}{
		{"API head", smek.URL, "GET /v1/clusters HTTP/1.1\r\nHost: x\r\n", "Authorization: Bearer " + token + "\r\n", versions},
		{"API body", smek.URL, "POST /v1/clusters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
			"\r\nContent-Length: 1000\r\n\r\n", `{"wait": "1m"}`, versions},
		{"webhook body", smek.URL, "POST " + githubapp.WebhookPath + " HTTP/1.1\r\nHost: x\r\n" + githubapp.EventHeader +
			": workflow_run\r\n" + githubapp.DeliveryHeader + ": slow-1\r\n" + githubapp.SignatureHeader + ": sha256=" +
			strings.Repeat("0", 64) + "\r\nContent-Length: 10000\r\n\r\n", `{"action": "completed"}`, versions},
		{"ops head", smek.OpsURL(), "GET /metrics HTTP/1.1\r\n", "Host: x\r\n", metrics},
		{"ops body", smek.OpsURL(), "POST /v1/clusters HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", "{}", metrics},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { slowClient(t, tt.base, tt.head, tt.rest, tt.ask) })
	}
}

// TestLongCreateOutlivesShortTimeouts: a create that waits seconds for a
// control plane to boot (no warm pool) answers, although every listener
// deadline is a fraction of that.
func TestLongCreateOutlivesShortTimeouts(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) { c.HTTPTimeouts = shortTimeouts }})
	token := smek.Token("patient", smektest.TokenOptions{})
	start := time.Now()
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "5m", "keep-cluster": false}`)
	took := time.Since(start)
	t.Logf("a cold create answered after %v with listener deadlines of %v", took.Round(time.Millisecond), shortTimeouts.Header+shortTimeouts.Body)
	if c.Timings.Warm || c.Kubeconfig == "" {
		t.Errorf("create: warm %t, kubeconfig %d bytes; want a cold create with a kubeconfig", c.Timings.Warm, len(c.Kubeconfig))
	}
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/terminate", token, "")
}

// TestWebhookFloodLeavesTheAPIAnswering floods the embedded webhook with
// unauthenticated bodies — unsigned, over the cap, under it with a wrong
// signature — while a user lists clusters: every listing succeeds, and
// every delivery is refused cleanly.
func TestWebhookFloodLeavesTheAPIAnswering(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) { c.GitHubWebhookSecret = ghSecret }})
	token := smek.Token("user", smektest.TokenOptions{})
	hook := smek.URL + githubapp.WebhookPath
	wrong := "sha256=" + strings.Repeat("0", 64)
	type attempt struct {
		signature string
		size      int
	}
	kinds := []attempt{{"", 24 << 20}, {wrong, 24 << 20}, {wrong, githubapp.MaxPayload}, {wrong, 64 << 10}}
	var mu sync.Mutex
	answers := map[int]int{}
	var wg sync.WaitGroup
	for c := range 12 {
		wg.Go(func() {
			for i := range 4 {
				k := kinds[(c+i)%len(kinds)]
				req, _ := http.NewRequest("POST", hook, io.LimitReader(zeros{}, int64(k.size)))
				req.ContentLength = int64(k.size)
				req.Header.Set(githubapp.EventHeader, "workflow_run")
				req.Header.Set(githubapp.DeliveryHeader, fmt.Sprintf("flood-%d-%d", c, i))
				if k.signature != "" {
					req.Header.Set(githubapp.SignatureHeader, k.signature)
				}
				status := 0
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				answers[status]++
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	listings := 0
	for flooding := true; flooding; {
		select {
		case <-done:
			flooding = false
		default:
			mustJSON[wire.ClusterList](t, 200, "GET", smek.URL+"/v1/clusters", token, "")
			listings++
		}
	}
	t.Logf("webhook answers %v; %d listings answered during the flood", answers, listings)
	for status, n := range answers {
		if status != 401 && status != 413 && status != 503 {
			t.Errorf("%d deliveries answered %d, want 401, 413 or 503", n, status)
		}
	}
}

// zeros is an endless body that costs the client no memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
