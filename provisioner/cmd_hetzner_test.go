package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/local/localtest"
)

// checkWorld is a fake Hetzner project for `hetzner check`: the fake
// (with simulated machines when machines is set; kubeBin lets them run
// k3s), the token, SSH key and credential key files.
type checkWorld struct {
	fake                        *hcloudfake.Server
	tokenFile, keyFile, credKey string
}

func newCheckWorld(t *testing.T, kubeBin string) *checkWorld {
	t.Helper()
	fake, tokenFile, keyFile := imageFake(t)
	if kubeBin != "" {
		// imageFake's machines cannot start k3s: a fake whose can.
		dir := t.TempDir()
		fake = hcloudfake.New(hcloudfake.Config{
			Token: "secret-token", DefaultDuration: 5 * time.Millisecond, DataDir: dir,
			Machines: k3snode.Factory(k3snode.Config{Dir: dir, KubeBin: kubeBin}),
		}).Start()
		t.Cleanup(fake.Close)
	}
	credKey := filepath.Join(t.TempDir(), "credential.key")
	if err := os.WriteFile(credKey, []byte((rand.Text() + rand.Text())[:32]), 0o600); err != nil {
		t.Fatal(err)
	}
	return &checkWorld{fake: fake, tokenFile: tokenFile, keyFile: keyFile, credKey: credKey}
}

// flags are the flags serve would run with against the world's fake.
func (w *checkWorld) flags(extra ...string) []string {
	return append([]string{"--hcloud-endpoint", w.fake.URL, "--hcloud-token-file", w.tokenFile, "--ssh-key-file", w.keyFile,
		"--credential-key-file", w.credKey, "--hcloud-fake-ssh", "--hcloud-action-wait", "5ms", "--installation", "ci",
		"--ssh-source-cidr", "127.0.0.1/32"}, extra...)
}

// buildImage makes the golden snapshot of Kubernetes 1.36.3.
func (w *checkWorld) buildImage(t *testing.T) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"build", "--k3s-version", "v1.36.3+k3s1", "--hcloud-endpoint", w.fake.URL, "--hcloud-token-file", w.tokenFile,
		"--ssh-key-file", w.keyFile, "--hcloud-fake-ssh", "--hcloud-action-wait", "5ms", "--installation", "ci"}
	if err := cmdImage(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("image build: %v\n%s", err, stderr.String())
	}
	w.fake.ResetCounts()
}

// check runs `provisioner hetzner check` and returns its lines by step
// name (status and detail) and its output.
func (w *checkWorld) check(ctx context.Context, t *testing.T, args ...string) (map[string]string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"hetzner", "check"}, args...), func(string) string { return "" }, &stdout, &stderr)
	t.Logf("hetzner check:\n%s%s", stdout.String(), stderr.String())
	steps := map[string]string{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if m := checkLine.FindStringSubmatch(l); m != nil {
			steps[strings.TrimSpace(m[2])] = m[1] + " " + m[3]
		}
	}
	return steps, stdout.String(), err
}

var checkLine = regexp.MustCompile(`^(ok|warn|FAIL|skip)\s+(.+?)  +(.*)$`)

// noServersLeft checks that the check deleted what it created.
func (w *checkWorld) noServersLeft(t *testing.T) {
	t.Helper()
	if s := w.fake.Servers(); len(s) != 0 {
		t.Errorf("servers left after the check: %+v", s)
	}
}

func wantStatus(t *testing.T, steps map[string]string, name, status string, detail ...string) {
	t.Helper()
	got, ok := steps[name]
	if !ok {
		t.Errorf("step %q: not printed", name)
		return
	}
	if !strings.HasPrefix(got, status+" ") {
		t.Errorf("step %q: got %q, want %s", name, got, status)
	}
	for _, d := range detail {
		if !strings.Contains(got, d) {
			t.Errorf("step %q: got %q, want it to mention %q", name, got, d)
		}
	}
}

