package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/ghaction/ghactiontest"
)

const testToken = "smek_testtoken0123456789"

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one simulated job against the fake API.
type env struct {
	t      *testing.T
	runner *ghactiontest.Runner
	api    *clienttest.Server
	// ticks drives progress lines; nothing ticks unless a test sends.
	ticks chan time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	api := clienttest.NewServer(testToken)
	t.Cleanup(api.Close)
	return &env{t: t, runner: ghactiontest.New(t), api: api, ticks: make(chan time.Time)}
}

// inputs are the usual inputs plus extra (an empty value removes one).
func (e *env) inputs(extra map[string]string) map[string]string {
	in := map[string]string{
		"api-url": e.api.URL,
		"token":   testToken,
		// action.yml's defaults, as the runner passes them.
		"keep-cluster":      "false",
		"enable-privileged": "false",
		"wait":              "5m",
		"job-id":            "51725241954", // ${{ job.check_run_id }}
	}
	for k, v := range extra {
		if v == "" {
			delete(in, k)
			continue
		}
		in[k] = v
	}
	return in
}

// program places the action in the simulated runner.
func (e *env) program(stdout, stderr *syncBuffer, getenv func(string) string) *program {
	p := newProgram(getenv, stdout, stderr)
	p.containerHome = e.runner.ContainerHome
	p.http = &http.Client{}
	p.ticker = func(time.Duration) (<-chan time.Time, func()) { return e.ticks, func() {} }
	return p
}

// stepRun is the outcome of one step.
type stepRun struct {
	err    error
	stdout string
	stderr string
	res    ghactiontest.Result
}

// mainStep runs the main step with inputs.
func (e *env) mainStep(inputs map[string]string, tweak ...func(*ghactiontest.Step)) stepRun {
	e.t.Helper()
	s := e.runner.ContainerStep(inputs)
	for _, f := range tweak {
		f(s)
	}
	var out, errOut syncBuffer
	err := e.program(&out, &errOut, s.Getenv).run(e.t.Context(), nil)
	return stepRun{err: err, stdout: out.String(), stderr: errOut.String(), res: s.Done()}
}

// postStep runs the post step with inputs.
func (e *env) postStep(inputs map[string]string, tweak ...func(*ghactiontest.Step)) stepRun {
	e.t.Helper()
	s := e.runner.PostStep(inputs)
	for _, f := range tweak {
		f(s)
	}
	var out, errOut syncBuffer
	err := e.program(&out, &errOut, s.Getenv).run(context.WithoutCancel(e.t.Context()), []string{"post"})
	return stepRun{err: err, stdout: out.String(), stderr: errOut.String(), res: s.Done()}
}

// annotations returns the lines of a workflow command (::error:: etc.).
func annotations(stdout, kind string) []string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "::"+kind+"::") {
			out = append(out, strings.TrimPrefix(l, "::"+kind+"::"))
		}
	}
	return out
}

func hostKubeconfig(r *ghactiontest.Runner, id string) string {
	return filepath.Join(r.HostTemp, "_github_home", ".kube", "smek-"+id+".yaml")
}
