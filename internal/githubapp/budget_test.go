package githubapp

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/httpserver/httpservertest"
)

func TestWebhookRefusesPayloadsBeyondItsMemory(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PayloadMemory = 2 * MaxPayload })
	addr := h.srv.Listener.Addr().String()
	h.clusters.add(runCluster("c-run001", false))
	// A workflow_run of 100 KiB (JSON allows the trailing blanks).
	run := fixture(t, "workflow_run.completed.json")
	run = append(run, bytes.Repeat([]byte(" "), 100<<10-len(run))...)

	// Payloads being received elsewhere hold all but 64 KiB.
	others := int64(2*MaxPayload - 64<<10)
	if !h.app.payloads.take(others) {
		t.Fatal("could not take the payload memory")
	}
	header := webhookHeader("workflow_run")
	header.Set(SignatureHeader, Sign([]byte(testSecret), run))
	resp, body := headOnly(t, addr, header, int64(len(run)))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"unavailable"`) {
		t.Fatalf("100 KiB over the memory: got %d %s (Retry-After %q), want 503 unavailable with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// A chunked body may be MaxPayload long: it does not fit either.
	if resp, body := headOnly(t, addr, header, -1); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("chunked body over the memory: got %d %s, want 503", resp.StatusCode, body)
	}
	// What fits is served meanwhile.
	if status, answer := h.send(delivery{event: "ping", body: fixture(t, "ping.json")}); status != http.StatusOK {
		t.Fatalf("ping within the memory: got %d %s, want 200", status, answer)
	}
	h.app.payloads.give(others)
	if status, answer := h.send(delivery{event: "workflow_run", body: run}); status != http.StatusAccepted {
		t.Fatalf("once the memory is free: got %d %s, want 202", status, answer)
	}
	h.wait()
	if used, _ := h.app.payloads.stats(); used != 0 {
		t.Fatalf("%d bytes still reserved after the requests ended", used)
	}
}

// rawDelivery is one request sent over its own connection, its body made
// on the fly, so that the client holds no copy.
type rawDelivery struct {
	event, signature string // signature "" sends none
	length           int64
	chunked          bool
	body             []byte // sent as is when set
}

func (d rawDelivery) send(t *testing.T, addr string, id int) int {
	header := http.Header{}
	header.Set(EventHeader, d.event)
	header.Set(DeliveryHeader, fmt.Sprintf("raw-%d", id))
	if d.signature != "" {
		header.Set(SignatureHeader, d.signature)
	}
	status, err := httpservertest.RawPost(addr, WebhookPath, header, httpservertest.RawBody{Data: d.body, Length: d.length, Chunked: d.chunked}, time.Minute)
	if err != nil {
		t.Error(err)
	}
	return status
}

// TestWebhookFloodHoldsBoundedMemory sends what anyone can send without
// the secret — unsigned bodies, bodies over the cap, chunked ones, bodies
// under the cap with a wrong signature (they must be read to be refused) —
// 16 clients at a time, with genuine deliveries among them. It measures
// the payload bytes the endpoint holds at once: its reservations, which
// bound the buffers it allocates (readPayload allocates exactly the
// reservation).
func TestWebhookFloodHoldsBoundedMemory(t *testing.T) {
	h := newHarness(t)
	addr := h.srv.Listener.Addr().String()
	wrong := "sha256=" + strings.Repeat("0", 64)
	genuine := func(i int) rawDelivery {
		body := variant(t, "workflow_run.completed.json", func(m map[string]any) { obj(m, "workflow_run")["id"] = 1000 + i })
		return rawDelivery{event: "workflow_run", signature: Sign([]byte(testSecret), body), body: body}
	}
	kinds := []func(i int) rawDelivery{
		func(int) rawDelivery { return rawDelivery{event: "workflow_run", length: 24 << 20} },                   // unsigned
		func(int) rawDelivery { return rawDelivery{event: "workflow_run", signature: wrong, length: 24 << 20} }, // over the cap
		func(int) rawDelivery {
			return rawDelivery{event: "issue_comment", signature: wrong, length: MaxPayload}
		}, // read, then 401
		func(int) rawDelivery {
			return rawDelivery{event: "pull_request", signature: wrong, length: 8 << 20, chunked: true}
		},
		func(int) rawDelivery { return rawDelivery{event: "push", signature: wrong, length: 24 << 20} }, // not handled: unread
		genuine,
	}
	const clients, perClient = 16, 6
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				n := c*perClient + i
				kind := (c + i) % len(kinds)
				d := kinds[kind](n)
				status := d.send(t, addr, n)
				mu.Lock()
				statuses[fmt.Sprintf("%s/%d", map[bool]string{true: "genuine", false: "forged"}[kind == len(kinds)-1], status)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	used, peak := h.app.payloads.stats()
	t.Logf("%d requests, answers %v; payload bytes held at most %d (%.1f MiB) of %d", clients*perClient, statuses, peak, float64(peak)/(1<<20), DefaultPayloadMemory)
	if peak > DefaultPayloadMemory || peak == 0 {
		t.Errorf("payload bytes held at once: %d, want 1 to %d", peak, DefaultPayloadMemory)
	}
	if used != 0 {
		t.Errorf("%d bytes still reserved after every request ended", used)
	}
	for k, n := range statuses {
		switch k {
		case "forged/200", "forged/401", "forged/413", "forged/503", "genuine/202", "genuine/503":
		default:
			t.Errorf("%d requests answered %s", n, k)
		}
	}
	// Every genuine delivery that was accepted did its work.
	for range statuses["genuine/202"] {
		if r := h.wait(); r.Err != nil && !strings.Contains(r.Err.Error(), "no cluster") {
			t.Errorf("delivery %s: %v", r.Delivery, r.Err)
		}
	}
}