// TestHetznerCheck is the whole preflight against the fake with simulated
// nodes running real control planes: every step passes, the server is
// deleted and its cost printed.
func TestHetznerCheck(t *testing.T) {
	w := newCheckWorld(t, localtest.KubeBin(t))
	w.buildImage(t)
	steps, out, err := w.check(context.Background(), t, w.flags("--step-timeout", "90s")...)
	if err != nil {
		t.Errorf("check: %v", err)
	}
	wantStatus(t, steps, "token", "ok", "reads and writes")
	wantStatus(t, steps, "locations", "ok", "fsn1")
	wantStatus(t, steps, "server type ccx33 (1-mid)", "ok", "fsn1: 0.0952/h")
	wantStatus(t, steps, "firewall", "ok", "127.0.0.1/32")
	wantStatus(t, steps, "snapshot 1.36.3", "ok", "available")
	wantStatus(t, steps, "create server", "ok", "ccx33 in fsn1")
	wantStatus(t, steps, "ssh from here", "ok", "logged in", "the server sees this machine as 127.0.0.1, admitted by firewall smek")
	wantStatus(t, steps, "k3s bootstrap", "ok")
	wantStatus(t, steps, "coredns", "ok")
	wantStatus(t, steps, "persistent volume", "ok", "bound")
	wantStatus(t, steps, "loadbalancer service", "ok", "http://127.0.0.1:80/ answered")
	wantStatus(t, steps, "delete server", "ok", "server-seconds", "1 started hour(s) × 0.0952 = 0.0952")
	if !strings.Contains(out, "hetzner check: ") || strings.Contains(out, "secret-token") {
		t.Errorf("summary missing, or the token printed:\n%s", out)
	}
	t.Logf("hetzner API requests of the check: %d", w.fake.TotalRequests())
	w.noServersLeft(t)
}

