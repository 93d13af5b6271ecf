package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/webhook"
	"github.com/smek/action/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		accept []string // one element per Accept header line
		want   format
	}{
		{"no Accept header", nil, formatShell},
		{"curl", []string{"*/*"}, formatShell},
		{"empty", []string{""}, formatShell},
		{"json", []string{"application/json"}, formatJSON},
		{"json with charset", []string{"application/json; charset=utf-8"}, formatJSON},
		{"upper case", []string{"Application/JSON"}, formatJSON},
		{"problem json", []string{"application/problem+json"}, formatJSON},
		{"yaml", []string{"application/yaml"}, formatYAML},
		{"x-yaml", []string{"application/x-yaml"}, formatYAML},
		{"text yaml", []string{"text/yaml"}, formatYAML},
		{"browser", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, formatShell},
		{"plain text", []string{"text/plain"}, formatShell},
		{"json preferred by q", []string{"application/yaml;q=0.2, application/json;q=0.9"}, formatJSON},
		{"yaml preferred by q", []string{"application/json;q=0.5, application/yaml"}, formatYAML},
		{"yaml preferred by q, spaces", []string{"application/json ; q=0.5 ,  application/yaml ; q=0.6"}, formatYAML},
		{"tie goes to the first", []string{"application/yaml, application/json"}, formatYAML},
		{"q=0 is not acceptable", []string{"application/json;q=0"}, formatShell},
		{"bad q counts as 1", []string{"application/json;q=high"}, formatJSON},
		{"star with json", []string{"*/*, application/json"}, formatJSON},
		{"garbage", []string{";;;, ==, /"}, formatShell},
		{"two header lines", []string{"text/plain", "application/json"}, formatJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/create", nil)
			for _, a := range tt.accept {
				r.Header.Add("Accept", a)
			}
			if got := negotiate(r); got != tt.want {
				t.Errorf("Accept %q: got format %d, want %d", tt.accept, got, tt.want)
			}
		})
	}
}

func testCluster() (cluster.Cluster, cluster.Kubeconfig, error) {
	yaml, err := os.ReadFile(filepath.Join("testdata", "kubeconfig.yaml"))
	c := cluster.Cluster{
		ID: "c-abc123", Account: "me", Status: cluster.Running,
		Spec:      cluster.Spec{K8sVersion: "1.36.3", MinutesToLive: 60, KeepCluster: true, Size: cluster.SizeMid},
		APIServer: "https://127.0.0.1:40123",
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		ExpiresAt: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC),
		Timings:   cluster.Timings{Claimed: 3 * time.Millisecond, Ready: 40 * time.Millisecond, Warm: true},
	}
	return c, cluster.Kubeconfig{YAML: yaml, APIServer: c.APIServer, ExpiresAt: c.ExpiresAt}, err
}

// runSh feeds script to /bin/sh on stdin, as `curl ... | sh -` does, with
// HOME set to home and the working directory dir.
func runSh(t *testing.T, home, dir string, script []byte) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-")
	cmd.Stdin = bytes.NewReader(script)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run /bin/sh: %v", err)
	}
	return out.String(), errb.String(), 0
}

// noPwned fails if a command hidden in shell data was run: each would have
// created a file called pwned-* in the working directory.
func noPwned(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "pwned*"))
		if len(m) > 0 {
			t.Errorf("the shell ran a command hidden in the data: found %v", m)
		}
	}
}

