package githubapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/webhook"
)

// deliveriesServer serves DeliveriesHandler over a store for the token
// "smek_service", as the provisioner does.
func deliveriesServer(t *testing.T, store Deliveries) *httptest.Server {
	t.Helper()
	const service = "smek_service"
	authorize := func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer "+service {
			return cluster.Errorf(cluster.EUNAUTHORIZED, "", "not the service token")
		}
		return nil
	}
	h := DeliveriesHandler(store, authorize, nil)
	mux := http.NewServeMux()
	mux.Handle(DeliveriesPath, h)
	mux.Handle(DeliveriesPath+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestDeliveryClientAndHandler drives the standalone App's store over
// HTTP: the same rules as the store itself.
func TestDeliveryClientAndHandler(t *testing.T) {
	store := &memDeliveries{}
	srv := deliveriesServer(t, store)
	c, err := NewDeliveryClient(srv.URL+"/", "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	body := []byte(`{"action":"completed"}`)
	digest := sha256.Sum256(body)
	received := webhook.Received{ID: "d-1", Event: "workflow_run", PayloadSHA256: digest[:], Payload: body}

	d, isNew, err := c.AcceptDelivery(ctx, received)
	if err != nil || !isNew || d.State != webhook.Accepted || d.ID != "d-1" {
		t.Fatalf("first: got %+v, %t, %v; want new accepted work", d, isNew, err)
	}
	next := time.Date(2026, 3, 1, 12, 0, 4, 0, time.UTC)
	if err := c.UpdateDelivery(ctx, "d-1", webhook.Update{State: webhook.Accepted, Attempts: 1, NextAttemptAt: next, Reason: "503"}); err != nil {
		t.Fatal(err)
	}
	// A redelivery of work not done: seen, as it stands.
	d, isNew, err = c.AcceptDelivery(ctx, received)
	if err != nil || isNew || d.State != webhook.Accepted || d.Attempts != 1 || !d.NextAttemptAt.Equal(next) || d.Reason != "503" {
		t.Fatalf("redelivery: got %+v, %t, %v; want the pending work", d, isNew, err)
	}
	// The same payload under another id is that delivery.
	if d, isNew, err := c.AcceptDelivery(ctx, webhook.Received{ID: "d-2", Event: "workflow_run", PayloadSHA256: digest[:], Payload: body}); err != nil || isNew || d.ID != "d-1" {
		t.Fatalf("payload under a new id: got %+v, %t, %v; want delivery d-1", d, isNew, err)
	}
	pending, err := c.PendingDeliveries(ctx)
	if err != nil || len(pending) != 1 || pending[0].ID != "d-1" || pending[0].Attempts != 1 {
		t.Fatalf("pending: got %+v, %v", pending, err)
	}
	if p, err := c.DeliveryPayload(ctx, "d-1"); err != nil || string(p) != string(body) {
		t.Fatalf("payload: got %q, %v", p, err)
	}
	if err := c.UpdateDelivery(ctx, "d-1", webhook.Update{State: webhook.Done, Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	if d, isNew, err := c.AcceptDelivery(ctx, received); err != nil || isNew || d.State != webhook.Done {
		t.Fatalf("redelivery of done work: got %+v, %t, %v; want done", d, isNew, err)
	}
	if _, err := c.DeliveryPayload(ctx, "d-1"); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("payload of done work: got %v, want ENOTFOUND", err)
	}
	for _, tt := range []struct {
		id   string
		u    webhook.Update
		code cluster.Code
	}{
		{"d-1", webhook.Update{State: webhook.Accepted}, cluster.ECONFLICT},
		{"d-none", webhook.Update{State: webhook.Done}, cluster.ENOTFOUND},
		{"d-1", webhook.Update{State: "lost"}, cluster.EINVALID},
	} {
		if err := c.UpdateDelivery(ctx, tt.id, tt.u); cluster.ErrorCode(err) != tt.code {
			t.Errorf("update %s to %+v: got %v, want %s", tt.id, tt.u, err, tt.code)
		}
	}
	// An App before payloads only de-duplicates: its deliveries are done.
	if d, isNew, err := c.AcceptDelivery(ctx, webhook.Received{ID: "d-3", Event: "ping"}); err != nil || !isNew || d.State != webhook.Done {
		t.Fatalf("record without payload: got %+v, %t, %v; want new and done", d, isNew, err)
	}

	// Service tokens only.
	bad, _ := NewDeliveryClient(srv.URL, "smek_other", nil)
	if _, _, err := bad.AcceptDelivery(ctx, webhook.Received{ID: "d-4", Event: "ping"}); cluster.ErrorCode(err) != cluster.EUNAUTHORIZED {
		t.Fatalf("other token: got %v, want EUNAUTHORIZED", err)
	}
	if _, isNew, _ := c.AcceptDelivery(ctx, webhook.Received{ID: "d-4", Event: "ping"}); !isNew {
		t.Fatal("a refused call recorded the delivery")
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", DeliveriesPath, `{"id":"x","payload-sha256":"abc"}`},
		{"POST", DeliveriesPath, `{"id":"x","payload-sha256":"` + strings.Repeat("z", 64) + `"}`},
		{"POST", DeliveriesPath, `{"id":""}`},
		{"POST", DeliveriesPath, `{"id":"` + strings.Repeat("x", 200) + `"}`},
		{"POST", DeliveriesPath, `[]`},
		{"POST", DeliveriesPath, `{"id":"x","extra":1}`},
		{"POST", DeliveriesPath, `{"id":"x","payload":"not base64!"}`},
		{"PATCH", DeliveriesPath + "/d-4", `{"state":"done","id":"d-5"}`},
		{"PATCH", DeliveriesPath + "/d-4", `{"state":"lost"}`},
		{"GET", DeliveriesPath + "?state=done", ``},
	} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Bearer smek_service")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %.30s: got %d %s, want 400 problem", r.method, r.path, r.body, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+DeliveriesPath, strings.NewReader(fmt.Sprintf(`{"id":"big","payload":"%s"}`, strings.Repeat("A", maxRecordBody))))
	req.Header.Set("Authorization", "Bearer smek_service")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the cap: got %v, %v; want 413", resp.StatusCode, err)
	}
	if _, err := NewDeliveryClient("ftp://x", "smek_service", nil); err == nil {
		t.Error("an ftp url was accepted")
	}
}

// downDeliveries is a store that cannot be reached.
type downDeliveries struct{ memDeliveries }

func (*downDeliveries) AcceptDelivery(context.Context, webhook.Received) (webhook.Delivery, bool, error) {
	return webhook.Delivery{}, false, errors.New("dial tcp: connection refused")
}

func TestWebhookStoreDownIs503(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Deliveries = &downDeliveries{} })
	status, answer := h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")})
	if status != http.StatusServiceUnavailable || strings.Contains(string(answer), "connection refused") {
		t.Fatalf("got %d %s, want 503 without the internal detail", status, answer)
	}
}