// TestHetznerCheckReadOnlyToken: a read-only token is named as such, the
// read-only steps still run, nothing is created.
func TestHetznerCheckReadOnlyToken(t *testing.T) {
	w := newCheckWorld(t, "")
	w.buildImage(t)
	ro := httptest.NewServer(hcloudfake.ReadOnlyToken(w.fake.Handler(), "read-only-token", "secret-token"))
	defer ro.Close()
	roFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(roFile, []byte("read-only-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(w.flags(), "--hcloud-endpoint", ro.URL, "--hcloud-token-file", roFile)
	steps, _, err := w.check(context.Background(), t, args...)
	if !errors.Is(err, errCheckFailed) || exitCode(err) != 1 {
		t.Errorf("got %v (exit %d), want the check to fail with exit code 1", err, exitCode(err))
	}
	wantStatus(t, steps, "token", "FAIL", "may not write (token_readonly)", "Read & Write")
	wantStatus(t, steps, "locations", "ok")
	wantStatus(t, steps, "snapshot 1.36.3", "ok")
	for _, s := range []string{"create server", "ssh from here", "k3s bootstrap", "persistent volume", "loadbalancer service", "delete server"} {
		wantStatus(t, steps, s, "skip")
	}
	if n := w.fake.Counts()["POST /servers"]; n != 0 {
		t.Errorf("server creates: %d", n)
	}
	client := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("secret-token"))
	if keys, err := client.SSHKey.All(context.Background()); err != nil || len(keys) != 1 {
		t.Errorf("ssh keys: got %d (%v), want only the project key the image build registered", len(keys), err)
	}
}

// TestHetznerCheckWithoutSnapshot: no golden snapshot is a failure that
// says how to build one; no server is created.
func TestHetznerCheckWithoutSnapshot(t *testing.T) {
	w := newCheckWorld(t, "")
	steps, _, err := w.check(context.Background(), t, w.flags("--k8s-version", "1.36.3")...)
	if !errors.Is(err, errCheckFailed) {
		t.Errorf("got %v, want the check to fail", err)
	}
	wantStatus(t, steps, "token", "ok")
	wantStatus(t, steps, "snapshot 1.36.3", "FAIL", "no available golden snapshot", "provisioner image build --k3s-version v1.36.3+k3s1")
	wantStatus(t, steps, "create server", "skip")
	wantStatus(t, steps, "delete server", "skip")
	if n := w.fake.Counts()["POST /servers"]; n != 0 {
		t.Errorf("server creates: %d", n)
	}
	// Without --k8s-version, "none at all" is the failure.
	steps, _, _ = w.check(context.Background(), t, w.flags()...)
	wantStatus(t, steps, "golden snapshots", "FAIL", "provisioner image build")
}

// TestHetznerCheckDeletesTheServerWhenAStepFails: the node cannot start
// k3s (no Kubernetes binaries); the later steps are skipped, the server
// is deleted and its cost printed.
func TestHetznerCheckDeletesTheServerWhenAStepFails(t *testing.T) {
	w := newCheckWorld(t, "")
	w.buildImage(t)
	steps, out, err := w.check(context.Background(), t, w.flags("--json")...)
	if !errors.Is(err, errCheckFailed) {
		t.Errorf("got %v, want the check to fail", err)
	}
	var res hetzner.CheckResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	byName := map[string]hetzner.CheckStep{}
	for _, s := range res.Steps {
		byName[s.Name] = s
	}
	if s := byName["create server"]; s.Status != hetzner.CheckOK {
		t.Errorf("create server: %+v", s)
	}
	if s := byName["k3s bootstrap"]; s.Status != hetzner.CheckFail || !strings.Contains(s.Detail, "start k3s") {
		t.Errorf("k3s bootstrap: got %+v, want the failed start of k3s", s)
	}
	for _, n := range []string{"coredns", "persistent volume", "loadbalancer service"} {
		if s := byName[n]; s.Status != hetzner.CheckSkip {
			t.Errorf("%s: got %+v, want skipped", n, s)
		}
	}
	if s := byName["delete server"]; s.Status != hetzner.CheckOK || !strings.Contains(s.Detail, "server-seconds") {
		t.Errorf("delete server: %+v", s)
	}
	// The fake's clock moves only while the backend waits; a start that
	// fails at once costs 0 server-seconds and still a started hour.
	if res.ServerID == 0 || res.ServerSeconds < 0 || res.BilledHours != 1 || res.Cost != "0.0952" {
		t.Errorf("cost: got server %d, %.1f s, %d h, cost %q; want 1 started hour at 0.0952", res.ServerID, res.ServerSeconds, res.BilledHours, res.Cost)
	}
	if len(steps) != 0 {
		t.Errorf("with --json, stdout has step lines: %v", steps)
	}
	if n := w.fake.Counts()["DELETE /servers/{id}"]; n != 1 {
		t.Errorf("deletes: %d", n)
	}
	t.Logf("hetzner API requests of the check: %d", w.fake.TotalRequests())
	w.noServersLeft(t)
}

// TestHetznerCheckDeletesTheServerWhenInterrupted: the check is cancelled
// (Ctrl-C) once its create reached the API; the server is deleted all the
// same, found by name when the create's answer was not awaited.
func TestHetznerCheckDeletesTheServerWhenInterrupted(t *testing.T) {
	w := newCheckWorld(t, "")
	w.buildImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := w.fake.Await(ctx, "POST /servers", 1); err == nil {
			cancel()
		}
	}()
	steps, _, err := w.check(ctx, t, w.flags()...)
	if !errors.Is(err, errCheckFailed) {
		t.Errorf("got %v, want the check to fail", err)
	}
	wantStatus(t, steps, "delete server", "ok", "deleted", "server-seconds")
	w.noServersLeft(t)
}

// TestHetznerCheckFlags: bad input is a usage error naming the flag,
// before any request.
func TestHetznerCheckFlags(t *testing.T) {
	w := newCheckWorld(t, "")
	cases := map[string]struct {
		args []string
		want string
	}{
		"no credential key": {[]string{"--hcloud-endpoint", w.fake.URL, "--hcloud-token-file", w.tokenFile, "--ssh-key-file", w.keyFile}, "--credential-key-file"},
		"no token":          {[]string{"--ssh-key-file", w.keyFile, "--credential-key-file", w.credKey}, "SMEK_HCLOUD_TOKEN"},
		"bad version":       {w.flags("--k8s-version", "1.36"), "--k8s-version"},
		"zero timeout":      {w.flags("--step-timeout", "0s"), "--step-timeout"},
		"empty image":       {w.flags("--check-image", " "), "--check-image"},
		"bad installation":  {w.flags("--installation", "a b"), "installation"},
	}
	for name, c := range cases {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"hetzner", "check"}, c.args...), func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a usage error naming %s", name, err, c.want)
		}
	}
	if err := run(context.Background(), []string{"hetzner"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Errorf("hetzner without a subcommand: %v", err)
	}
	if n := w.fake.TotalRequests(); n != 0 {
		t.Errorf("requests made by invalid invocations: %d", n)
	}
}
