package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction/ghactiontest"
	"github.com/smek/action/internal/wire"
)

// TestMainStepFailures: every failure is one ::error:: annotation that
// says what is wrong, a failed step, and no cluster left behind.
func TestMainStepFailures(t *testing.T) {
	closed := httptest.NewServer(nil)
	closed.Close()

	tests := []struct {
		name   string
		inputs map[string]string
		setup  func(e *env)
		want   string
	}{
		{name: "no api-url", inputs: map[string]string{"api-url": ""}, want: "input api-url is required"},
		{name: "api-url without scheme", inputs: map[string]string{"api-url": "smek.example.com"}, want: "input api-url: api url \"smek.example.com\": scheme must be http or https"},
		{name: "unreachable server", inputs: map[string]string{"api-url": closed.URL}, want: "cannot reach the SMEK server at " + closed.URL},
		{name: "401 bad token", inputs: map[string]string{"token": "smek_revoked"}, want: "refused the credential (401 unauthorized): missing, invalid or revoked token"},
		{name: "403 privileged not allowed", inputs: map[string]string{"enable-privileged": "true"}, want: "not permitted (403 forbidden): enable-privileged: this account may not run privileged clusters"},
		{
			name: "429 parallel limit",
			setup: func(e *env) {
				e.api.MaxClusters = 1
				c, err := client.New(e.api.URL, testToken)
				if err != nil {
					e.t.Fatal(err)
				}
				if _, err := c.Create(e.t.Context(), wire.CreateRequest{}); err != nil {
					e.t.Fatal(err)
				}
			},
			want: "limit reached (429 limit): parallel-cluster limit of 1 reached",
		},
		{
			name:   "wait timeout",
			inputs: map[string]string{"wait": "10ms"},
			setup:  func(e *env) { e.api.PoolEmpty = true },
			want:   "no cluster became ready within the wait budget of 10ms (503 unavailable)",
		},
		{name: "minutes-to-live abc", inputs: map[string]string{"minutes-to-live": "abc"}, want: `input minutes-to-live: "abc" is not a whole number of minutes`},
		{name: "minutes-to-live 0", inputs: map[string]string{"minutes-to-live": "0"}, want: `input minutes-to-live: "0" must be at least 1`},
		{name: "keep-cluster yes", inputs: map[string]string{"keep-cluster": "yes"}, want: `input keep-cluster: "yes" is not a boolean (true or false)`},
		{name: "wait without unit", inputs: map[string]string{"wait": "90"}, want: `input wait: "90" has no unit; write it like 90s or 5m`},
		{name: "bad notification-email", inputs: map[string]string{"notification-email": "bob"}, want: `input notification-email: "bob" is not an email address`},
		{name: "unknown k8s-version", inputs: map[string]string{"k8s-version": "1.2.3"}, want: "rejected the request (400 invalid): k8s-version: unsupported version \"1.2.3\" (supported: 1.36.3, 1.27.4)"},
		{name: "no credential", inputs: map[string]string{"token": ""}, want: "no credential: set the token input"},
		{
			name:   "OIDC endpoint refuses",
			inputs: map[string]string{"token": ""},
			setup: func(e *env) {
				oidc := e.runner.StartOIDC()
				oidc.RequestToken = "ghs_other"
			},
			want: "get the job's OIDC token for audience",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			live := len(e.api.Live())
			main := e.mainStep(e.inputs(tt.inputs))
			if main.err == nil {
				t.Fatalf("main step succeeded; stdout:\n%s", main.stdout)
			}
			errs := annotations(main.stdout, "error")
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) {
				t.Errorf("::error:: annotations = %q, want one containing %q", errs, tt.want)
			}
			if len(main.res.Outputs)+len(main.res.Env)+len(main.res.State) != 0 {
				t.Errorf("failed step left outputs %v, env %v, state %v", main.res.Outputs, main.res.Env, main.res.State)
			}
			if got := len(e.api.Live()); got != live {
				t.Errorf("live clusters went from %d to %d", live, got)
			}
			if strings.Contains(main.stdout, "smek_revoked") && !strings.Contains(main.stdout, "::add-mask::smek_revoked") {
				t.Error("the token appears unmasked")
			}
		})
	}
}

