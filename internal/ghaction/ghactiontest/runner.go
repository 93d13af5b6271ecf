// Package ghactiontest simulates the GitHub Actions runner around a Docker
// container action, for tests: per-step file-command files parsed the way
// the runner parses them (name=value and name<<DELIM heredocs), INPUT_*
// variables named as the runner names them, STATE_* for the post step, the
// job env carried to later steps, the /github/home mount (a directory
// reachable from the "host" side as $RUNNER_TEMP/_github_home), and an OIDC
// token endpoint.
//
// For a test that runs the action's real image, it also gives the runner's
// view of a container: the folders it mounts and the environment with host
// paths translated to container paths, as actions/runner's
// src/Runner.Worker/Handlers/ContainerActionHandler.cs (a container action)
// and src/Runner.Worker/ContainerOperationProvider.cs with
// Handlers/StepHost.cs (a `run:` step in a job container) do it.
package ghactiontest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Runner is one simulated job.
type Runner struct {
	t testing.TB
	// ContainerHome stands in for /github/home: pass it to the action as
	// its container home.
	ContainerHome string
	// HostWork is the runner's work folder (_work); HostTemp is under it.
	HostWork string
	// HostTemp is RUNNER_TEMP as the host sees it; HostTemp/_github_home
	// is the same directory as ContainerHome, like the runner's bind mount.
	HostTemp string
	// Workspace is GITHUB_WORKSPACE on the host.
	Workspace string
	// HostHome is $HOME of the host's steps.
	HostHome string
	// Base is the environment every step gets (GITHUB_*, RUNNER_*).
	Base map[string]string

	mu     sync.Mutex // guards the fields below
	jobEnv map[string]string
	state  map[string]string
	steps  int
}

// New sets up a job for repository octo-org/octo-repo, run 4242 attempt 2.
func New(t testing.TB) *Runner {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "host", "work")
	r := &Runner{
		t:             t,
		ContainerHome: filepath.Join(root, "container", "github", "home"),
		HostWork:      work,
		HostTemp:      filepath.Join(work, "_temp"),
		Workspace:     filepath.Join(work, "octo-repo", "octo-repo"),
		HostHome:      filepath.Join(root, "host", "home", "runner"),
		jobEnv:        map[string]string{},
		state:         map[string]string{},
	}
	dirs := []string{r.ContainerHome, r.HostTemp, r.HostHome, r.Workspace,
		filepath.Join(r.HostTemp, "_runner_file_commands"), filepath.Join(r.HostTemp, "_github_workflow")}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(r.ContainerHome, filepath.Join(r.HostTemp, "_github_home")); err != nil {
		t.Fatal(err)
	}
	r.Base = map[string]string{
		"CI":                   "true",
		"GITHUB_ACTIONS":       "true",
		"GITHUB_REPOSITORY":    "octo-org/octo-repo",
		"GITHUB_REPOSITORY_ID": "74",
		"GITHUB_RUN_ID":        "4242",
		"GITHUB_RUN_ATTEMPT":   "2",
		"GITHUB_JOB":           "e2e",
		"GITHUB_REF":           "refs/heads/main",
		"GITHUB_SHA":           "ffac537e6cbbf934b08745a378932722df287a53",
		"GITHUB_EVENT_NAME":    "push",
		"GITHUB_WORKFLOW_REF":  "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"GITHUB_ACTOR":         "octocat",
		"RUNNER_NAME":          "GitHub Actions 7",
		"RUNNER_OS":            "Linux",
		"RUNNER_TEMP":          r.HostTemp,
		"GITHUB_WORKSPACE":     r.Workspace,
	}
	return r
}

// SetEvent writes the event payload and points GITHUB_EVENT_PATH at it.
func (r *Runner) SetEvent(name string, payload []byte) {
	p := filepath.Join(r.HostTemp, "_github_workflow", "event.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, payload, 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.Base["GITHUB_EVENT_NAME"] = name
	r.Base["GITHUB_EVENT_PATH"] = p
}

// Step is one step of the job with its own file-command files.
type Step struct {
	r     *Runner
	env   map[string]string
	files map[string]string // GITHUB_OUTPUT etc. → path
}

// InputEnv returns the variable the runner sets for an action input:
// upper-cased, spaces to underscores, hyphens kept (api-url → INPUT_API-URL).
func InputEnv(name string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))
}

// ContainerStep starts the action's main step: HOME is the container
// home, inputs arrive as INPUT_*.
func (r *Runner) ContainerStep(inputs map[string]string) *Step {
	s := r.step()
	s.env["HOME"] = r.ContainerHome
	for k, v := range inputs {
		s.env[InputEnv(k)] = v
	}
	return s
}