func TestShellScriptWritesKubeconfig(t *testing.T) {
	c, kc, err := testCluster()
	if err != nil {
		t.Fatal(err)
	}
	// A space in $HOME must not break the paths.
	home := filepath.Join(t.TempDir(), "my home")
	kube := filepath.Join(home, ".kube")
	if err := os.MkdirAll(kube, 0o755); err != nil {
		t.Fatal(err)
	}
	// The user's own kubeconfig must be left exactly as it was.
	config := filepath.Join(kube, "config")
	if err := os.WriteFile(config, []byte("current-context: mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(config)
	cwd := t.TempDir()

	stdout, stderr, code := runSh(t, home, cwd, shellScript(c, kc))
	if code != 0 {
		t.Fatalf("script exited %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("got stderr %q, want none", stderr)
	}
	path := filepath.Join(kube, "smek-c-abc123.yaml")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, kc.YAML) {
		t.Errorf("kubeconfig written differs from the one served:\n got %q\nwant %q", got, kc.YAML)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(stdout, "c-abc123") {
		t.Errorf("stdout %q does not name the cluster", stdout)
	}
	wantExport := `export KUBECONFIG="` + path + `"`
	if !strings.Contains(stdout, wantExport+"\n") {
		t.Errorf("stdout %q lacks the line %q", stdout, wantExport)
	}
	after, err := os.Stat(config)
	if err != nil || !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Errorf("~/.kube/config was touched: %v", err)
	}
	if b, _ := os.ReadFile(config); string(b) != "current-context: mine\n" {
		t.Errorf("~/.kube/config was changed to %q", b)
	}
	entries, _ := os.ReadDir(kube)
	if len(entries) != 2 {
		t.Errorf("got %d files in ~/.kube, want config and smek-c-abc123.yaml", len(entries))
	}
	noPwned(t, cwd, home)
}

// A fresh home gets a private ~/.kube; a kubeconfig of the same cluster
// from an earlier /start, readable by others, is replaced and locked down.
func TestShellScriptFreshHomeAndRewrite(t *testing.T) {
	c, kc, err := testCluster()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	script := shellScript(c, kc)
	if _, stderr, code := runSh(t, home, home, script); code != 0 {
		t.Fatalf("script exited %d: %s", code, stderr)
	}
	kube := filepath.Join(home, ".kube")
	if fi, err := os.Stat(kube); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("~/.kube: got %v (%v), want a folder with mode 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(kube, "config")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the script created ~/.kube/config (%v)", err)
	}

	path := filepath.Join(kube, "smek-c-abc123.yaml")
	if err := os.WriteFile(path, []byte("stale and longer than nothing"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runSh(t, home, home, script); code != 0 {
		t.Fatalf("second run exited %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, kc.YAML) {
		t.Errorf("second run left %q", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v after rewrite, want 0600", fi.Mode().Perm())
	}
}

// A kubeconfig without a final newline still ends up intact (plus the
// newline the here-document needs).
func TestShellScriptNoFinalNewline(t *testing.T) {
	c, _, _ := testCluster()
	kc := cluster.Kubeconfig{YAML: []byte("apiVersion: v1\nkind: Config")}
	home := t.TempDir()
	if _, stderr, code := runSh(t, home, home, shellScript(c, kc)); code != 0 {
		t.Fatalf("script exited %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(home, ".kube", "smek-c-abc123.yaml"))
	if string(got) != "apiVersion: v1\nkind: Config\n" {
		t.Errorf("got %q", got)
	}
}

func TestShellScriptGolden(t *testing.T) {
	c, kc, err := testCluster()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "create.sh.golden", shellScript(c, kc))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func TestShellErrorPrintsAndFails(t *testing.T) {
	tests := []struct {
		name   string
		detail string
	}{
		{"plain", "notification-email is required"},
		{"single quotes", `cluster-size 'huge' is not offered`},
		{"double quotes", `k8s-version "1.27.4" is not offered`},
		{"command substitution", `k8s-version "$(touch pwned-dollar)" is not offered`},
		{"backticks", "unknown field \"`touch pwned-backtick`\""},
		{"variables", `unknown field "$HOME${PATH}"`},
		{"quote breakout", `x'; touch pwned-quote; echo '`},
		{"backslashes", `unknown field "a\nb\c\\d"`},
		{"control characters", "line\nbreak\rand\x1b[31mescape"},
		{"percent signs", "100% full %s %n"},
		{"dash first", "-n -e not an option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := wire.Problem{Status: 400, Code: string(cluster.EINVALID), Detail: tt.detail}
			dir := t.TempDir()
			stdout, stderr, code := runSh(t, dir, dir, shellError(p))
			if code != 1 {
				t.Errorf("got exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			clean := strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return ' '
				}
				return r
			}, tt.detail)
			want := "SMEK: " + clean + " (HTTP 400 invalid)\n"
			if stderr != want {
				t.Errorf("got stderr %q, want %q", stderr, want)
			}
			noPwned(t, dir)
		})
	}
}

// tokenStoreFunc is an auth.TokenStore: the tests' one token is smek_test.
type tokenStoreFunc func(ctx context.Context, hash []byte) (cluster.Principal, error)

func (f tokenStoreFunc) PrincipalByTokenHash(ctx context.Context, hash []byte) (cluster.Principal, error) {
	return f(ctx, hash)
}

// newTestServer returns an API server without a lifecycle: enough for every
// request that is refused before it reaches one.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	tokens := tokenStoreFunc(func(_ context.Context, hash []byte) (cluster.Principal, error) {
		if !bytes.Equal(hash, auth.HashToken("smek_test")) {
			return cluster.Principal{}, cluster.Errorf(cluster.EUNAUTHORIZED, "", "the bearer token is not valid")
		}
		return cluster.Principal{Account: cluster.Account{ID: 1, Name: "me", MaxClusters: 5, MaxMinutesToLive: 120}, Actor: "token:smek_test"}, nil
	})
	return New(Config{Auth: &auth.Authenticator{Tokens: tokens}, Deliveries: noDeliveries{}})
}

// noDeliveries is a githubapp.Deliveries that knows no delivery.
type noDeliveries struct{}

func (noDeliveries) AcceptDelivery(context.Context, webhook.Received) (webhook.Delivery, bool, error) {
	return webhook.Delivery{}, false, cluster.Errorf(cluster.EUNAVAILABLE, "", "no deliveries here")
}

func (noDeliveries) UpdateDelivery(context.Context, string, webhook.Update) error {
	return cluster.Errorf(cluster.ENOTFOUND, "id", "no such delivery")
}

func (noDeliveries) PendingDeliveries(context.Context) ([]webhook.Delivery, error) { return nil, nil }

func (noDeliveries) DeliveryPayload(context.Context, string) ([]byte, error) {
	return nil, cluster.Errorf(cluster.ENOTFOUND, "id", "no such delivery")
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) wire.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != wire.MediaProblem {
		t.Fatalf("got Content-Type %q (body %q), want %s", ct, w.Body, wire.MediaProblem)
	}
	var p wire.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem document: %v", err)
	}
	return p
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The seed's `curl ... | sh -` usage: a failed /create or /start answers
// with a script that says what went wrong and fails the pipeline's shell.
func TestScriptClientsGetScriptErrors(t *testing.T) {
	testScriptErrors(t, []scriptErrorCase{
		{"seed start typo", "/start", "smek_test", readBodyString(t, "seed-start.body"), http.StatusBadRequest, "not valid JSON"},
		{"unknown field with shell in it", "/create", "smek_test", "\"$(touch pwned-field)\": 1", http.StatusBadRequest, "$(touch pwned-field)"},
	})
}

// The most common failure of `curl ... | sh -` is a missing or mistyped
// token: the script must say so instead of sh running the problem JSON.
func TestScriptClientsGetScriptErrorsForTokens(t *testing.T) {
	testScriptErrors(t, []scriptErrorCase{
		{"no token", "/create", "", readBodyString(t, "seed-create.body"), http.StatusUnauthorized, "missing Authorization header"},
		{"bad token", "/create", "smek_wrong", readBodyString(t, "seed-create.body"), http.StatusUnauthorized, "not valid"},
		{"bad token on start", "/start", "smek_wrong", `"cluster-id": "c-aaabbb"`, http.StatusUnauthorized, "not valid"},
	})
}

type scriptErrorCase struct {
	name, path, token, body string
	status                  int
	says                    string
}

func testScriptErrors(t *testing.T, tests []scriptErrorCase) {
	t.Helper()
	srv := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postBody(tt.body)
			r.URL.Path = tt.path
			r.Header.Set("Accept", "*/*") // curl
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != wire.MediaShell {
				t.Errorf("got Content-Type %q, want %s", ct, wire.MediaShell)
			}
			if tt.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			dir := t.TempDir()
			stdout, stderr, code := runSh(t, dir, dir, w.Body.Bytes())
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.says) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit 1 and a message containing %q", code, stdout, stderr, tt.says)
			}
			noPwned(t, dir)
		})
	}
}

