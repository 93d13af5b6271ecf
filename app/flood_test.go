package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/httpserver/httpservertest"
)

// floodBodyMiB is the body size of the measurement: 12 concurrent
// 24 MiB bodies took the server from 149 to 559 MB.
const floodBodyMiB = 24

// startAppProcess builds the app (without the race detector, so that its
// memory is the program's own) and starts it on a loopback port with extra
// flags. It returns the process and the webhook's URL.
func startAppProcess(t *testing.T, secret string, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/smek/action/app").CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	// No delivery in these tests is genuine, so the SMEK server is never
	// called: the URL points at a closed port.
	args := append([]string{"--addr", "127.0.0.1:0", "--smek-url", "http://127.0.0.1:9"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SMEK_TOKEN=smek_flood", "SMEK_GITHUB_WEBHOOK_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("app did not start: %v", err)
	}
	return cmd, strings.Fields(line)[4]
}

// procStatusMB returns a field of /proc/PID/status in MB (VmHWM: peak RSS).
func procStatusMB(t *testing.T, pid int, field string) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// floodRequest is one unauthenticated delivery attempt.
type floodRequest struct {
	signature string // "" sends none
	length    int64  // body bytes
	chunked   bool
}

// send posts the request over its own connection and returns the
// answer's status; 0 when the server closed the connection without one.
func (f floodRequest) send(addr string) int {
	header := http.Header{"Content-Type": {"application/json"}}
	header.Set(githubapp.EventHeader, "workflow_run")
	header.Set(githubapp.DeliveryHeader, fmt.Sprintf("flood-%d", time.Now().UnixNano()))
	if f.signature != "" {
		header.Set(githubapp.SignatureHeader, f.signature)
	}
	status, _ := httpservertest.RawPost(addr, githubapp.WebhookPath, header, httpservertest.RawBody{Length: f.length, Chunked: f.chunked}, 2*time.Minute)
	return status
}

// TestWebhookFloodKeepsMemoryBounded floods the App's webhook from
// loopback with what anyone can send without the secret — unsigned bodies,
// bodies with a wrong signature, over the cap, chunked — 12 clients at a
// time, and measures the process's peak resident memory (VmHWM). Meanwhile
// /healthz must keep answering.
func TestWebhookFloodKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the app and sends about a gigabyte over loopback")
	}
	cmd, hook := startAppProcess(t, "flood-secret")
	addr := strings.TrimPrefix(strings.TrimSuffix(hook, githubapp.WebhookPath), "http://")
	wrong := "sha256=" + strings.Repeat("0", 64)
	kinds := []floodRequest{
		{signature: "", length: floodBodyMiB << 20},
		{signature: wrong, length: floodBodyMiB << 20},
		{signature: wrong, length: floodBodyMiB << 20, chunked: true},
		{signature: wrong, length: 3 << 20}, // under any sensible cap: it must be read to be refused
	}
	const clients, perClient = 12, 4
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				status := kinds[(c+i)%len(kinds)].send(addr)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	flooding := make(chan struct{})
	go func() { wg.Wait(); close(flooding) }()

	// The endpoint's neighbours keep answering during the flood.
	var healthy, unhealthy atomic.Int64
	hc := &http.Client{Timeout: time.Minute}
	for done := false; !done; {
		select {
		case <-flooding:
			done = true
		default:
			resp, err := hc.Get("http://" + addr + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				unhealthy.Add(1)
				t.Errorf("/healthz during the flood: %v", err)
			} else {
				healthy.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}

	peak := procStatusMB(t, cmd.Process.Pid, "VmHWM")
	t.Logf("%d requests of up to %d MiB: answers %v; /healthz answered %d times during the flood; peak RSS %.1f MB, RSS now %.1f MB",
		clients*perClient, floodBodyMiB, statuses, healthy.Load(), peak, procStatusMB(t, cmd.Process.Pid, "VmRSS"))
	if peak >= 100 {
		t.Errorf("peak RSS %.1f MB under the flood, want under 100 MB", peak)
	}
	for status, n := range statuses {
		if status < 400 || status >= 500 && status != http.StatusServiceUnavailable {
			t.Errorf("%d requests answered %d, want 401, 413 or 503", n, status)
		}
	}
	if healthy.Load() == 0 {
		t.Error("/healthz was not asked during the flood")
	}
}