// PostStep starts the action's post step: like ContainerStep, plus the
// state the main step saved as STATE_<name>.
func (r *Runner) PostStep(inputs map[string]string) *Step {
	s := r.ContainerStep(inputs)
	r.mu.Lock()
	for k, v := range r.state {
		s.env["STATE_"+k] = v
	}
	r.mu.Unlock()
	return s
}

// HostStep starts a `run:` step on the host: HOME is the host's, and the
// job env from earlier steps' GITHUB_ENV applies.
func (r *Runner) HostStep() *Step {
	s := r.step()
	s.env["HOME"] = r.HostHome
	return s
}

func (r *Runner) step() *Step {
	r.mu.Lock()
	r.steps++
	n := r.steps
	env := maps.Clone(r.Base)
	maps.Copy(env, r.jobEnv)
	r.mu.Unlock()
	s := &Step{r: r, env: env, files: map[string]string{}}
	dir := filepath.Join(r.HostTemp, "_runner_file_commands")
	// Named like the runner's (FileCommandManager.cs), a fresh suffix per
	// step.
	for kind, prefix := range map[string]string{
		"GITHUB_OUTPUT": "set_output_", "GITHUB_ENV": "set_env_", "GITHUB_STATE": "save_state_",
		"GITHUB_STEP_SUMMARY": "step_summary_", "GITHUB_PATH": "add_path_",
	} {
		p := filepath.Join(dir, fmt.Sprintf("%s%d", prefix, n))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			r.t.Fatal(err)
		}
		s.files[kind] = p
		s.env[kind] = p
	}
	return s
}

// Set sets a variable for this step only.
func (s *Step) Set(k, v string) { s.env[k] = v }

// Unset removes a variable for this step.
func (s *Step) Unset(k string) { delete(s.env, k) }

// Getenv is the step's environment.
func (s *Step) Getenv(k string) string { return s.env[k] }

// Environ is the step's environment as KEY=value pairs, for exec.
func (s *Step) Environ() []string {
	var out []string
	for k, v := range s.env {
		out = append(out, k+"="+v)
	}
	return out
}

// Mount is a host folder bound into a container.
type Mount struct {
	Host, Container string
}

// ActionMounts are the folders the runner mounts into a container action,
// in its order (ContainerActionHandler.cs); it mounts
// /var/run/docker.sock too, which the action does not use.
func (r *Runner) ActionMounts() []Mount {
	return []Mount{
		{filepath.Join(r.HostTemp, "_github_home"), "/github/home"},
		{filepath.Join(r.HostTemp, "_github_workflow"), "/github/workflow"},
		{filepath.Join(r.HostTemp, "_runner_file_commands"), "/github/file_commands"},
		{r.Workspace, "/github/workspace"},
	}
}

// JobContainerMounts are the folders of a job container (`container:` in
// the workflow) that matter here: the work folder at /__w, and the job's
// home and workflow folders again at /github/home and /github/workflow
// (ContainerOperationProvider.cs).
func (r *Runner) JobContainerMounts() []Mount {
	return []Mount{
		{r.HostWork, "/__w"},
		{filepath.Join(r.HostTemp, "_github_home"), "/github/home"},
		{filepath.Join(r.HostTemp, "_github_workflow"), "/github/workflow"},
	}
}

// ContainerEnv is the step's environment as the runner hands it to a
// container action: HOME is the job's home, and every value that is a path
// under a mounted folder becomes the container's path
// (ContainerInfo.TranslateToContainerPath); RUNNER_TEMP, a parent of the
// mounts, stays the host's.
func (s *Step) ContainerEnv() map[string]string {
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = translate(s.r.ActionMounts(), v)
	}
	// The runner sets HOME to $RUNNER_TEMP/_github_home before it
	// translates.
	env["HOME"] = "/github/home"
	return env
}

// JobContainerEnv is the environment of a `run:` step in a job container:
// the runner execs it in the container with every value translated, the
// job's home and workflow folders first (StepHost.cs, ContainerStepHost).
func (s *Step) JobContainerEnv() map[string]string {
	env := map[string]string{}
	mounts := s.r.JobContainerMounts()
	// AddPathTranslateMapping puts the home and workflow mappings before
	// the work folder, which holds them.
	order := []Mount{mounts[1], mounts[2], mounts[0]}
	for k, v := range s.env {
		env[k] = translate(order, v)
	}
	return env
}

// translate maps a host path under one of mounts to the container's path,
// the first mount that holds it winning; anything else is left alone.
func translate(mounts []Mount, v string) string {
	for _, m := range mounts {
		if v == m.Host {
			return m.Container
		}
		if rest, ok := strings.CutPrefix(v, m.Host+"/"); ok {
			return m.Container + "/" + rest
		}
	}
	return v
}