func readBodyString(t *testing.T, name string) string { return string(readBody(t, name)) }

// The three answers to a create, side by side.
func TestWriteKubeconfigFormats(t *testing.T) {
	c, kc, err := testCluster()
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t)
	answer := func(accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/create", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		s.writeKubeconfig(w, r, http.StatusOK, c, kc)
		return w
	}

	t.Run("json", func(t *testing.T) {
		w := answer("application/json")
		if ct := w.Header().Get("Content-Type"); ct != wire.MediaJSON {
			t.Errorf("got Content-Type %q", ct)
		}
		var got wire.Cluster
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.ClusterID != "c-abc123" || got.ClusterStatus != "running" || got.Kubeconfig != string(kc.YAML) ||
			got.APIServer != c.APIServer || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("got %s", dump(got))
		}
		if got.Timings == nil || got.Timings.ReadyMS != 40 || got.Timings.ClaimedMS != 3 || got.Timings.TotalMS != 43 || !got.Timings.Warm {
			t.Errorf("got timings %s, want claimed 3, ready 40, total 43, warm", dump(got.Timings))
		}
	})
	t.Run("yaml", func(t *testing.T) {
		w := answer("application/yaml")
		if ct := w.Header().Get("Content-Type"); ct != wire.MediaYAML {
			t.Errorf("got Content-Type %q", ct)
		}
		if !bytes.Equal(w.Body.Bytes(), kc.YAML) {
			t.Errorf("the YAML answer is not the kubeconfig: %q", w.Body)
		}
		if w.Header().Get("SMEK-Cluster-Id") != "c-abc123" {
			t.Errorf("got SMEK-Cluster-Id %q", w.Header().Get("SMEK-Cluster-Id"))
		}
	})
	for _, accept := range []string{"", "*/*"} {
		t.Run("script for "+accept, func(t *testing.T) {
			w := answer(accept)
			if ct := w.Header().Get("Content-Type"); ct != wire.MediaShell {
				t.Errorf("got Content-Type %q", ct)
			}
			if !bytes.HasPrefix(w.Body.Bytes(), []byte("#!/bin/sh\n")) {
				t.Errorf("not a script: %q", w.Body)
			}
		})
	}
	for _, accept := range []string{"application/json", "application/yaml", "*/*"} {
		if cc := answer(accept).Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Accept %s: got Cache-Control %q, want no-store: the answer holds a credential", accept, cc)
		}
	}
}
