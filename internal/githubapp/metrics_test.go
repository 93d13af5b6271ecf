package githubapp

import (
	"sync"
	"testing"
)

// countingMetrics records the endpoint's counts.
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int // "event/result"
}

func (m *countingMetrics) WebhookDelivery(event, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[event+"/"+result]++
}

func TestEndpointCountsEveryAnswer(t *testing.T) {
	m := &countingMetrics{counts: map[string]int{}}
	h := newHarness(t, func(c *Config) { c.Metrics = m })
	run := fixture(t, "workflow_run.completed.json")
	h.send(delivery{event: "ping", body: fixture(t, "ping.json")})
	h.send(delivery{event: "workflow_run", body: run, signature: "sha256=00"})
	h.send(delivery{event: "workflow_run", body: run, signature: "-"})
	h.send(delivery{event: "star", body: []byte(`{}`)})
	h.send(delivery{event: "workflow_run", body: []byte(`{`)})
	h.send(delivery{event: "workflow_run", body: run, id: "d-1"})
	h.wait()
	h.send(delivery{event: "workflow_run", body: run, id: "d-1"})
	want := map[string]int{
		"ping/pong": 1, "workflow_run/bad-signature": 2, "star/ignored": 1,
		"workflow_run/invalid": 1, "workflow_run/accepted": 1, "workflow_run/duplicate": 1,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, n := range want {
		if m.counts[k] != n {
			t.Errorf("%s counted %d times, want %d (all: %v)", k, m.counts[k], n, m.counts)
		}
	}
	if len(m.counts) != len(want) {
		t.Errorf("counts %v, want exactly %v", m.counts, want)
	}
}
