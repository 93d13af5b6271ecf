package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/httpserver/httpservertest"
)

// TestRunCutsSlowClients runs the app with short timeouts and sends it a
// head and a webhook body a byte at a time: both connections are closed
// by the deadlines while /healthz is served, and an idle connection is
// closed too.
func TestRunCutsSlowClients(t *testing.T) {
	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--header-timeout", deadline.String(), "--body-timeout", deadline.String(),
			"--idle-timeout", deadline.String()},
			env(map[string]string{"SMEK_URL": "http://127.0.0.1:9", "SMEK_TOKEN": "smek_service", "SMEK_GITHUB_WEBHOOK_SECRET": "s3cret"}),
			pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimPrefix(strings.TrimSuffix(strings.Fields(line)[4], githubapp.WebhookPath), "http://")
	healthz := func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		return nil
	}
	tests := []struct{ name, head, rest string }{
		{"head", "POST " + githubapp.WebhookPath + " HTTP/1.1\r\nHost: x\r\n", githubapp.EventHeader + ": workflow_run\r\n"},
		{"webhook body", "POST " + githubapp.WebhookPath + " HTTP/1.1\r\nHost: x\r\n" + githubapp.EventHeader + ": workflow_run\r\n" +
			githubapp.DeliveryHeader + ": slow-1\r\n" + githubapp.SignatureHeader + ": sha256=" + strings.Repeat("0", 64) +
			"\r\nContent-Length: 10000\r\n\r\n", `{"action": "completed"}`},
		{"idle", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			every := deadline / 4
			if tt.rest == "" {
				tt.rest, every = " ", time.Hour // idle: nothing more is sent
			}
			lived := httpservertest.SlowClient(t, addr, tt.head, tt.rest, every, healthz)
			t.Logf("closed after %v", lived.Round(time.Millisecond))
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
