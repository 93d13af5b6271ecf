package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction/ghactiontest"
	"github.com/smek/action/internal/smektest"
)

// e2e is a job against a real SMEK server (local backend, warm pool).
type e2e struct {
	srv    *smektest.SMEK
	token  string
	runner *ghactiontest.Runner
}

func startE2E(t testing.TB, poolSize int) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Kubernetes control planes")
	}
	srv := smektest.Start(t, smektest.Options{PoolSize: poolSize})
	srv.WaitReady(poolSize, false)
	return &e2e{srv: srv, token: srv.Token("ci", smektest.TokenOptions{}), runner: ghactiontest.New(t)}
}

func (e *e2e) program(t testing.TB, s *ghactiontest.Step, stdout *syncBuffer) *program {
	p := newProgram(s.Getenv, stdout, stdout)
	p.containerHome = e.runner.ContainerHome
	p.http = &http.Client{}
	return p
}

func (e *e2e) inputs() map[string]string {
	return map[string]string{"api-url": e.srv.URL, "token": e.token, "keep-cluster": "false", "wait": "2m", "minutes-to-live": "10"}
}

// TestEndToEnd: the main step gets a cluster from a real server, a later
// host step uses it with kubectl through the exported KUBECONFIG, the post
// step ends it.
func TestEndToEnd(t *testing.T) {
	e := startE2E(t, 1)
	kubectl := filepath.Join(smektest.KubeBin(t), "kubectl")

	main := e.runner.ContainerStep(e.inputs())
	var out syncBuffer
	if err := e.program(t, main, &out).run(t.Context(), nil); err != nil {
		t.Fatalf("main step: %v\n%s", err, out.String())
	}
	res := main.Done()
	id := res.Outputs["cluster-id"]
	if !strings.HasPrefix(res.Env["KUBECONFIG"], e.runner.HostTemp) {
		t.Errorf("KUBECONFIG = %q, want a host path under %s", res.Env["KUBECONFIG"], e.runner.HostTemp)
	}
	if strings.Contains(out.String(), e.token) && !strings.Contains(out.String(), "::add-mask::"+e.token) {
		t.Error("token printed unmasked")
	}

	// A `run:` step on the host: kubectl with the job's env.
	host := e.runner.HostStep()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", host.Getenv("KUBECONFIG"), "get", "ns", "-o", "name")
	cmd.Env = host.Environ()
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get ns: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), "namespace/default") {
		t.Errorf("kubectl get ns = %q, want namespace/default", got)
	}
	// Plain `kubectl` finds it through KUBECONFIG alone.
	cmd = exec.CommandContext(ctx, kubectl, "config", "current-context")
	cmd.Env = host.Environ()
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), id) {
		t.Errorf("kubectl config current-context = %q, %v; want the cluster id %s in it", got, err, id)
	}
	host.Done()

	// The server kept the run's metadata, which the App's cleanup matches on.
	c, err := client.New(e.srv.URL, e.token)
	if err != nil {
		t.Fatal(err)
	}
	byRun, err := c.List(t.Context(), client.ListOptions{RepositoryID: 74, RunID: 4242, RunAttempt: 2})
	if err != nil || len(byRun) != 1 || byRun[0].ClusterID != id {
		t.Fatalf("list by run = %+v, %v; want [%s]", byRun, err, id)
	}
	if r := byRun[0].Run; r == nil || r.Repository != "octo-org/octo-repo" || r.Job != "e2e" || r.RunnerName != "GitHub Actions 7" {
		t.Errorf("run metadata on the server = %+v", r)
	}

	// The CLI speaks the real API too.
	cli := func(args ...string) string {
		t.Helper()
		var stdout, stderr syncBuffer
		getenv := func(k string) string {
			return map[string]string{"SMEK_API_URL": e.srv.URL, "SMEK_TOKEN": e.token, "HOME": e.runner.HostHome}[k]
		}
		if err := run(t.Context(), args, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("smek %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	if out := cli("list"); !strings.Contains(out, id) || !strings.Contains(out, "octo-org/octo-repo#4242") {
		t.Errorf("smek list = %q", out)
	}
	if out := cli("kubeconfig", id); !strings.HasPrefix(out, "apiVersion: v1") || !strings.Contains(out, id) {
		t.Errorf("smek kubeconfig printed %d bytes without the cluster id", len(out))
	}
	if out := cli("extend", id, "--minutes", "5"); !strings.Contains(out, "Extended "+id) {
		t.Errorf("smek extend = %q", out)
	}

	post := e.runner.PostStep(e.inputs())
	out = syncBuffer{}
	if err := e.program(t, post, &out).run(t.Context(), []string{"post"}); err != nil {
		t.Fatalf("post step: %v", err)
	}
	if w := annotations(out.String(), "warning"); len(w) != 0 {
		t.Errorf("post step warnings: %q", w)
	}
	cl, err := c.Get(t.Context(), id)
	if err != nil && !client.IsNotFound(err) {
		t.Fatal(err)
	}
	if err == nil && cl.ClusterStatus != "terminated" && cl.ClusterStatus != "terminating" {
		t.Errorf("after the post step cluster %s is %s, want it gone", id, cl.ClusterStatus)
	}
	if _, err := os.Stat(res.Env["KUBECONFIG"]); !os.IsNotExist(err) {
		t.Errorf("kubeconfig left on the host: %v", err)
	}
}

// BenchmarkMainStep is the wall time of the action's main step against a
// warm pool: inputs, credential, create, kubeconfig written, outputs. The
// pool's refill and the post step are outside the timer.
func BenchmarkMainStep(b *testing.B) {
	e := startE2E(b, 1)
	for b.Loop() {
		main := e.runner.ContainerStep(e.inputs())
		var out syncBuffer
		if err := e.program(b, main, &out).run(b.Context(), nil); err != nil {
			b.Fatalf("main step: %v\n%s", err, out.String())
		}
		b.StopTimer()
		main.Done()
		post := e.runner.PostStep(e.inputs())
		if err := e.program(b, post, &out).run(b.Context(), []string{"post"}); err != nil {
			b.Fatal(err)
		}
		post.Done()
		e.srv.WaitReady(1, false)
		b.StartTimer()
	}
}

// newRunnerWithOIDC is a job with `id-token: write` whose token endpoint
// hands out tokens signed by is.
func newRunnerWithOIDC(t *testing.T, is *issuer) *ghactiontest.Runner {
	r := ghactiontest.New(t)
	r.StartOIDC().Mint = is.mint
	return r
}
