package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/webhook"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no url", nil, nil, "--smek-url"},
		{"no token", []string{"--smek-url", "http://x"}, nil, "--smek-token"},
		{"no secret", []string{"--smek-url", "http://x"}, map[string]string{"SMEK_TOKEN": "smek_x"}, "--github-webhook-secret"},
		{"id without key", []string{"--smek-url", "http://x", "--github-app-id", "5"},
			map[string]string{"SMEK_TOKEN": "smek_x", "SMEK_GITHUB_WEBHOOK_SECRET": "s"}, "go together"},
		{"no github timeout", []string{"--smek-url", "http://x", "--github-timeout", "0s"},
			map[string]string{"SMEK_TOKEN": "smek_x", "SMEK_GITHUB_WEBHOOK_SECRET": "s"}, "--github-timeout"},
		{"negative attempt timeout", []string{"--smek-url", "http://x"},
			map[string]string{"SMEK_TOKEN": "smek_x", "SMEK_GITHUB_WEBHOOK_SECRET": "s", "SMEK_ATTEMPT_TIMEOUT": "-1m"}, "--attempt-timeout"},
		{"bad id in env", []string{"--smek-url", "http://x"},
			map[string]string{"SMEK_TOKEN": "smek_x", "SMEK_GITHUB_WEBHOOK_SECRET": "s", "SMEK_GITHUB_APP_ID": "abc"}, "SMEK_GITHUB_APP_ID"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, env(tt.env), io.Discard, io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error naming %s", err, tt.want)
			}
		})
	}
	// A secret in the environment is never echoed in an error.
	err := run(t.Context(), []string{"--smek-url", "http://x"}, env(map[string]string{"SMEK_TOKEN": "smek_x",
		"SMEK_GITHUB_WEBHOOK_SECRET": "s", "SMEK_LOG_LEVEL": "hunter2"}), io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v, want an error without the value", err)
	}
}

func TestRunServesWebhooks(t *testing.T) {
	// The provisioner's delivery route, as the lead mounts it.
	var mu sync.Mutex
	var recorded []string
	smek := httptest.NewServer(githubapp.DeliveriesHandler(deliveries(func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, id)
		return true
	}), func(r *http.Request) error { return nil }, nil))
	defer smek.Close()
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, testKeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--github-app-id", "12", "--github-app-key-file", keyFile},
			env(map[string]string{"SMEK_URL": smek.URL, "SMEK_TOKEN": "smek_service", "SMEK_GITHUB_WEBHOOK_SECRET": "s3cret"}),
			pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.Fields(line)[4]

	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(githubapp.EventHeader, "ping")
	req.Header.Set(githubapp.DeliveryHeader, "d-1")
	req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte("s3cret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ping: got %d, want 200", resp.StatusCode)
	}
	// A workflow_run is recorded through the provisioner route.
	body = []byte(`{"action":"completed","workflow_run":{"id":1,"run_attempt":1},"repository":{"id":2}}`)
	req, _ = http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(githubapp.EventHeader, "workflow_run")
	req.Header.Set(githubapp.DeliveryHeader, "d-2")
	req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte("s3cret"), body))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusAccepted || len(recorded) != 1 || recorded[0] != "d-2" {
		t.Fatalf("workflow_run: got %d, recorded %v; want 202 and d-2 recorded", resp.StatusCode, recorded)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// deliveries is a delivery store that calls its function with each id
// accepted and keeps nothing else.
type deliveries func(id string) bool

func (d deliveries) AcceptDelivery(_ context.Context, r webhook.Received) (webhook.Delivery, bool, error) {
	return webhook.Delivery{ID: r.ID, Event: r.Event, State: webhook.Accepted}, d(r.ID), nil
}

func (deliveries) UpdateDelivery(context.Context, string, webhook.Update) error { return nil }

func (deliveries) PendingDeliveries(context.Context) ([]webhook.Delivery, error) { return nil, nil }

func (deliveries) DeliveryPayload(_ context.Context, id string) ([]byte, error) {
	return nil, cluster.Errorf(cluster.ENOTFOUND, "id", "no payload kept for delivery %q", id)
}

// testKeyPEM returns a fresh PEM RSA key: none is kept in the repository.
func testKeyPEM(t *testing.T) []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}