func TestPostStep(t *testing.T) {
	closed := httptest.NewServer(nil)
	closed.Close()

	tests := []struct {
		name    string
		inputs  map[string]string
		state   map[string]string // overrides of the main step's state
		before  func(e *env, id string)
		want    string // in stdout
		warning string // the one ::warning::, or none
		status  string // of the cluster afterwards
	}{
		{name: "terminates", want: "Terminated cluster", status: "terminated"},
		{
			name: "already terminated",
			before: func(e *env, id string) {
				c, _ := client.New(e.api.URL, testToken)
				if _, err := c.Terminate(e.t.Context(), id); err != nil {
					e.t.Fatal(err)
				}
			},
			want: "is already gone", status: "terminated",
		},
		{name: "unknown cluster", state: map[string]string{stateClusterID: "c-gone00"}, want: "Cluster c-gone00 is already gone", status: "running"},
		{name: "keep-cluster", state: map[string]string{stateKeepCluster: "true"}, want: "Keeping cluster", status: "running"},
		{name: "server unreachable", inputs: map[string]string{"api-url": closed.URL}, warning: "cannot reach the SMEK server", status: "running"},
		{name: "token revoked", inputs: map[string]string{"token": "smek_revoked"}, warning: "refused the credential (401", status: "running"},
		{name: "no api-url", inputs: map[string]string{"api-url": ""}, warning: "input api-url is empty", status: "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			main := e.mainStep(e.inputs(nil))
			if main.err != nil {
				t.Fatal(main.err)
			}
			id := main.res.Outputs["cluster-id"]
			if tt.before != nil {
				tt.before(e, id)
			}
			post := e.postStep(e.inputs(tt.inputs), func(s *ghactiontest.Step) {
				for k, v := range tt.state {
					s.Set("STATE_"+k, v)
				}
			})
			if post.err != nil {
				t.Fatalf("post step failed the job: %v", post.err)
			}
			if tt.want != "" && !strings.Contains(post.stdout, tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, post.stdout)
			}
			warnings := annotations(post.stdout, "warning")
			switch {
			case tt.warning == "" && len(warnings) != 0:
				t.Errorf("warnings = %q, want none", warnings)
			case tt.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.warning)):
				t.Errorf("warnings = %q, want one containing %q", warnings, tt.warning)
			}
			if errs := annotations(post.stdout, "error"); len(errs) != 0 {
				t.Errorf("post step wrote errors: %q", errs)
			}
			if cl, _ := e.api.Cluster(id); cl.ClusterStatus != tt.status {
				t.Errorf("cluster is %s, want %s", cl.ClusterStatus, tt.status)
			}
		})
	}
}

func TestPostStepWithoutCluster(t *testing.T) {
	e := newEnv(t)
	post := e.postStep(e.inputs(nil))
	if post.err != nil || !strings.Contains(post.stdout, "nothing to clean up") {
		t.Errorf("post = %v, %q", post.err, post.stdout)
	}
	if calls := e.api.Calls(); len(calls) != 0 {
		t.Errorf("post step without a cluster called the server: %v", calls)
	}
}

// TestProgress: while the server holds the create, each tick prints a line.
func TestProgress(t *testing.T) {
	e := newEnv(t)
	e.api.Hold = make(chan struct{})
	e.api.Held = make(chan struct{})
	done := make(chan stepRun)
	go func() { done <- e.mainStep(e.inputs(map[string]string{"wait": "2m"})) }()
	<-e.api.Held
	e.ticks <- time.Time{} // received: the line is written before the step returns
	e.ticks <- time.Time{}
	close(e.api.Hold)
	main := <-done
	if main.err != nil {
		t.Fatal(main.err)
	}
	for _, want := range []string{"still waiting for a ready cluster: 10s of up to 2m0s", "still waiting for a ready cluster: 20s of up to 2m0s"} {
		if !strings.Contains(main.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, main.stdout)
		}
	}
	if !strings.Contains(main.res.Summary, "Waited for the pool") {
		t.Errorf("summary does not say the create waited:\n%s", main.res.Summary)
	}
}