// Result is what the runner took from a finished step.
type Result struct {
	Outputs map[string]string
	Env     map[string]string
	State   map[string]string
	Summary string
	// Path are the folders the step added to PATH for later steps, in
	// the order written (GITHUB_PATH).
	Path []string
}

// Done reads the step's file commands as the runner does after the step:
// env joins the job env, state is kept for the post step.
func (s *Step) Done() Result {
	s.r.t.Helper()
	res := Result{
		Outputs: s.parse("GITHUB_OUTPUT"),
		Env:     s.parse("GITHUB_ENV"),
		State:   s.parse("GITHUB_STATE"),
	}
	b, err := os.ReadFile(s.files["GITHUB_STEP_SUMMARY"])
	if err != nil {
		s.r.t.Fatal(err)
	}
	res.Summary = string(b)
	if b, err = os.ReadFile(s.files["GITHUB_PATH"]); err != nil {
		s.r.t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			res.Path = append(res.Path, l)
		}
	}
	s.r.mu.Lock()
	maps.Copy(s.r.jobEnv, res.Env)
	maps.Copy(s.r.state, res.State)
	s.r.mu.Unlock()
	return res
}

func (s *Step) parse(kind string) map[string]string {
	s.r.t.Helper()
	f, err := os.Open(s.files[kind])
	if err != nil {
		s.r.t.Fatal(err)
	}
	defer f.Close()
	m, err := ParseFileCommands(f)
	if err != nil {
		s.r.t.Fatalf("%s: %v", kind, err)
	}
	return m
}

// ParseFileCommands reads a file-command file as the runner does: lines
// `name=value`, or `name<<DELIM` followed by value lines up to a line that
// is exactly DELIM. A heredoc without its end is an error, as in the runner.
func ParseFileCommands(f io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		eq := strings.Index(line, "=")
		hd := strings.Index(line, "<<")
		switch {
		case eq >= 0 && (hd < 0 || eq < hd):
			name := line[:eq]
			if name == "" {
				return nil, fmt.Errorf("invalid format %q: name is empty", line)
			}
			out[name] = line[eq+1:]
		case hd > 0:
			name, delim := line[:hd], line[hd+2:]
			if delim == "" {
				return nil, fmt.Errorf("invalid format %q: delimiter is empty", line)
			}
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("invalid value of %q: matching delimiter %q not found", name, delim)
			}
			out[name] = strings.Join(val, "\n")
		default:
			return nil, fmt.Errorf("invalid format %q", line)
		}
	}
	return out, sc.Err()
}

// OIDC is a fake of the runner's ID-token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL): it checks the request token and answers
// {"value": "<jwt>"} with the requested audience in the token.
type OIDC struct {
	*httptest.Server
	RequestToken string
	// Mint makes the token for an audience; default JWT. Set it to sign
	// tokens a real verifier accepts.
	Mint func(aud string) string

	mu        sync.Mutex
	audiences []string
}

// StartOIDC starts the endpoint and gives the job `id-token: write`: every
// later step gets ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN.
func (r *Runner) StartOIDC() *OIDC {
	o := &OIDC{RequestToken: "ghs_requesttoken"}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	r.t.Cleanup(o.Close)
	// The real URL carries a query already; the client appends &audience=.
	r.Base["ACTIONS_ID_TOKEN_REQUEST_URL"] = o.URL + "/_apis/distributedtask/token?api-version=2.0"
	r.Base["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = o.RequestToken
	return o
}

// Audiences returns the audiences requested so far.
func (o *OIDC) Audiences() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.audiences...)
}

func (o *OIDC) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+o.RequestToken {
		http.Error(w, `{"message":"bad request token"}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		http.Error(w, `{"message":"api-version missing"}`, http.StatusBadRequest)
		return
	}
	aud := r.URL.Query().Get("audience")
	o.mu.Lock()
	o.audiences = append(o.audiences, aud)
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	mint := o.Mint
	if mint == nil {
		mint = JWT
	}
	json.NewEncoder(w).Encode(map[string]string{"value": mint(aud)})
}

// JWT is the (unsigned-looking) token the fake endpoint hands out for aud:
// header and claims shaped like GitHub's, a fake signature.
func JWT(aud string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	header := map[string]string{"typ": "JWT", "alg": "RS256", "kid": "example-key-id"}
	claims := map[string]any{
		"iss": "https://token.actions.githubusercontent.com", "aud": aud,
		"sub": "repo:octo-org/octo-repo:ref:refs/heads/main", "repository": "octo-org/octo-repo",
		"repository_id": "74", "run_id": "4242", "run_attempt": "2",
	}
	return enc(header) + "." + enc(claims) + ".c2lnbmF0dXJl"
}
