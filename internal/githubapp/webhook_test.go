package githubapp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/wire"
)

func TestWebhookRefusesBadSignatures(t *testing.T) {
	h := newHarness(t)
	body := fixture(t, "workflow_run.completed.json")
	sha1 := "sha1=" + strings.Repeat("ab", 20)
	tests := []struct {
		name, signature string
		body            []byte
	}{
		{"missing", "-", body},
		{"sha1 only", sha1, body},
		{"no prefix", strings.TrimPrefix(Sign([]byte(testSecret), body), "sha256="), body},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), body},
		{"short", "sha256=abcd", body},
		{"other secret", Sign([]byte("another secret"), body), body},
		{"body changed", Sign([]byte(testSecret), body), append(bytes.Clone(body), ' ')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := h.send(delivery{event: "workflow_run", body: tt.body, signature: tt.signature})
			if status != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", status, answer)
			}
			var p wire.Problem
			if err := json.Unmarshal(answer, &p); err != nil || p.Code != "unauthorized" || p.Field != SignatureHeader {
				t.Fatalf("got problem %s (%v), want code unauthorized naming %s", answer, err, SignatureHeader)
			}
		})
	}
	if n := h.clusters.count("List"); n != 0 {
		t.Fatalf("refused deliveries did work: %d List calls", n)
	}
}

func TestWebhookUnknownEventIsIgnored(t *testing.T) {
	h := newHarness(t)
	status, answer := h.send(delivery{event: "star", id: "star-1", body: []byte(`{"action":"created"}`)})
	if status != http.StatusOK || !strings.Contains(string(answer), `"ignored"`) {
		t.Fatalf("got %d %s, want 200 ignored", status, answer)
	}
	// Ignored deliveries are not recorded: the id is still new.
	if d, ok := h.deliveries.get("star-1"); ok {
		t.Fatalf("ignored delivery was recorded: %+v", d)
	}
}

func TestWebhookRefusesMalformedPayloads(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, event string
		body        []byte
		field       string
	}{
		{"not json", "workflow_run", []byte("action=completed"), "body"},
		{"truncated", "pull_request", fixture(t, "pull_request.closed.json")[:500], "body"},
		{"wrong type", "workflow_run", []byte(`{"action":"completed","workflow_run":{"id":"twelve"}}`), "body"},
		{"no run id", "workflow_run", variant(t, "workflow_run.completed.json", func(m map[string]any) {
			delete(obj(m, "workflow_run"), "id")
		}), "workflow_run.id"},
		{"no repository", "workflow_job", variant(t, "workflow_job.completed.json", func(m map[string]any) {
			delete(m, "repository")
		}), "repository.id"},
		{"comment without comment", "issue_comment", []byte(`{"action":"created","issue":{"number":1,"pull_request":{}}}`), "comment"},
		{"ping not json", "ping", []byte("{"), "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := h.send(delivery{event: tt.event, body: tt.body})
			var p wire.Problem
			json.Unmarshal(answer, &p)
			if status != http.StatusBadRequest || p.Code != "invalid" || p.Field != tt.field {
				t.Fatalf("got %d %s, want 400 invalid naming %s", status, answer, tt.field)
			}
		})
	}
}

func TestWebhookRefusesMissingHeadersAndLargeBodies(t *testing.T) {
	h := newHarness(t)
	body := fixture(t, "ping.json")
	req := func(mod func(r *http.Request)) int {
		r, _ := http.NewRequest(http.MethodPost, h.srv.URL+WebhookPath, bytes.NewReader(body))
		r.Header.Set(EventHeader, "ping")
		r.Header.Set(DeliveryHeader, "d-1")
		r.Header.Set(SignatureHeader, Sign([]byte(testSecret), body))
		mod(r)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := req(func(r *http.Request) { r.Header.Del(EventHeader) }); got != http.StatusBadRequest {
		t.Errorf("no event header: got %d, want 400", got)
	}
	if got := req(func(r *http.Request) { r.Header.Del(DeliveryHeader) }); got != http.StatusBadRequest {
		t.Errorf("no delivery header: got %d, want 400", got)
	}
	if got := req(func(r *http.Request) { r.Header.Set(DeliveryHeader, strings.Repeat("x", 200)) }); got != http.StatusBadRequest {
		t.Errorf("long delivery header: got %d, want 400", got)
	}
	if got := req(func(r *http.Request) { r.Method = http.MethodGet }); got != http.StatusMethodNotAllowed {
		t.Errorf("GET: got %d, want 405", got)
	}
	big := bytes.Repeat([]byte(" "), MaxPayload+1)
	status, _ := h.send(delivery{event: "ping", body: big})
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over %d bytes: got %d, want 413", MaxPayload, status)
	}
}

func TestWebhookAnswersPing(t *testing.T) {
	h := newHarness(t)
	status, answer := h.send(delivery{event: "ping", body: fixture(t, "ping.json")})
	if status != http.StatusOK || !strings.Contains(string(answer), `"pong"`) {
		t.Fatalf("got %d %s, want 200 pong", status, answer)
	}
}

func TestWebhookReplayedDeliveryIsANoOp(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(runCluster("c-run001", false))
	d := delivery{event: "workflow_run", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: fixture(t, "workflow_run.completed.json")}
	if status, answer := h.send(d); status != http.StatusAccepted {
		t.Fatalf("first delivery: got %d %s, want 202", status, answer)
	}
	if r := h.wait(); r.Err != nil {
		t.Fatalf("work failed: %v", r.Err)
	}
	if got := h.clusters.count("Terminate"); got != 1 {
		t.Fatalf("Terminate calls: got %d, want 1", got)
	}

	status, answer := h.send(d)
	if status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) {
		t.Fatalf("replay: got %d %s, want 200 duplicate", status, answer)
	}

	// A restart: a new App on the same store still knows the id (./e2e
	// does this on a real SQLite file).
	h.start()
	status, answer = h.send(d)
	if status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) {
		t.Fatalf("replay after restart: got %d %s, want 200 duplicate", status, answer)
	}
	if got := h.clusters.count("List"); got != 1 {
		t.Fatalf("List calls after replays: got %d, want 1", got)
	}
}

func TestWebhookQueueFullIs503(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.QueueSize = 1 })
	h.clusters.failNext("List", errUnavailable) // the first delivery waits for its retry
	if status, _ := h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatalf("first delivery: got %d, want 202", status)
	}
	retry := h.nextRetry() // it holds the only slot, waiting to retry
	pr := delivery{event: "pull_request", id: "pr-closed-1", body: fixture(t, "pull_request.closed.json")}
	status, _ := h.send(pr)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("delivery over the queue size: got %d, want 503", status)
	}
	// The refused delivery was not recorded, so GitHub's redelivery works.
	h.clock.Advance(retry.Sub(h.clock.Now()))
	if r := h.wait(); r.Err != nil {
		t.Fatal(r.Err)
	}
	if status, _ := h.send(pr); status != http.StatusAccepted {
		t.Fatalf("redelivery: got %d, want 202", status)
	}
	h.wait()
}
