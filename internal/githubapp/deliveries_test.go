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

	"github.com/smek/action/internal/cluster"
)

func TestDeliveryClientAndHandler(t *testing.T) {
	store := &memDeliveries{}
	const service = "smek_service"
	authorize := func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer "+service {
			return cluster.Errorf(cluster.EUNAUTHORIZED, "", "not the service token")
		}
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+DeliveriesPath, DeliveriesHandler(store, authorize, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, err := NewDeliveryClient(srv.URL+"/", service, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, false} {
		isNew, err := c.RecordDelivery(t.Context(), "d-1", "ping", nil)
		if err != nil || isNew != want {
			t.Fatalf("call %d: got %v, %v; want %v", i, isNew, err, want)
		}
	}
	bad, _ := NewDeliveryClient(srv.URL, "smek_other", nil)
	if _, err := bad.RecordDelivery(t.Context(), "d-2", "ping", nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("other token: got %v, want a 401 error", err)
	}
	if isNew, _ := c.RecordDelivery(t.Context(), "d-2", "ping", nil); !isNew {
		t.Fatal("a refused call recorded the delivery")
	}
	// A payload seen under another id is a duplicate too.
	digest := sha256.Sum256([]byte(`{"action":"completed"}`))
	for i, want := range []bool{true, false} {
		isNew, err := c.RecordDelivery(t.Context(), fmt.Sprintf("p-%d", i), "workflow_run", digest[:])
		if err != nil || isNew != want {
			t.Fatalf("payload under id p-%d: got %v, %v; want %v", i, isNew, err, want)
		}
	}
	for _, body := range []string{`{"id":"x","payload-sha256":"abc"}`, `{"id":"x","payload-sha256":"` + strings.Repeat("z", 64) + `"}`,
		`{"id":""}`, `{"id":"` + strings.Repeat("x", 200) + `"}`, `[]`, `{"id":"x","extra":1}`} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+DeliveriesPath, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+service)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("body %.30s: got %d %s, want 400 problem", body, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if _, err := NewDeliveryClient("ftp://x", service, nil); err == nil {
		t.Error("an ftp url was accepted")
	}
}

// deliveriesFunc is a Deliveries made of a function.
type deliveriesFunc func(id string) (bool, error)

func (f deliveriesFunc) RecordDelivery(_ context.Context, id, _ string, _ []byte) (bool, error) {
	return f(id)
}

func TestWebhookStoreDownIs503(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Deliveries = deliveriesFunc(func(id string) (bool, error) { return false, errors.New("dial tcp: connection refused") })
	})
	status, answer := h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")})
	if status != http.StatusServiceUnavailable || strings.Contains(string(answer), "connection refused") {
		t.Fatalf("got %d %s, want 503 without the internal detail", status, answer)
	}
}
