package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// call makes one API request and returns the status and body.
func call(t testing.TB, method, url, token, body, accept string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustJSON calls and decodes a JSON answer, failing unless the status is want.
func mustJSON[T any](t testing.TB, want int, method, url, token, body string) T {
	t.Helper()
	status, b := call(t, method, url, token, body, "application/json")
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, status, want, b)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
	}
	return v
}

// problemOf decodes a problem answer and checks its status and code.
func problemOf(t testing.TB, status int, b []byte, wantStatus int, wantCode string) wire.Problem {
	t.Helper()
	var p wire.Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("status %d, body %q is not a problem document: %v", status, b, err)
	}
	if status != wantStatus || p.Status != wantStatus || p.Code != wantCode {
		t.Fatalf("got status %d code %q (%s), want %d %q", status, p.Code, p.Detail, wantStatus, wantCode)
	}
	if p.Detail == "" || p.Type == "" {
		t.Errorf("problem without detail or type: %+v", p)
	}
	return p
}

// kubectl runs kubectl with a kubeconfig and returns its output.
func kubectl(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(smektest.KubeBin(t), "kubectl"), append([]string{"--kubeconfig", kubeconfig, "--request-timeout=20s"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeKubeconfig writes a kubeconfig to a temp file.
func writeKubeconfig(t testing.TB, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newClock returns a fake clock standing at the wall clock's time, which
// moves only when told.
func newClock() *clockwork.FakeClock { return clockwork.NewFakeClockAt(time.Now()) }
