package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/ghaction/ghactiontest"
	"github.com/smek/action/internal/wire"
)

func TestMainAndPostStep(t *testing.T) {
	e := newEnv(t)
	in := e.inputs(map[string]string{"minutes-to-live": "30", "k8s-version": "1.36.3"})

	main := e.mainStep(in)
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	id := main.res.Outputs["cluster-id"]
	cl, ok := e.api.Cluster(id)
	if !ok || cl.ClusterStatus != "running" {
		t.Fatalf("output cluster-id %q: server has %+v", id, cl)
	}

	// Outputs and KUBECONFIG name the host path.
	hostPath := hostKubeconfig(e.runner, id)
	want := map[string]string{
		"cluster-id": id,
		"kubeconfig": hostPath,
		"api-server": cl.APIServer,
		"expires-at": cl.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"),
	}
	for k, v := range want {
		if got := main.res.Outputs[k]; got != v {
			t.Errorf("output %s = %q, want %q", k, got, v)
		}
	}
	if got := main.res.Env["KUBECONFIG"]; got != hostPath {
		t.Errorf("KUBECONFIG = %q, want the host path %q", got, hostPath)
	}
	if got := main.res.State[stateClusterID]; got != id {
		t.Errorf("state %s = %q, want %q", stateClusterID, got, id)
	}

	// The file is in the mounted home, private.
	inContainer := filepath.Join(e.runner.ContainerHome, ".kube", "smek-"+id+".yaml")
	fi, err := os.Stat(inContainer)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", fi.Mode().Perm())
	}

	// The request carried the inputs and the run's metadata.
	create := createCall(t, e.api)
	if *create.MinutesToLive != 30 || *create.K8sVersion != "1.36.3" || *create.KeepCluster || *create.Wait != "5m0s" {
		t.Errorf("create request = %+v", create)
	}
	wantRun := wire.RunMetadata{
		Repository: "octo-org/octo-repo", RepositoryID: 74, RunID: 4242, RunAttempt: 2, Job: "e2e", JobID: 51725241954,
		RunnerName: "GitHub Actions 7", Ref: "refs/heads/main", SHA: "ffac537e6cbbf934b08745a378932722df287a53",
		Event: "push", WorkflowRef: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main", Actor: "octocat",
	}
	if create.Run == nil || *create.Run != wantRun {
		t.Errorf("run metadata = %+v, want %+v", create.Run, wantRun)
	}

	// Secrets are masked before anything could print them.
	masks := annotations(main.stdout, "add-mask")
	for _, secret := range []string{testToken, clienttest.TenantToken(id)} {
		if !slices.Contains(masks, secret) {
			t.Errorf("%q is not masked; masks: %q", secret, masks)
		}
		if n := strings.Count(main.stdout, secret); n != 1 {
			t.Errorf("%q appears %d times in the log, want only in its add-mask", secret, n)
		}
	}

	// The summary shows the cluster, its version, expiry and timings.
	for _, s := range []string{id, "1.36.3", want["expires-at"], "| queued |", "| **total** |", "warm pool"} {
		if !strings.Contains(main.res.Summary, s) {
			t.Errorf("summary lacks %q:\n%s", s, main.res.Summary)
		}
	}

	// A later host step finds the kubeconfig at KUBECONFIG.
	host := e.runner.HostStep()
	b, err := os.ReadFile(host.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatalf("host step reads KUBECONFIG: %v", err)
	}
	if string(b) != clienttest.Kubeconfig(id, cl.APIServer) {
		t.Errorf("kubeconfig on the host = %q", b)
	}
	host.Done()

	post := e.postStep(in)
	if post.err != nil || len(annotations(post.stdout, "warning")) != 0 {
		t.Fatalf("post step: %v\n%s", post.err, post.stdout)
	}
	if cl, _ := e.api.Cluster(id); cl.ClusterStatus != "terminated" {
		t.Errorf("after the post step the cluster is %s, want terminated", cl.ClusterStatus)
	}
	if _, err := os.Stat(inContainer); !os.IsNotExist(err) {
		t.Errorf("kubeconfig still there after the post step: %v", err)
	}
}

// createCall returns the body of the one create the fake saw.
func createCall(t *testing.T, api *clienttest.Server) wire.CreateRequest {
	t.Helper()
	var creates []wire.CreateRequest
	for _, c := range api.Calls() {
		if c.Create != nil {
			creates = append(creates, *c.Create)
		}
	}
	if len(creates) != 1 {
		t.Fatalf("server saw %d creates, want 1", len(creates))
	}
	return creates[0]
}

func TestOutsideContainer(t *testing.T) {
	e := newEnv(t)
	if err := os.Remove(e.runner.ContainerHome); err != nil {
		t.Fatal(err)
	}
	main := e.mainStep(e.inputs(nil), func(s *ghactiontest.Step) { s.Set("HOME", e.runner.HostHome) })
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	want := filepath.Join(e.runner.HostHome, ".kube", "smek-"+main.res.Outputs["cluster-id"]+".yaml")
	if got := main.res.Env["KUBECONFIG"]; got != want {
		t.Errorf("KUBECONFIG = %q, want %q", got, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Error(err)
	}
}

func TestPullRequestMetadata(t *testing.T) {
	e := newEnv(t)
	e.runner.SetEvent("pull_request", []byte(`{"action":"synchronize","number":7,"pull_request":{"number":7}}`))
	if main := e.mainStep(e.inputs(nil)); main.err != nil {
		t.Fatal(main.err)
	}
	if create := createCall(t, e.api); create.Run.PullRequest != 7 || create.Run.Event != "pull_request" {
		t.Errorf("run = %+v, want pull request 7", create.Run)
	}
}

func TestOIDC(t *testing.T) {
	for _, tt := range []struct {
		name, audienceInput, wantAudience string
	}{
		{"default audience is the server's origin", "", ""},
		{"audience input", "smek-ci", "smek-ci"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			oidc := e.runner.StartOIDC()
			want := tt.wantAudience
			if want == "" {
				want = e.api.URL // http://127.0.0.1:port, no path
			}
			jwt := ghactiontest.JWT(want)
			e.api.Tokens = []string{jwt}
			in := e.inputs(map[string]string{"token": "", "oidc-audience": tt.audienceInput})

			main := e.mainStep(in)
			if main.err != nil {
				t.Fatalf("main step: %v\n%s", main.err, main.stdout)
			}
			if !slices.Contains(annotations(main.stdout, "add-mask"), jwt) {
				t.Error("the OIDC token is not masked")
			}
			if post := e.postStep(in); post.err != nil || len(annotations(post.stdout, "warning")) != 0 {
				t.Fatalf("post step: %v\n%s", post.err, post.stdout)
			}
			if got := oidc.Audiences(); !slices.Equal(got, []string{want, want}) {
				t.Errorf("audiences requested = %q, want %q for the main and the post step", got, want)
			}
			if live := e.api.Live(); len(live) != 0 {
				t.Errorf("live clusters after the post step: %v", live)
			}
			for _, c := range e.api.Calls() {
				if c.Bearer != jwt {
					t.Errorf("%s %s sent bearer %q, want the OIDC token", c.Method, c.Path, c.Bearer)
				}
			}
		})
	}
}

func TestTokenWinsOverOIDC(t *testing.T) {
	e := newEnv(t)
	oidc := e.runner.StartOIDC()
	if main := e.mainStep(e.inputs(nil)); main.err != nil {
		t.Fatal(main.err)
	}
	if got := oidc.Audiences(); len(got) != 0 {
		t.Errorf("the action asked for an OIDC token although the token input was set")
	}
}

func TestStateFailureEndsTheCluster(t *testing.T) {
	e := newEnv(t)
	main := e.mainStep(e.inputs(nil), func(s *ghactiontest.Step) { s.Set("GITHUB_STATE", filepath.Join(t.TempDir(), "missing", "state")) })
	if main.err == nil {
		t.Fatal("main step succeeded without a place for its state")
	}
	if live := e.api.Live(); len(live) != 0 {
		t.Errorf("live clusters = %v; a cluster the post step cannot find must be ended at once", live)
	}
}

// The job's id comes from the job-id input (job.check_run_id): a value
// that is not one is left out with a warning, never a failed step, and an
// empty one (GitHub Enterprise Server) is simply not sent.
func TestJobIDInput(t *testing.T) {
	for _, tt := range []struct {
		value   string
		want    int64
		warning bool
	}{{"51725241954", 51725241954, false}, {"", 0, false}, {"not-a-job", 0, true}, {"-4", 0, true}} {
		t.Run(tt.value, func(t *testing.T) {
			e := newEnv(t)
			in := e.inputs(nil)
			in["job-id"] = tt.value
			main := e.mainStep(in)
			if main.err != nil {
				t.Fatalf("main step: %v\n%s", main.err, main.stdout)
			}
			if create := createCall(t, e.api); create.Run == nil || create.Run.JobID != tt.want {
				t.Fatalf("run metadata %+v, want job id %d", create.Run, tt.want)
			}
			warned := slices.ContainsFunc(annotations(main.stdout, "warning"), func(w string) bool { return strings.Contains(w, "job-id") })
			if warned != tt.warning {
				t.Fatalf("warning about job-id: %t, want %t\n%s", warned, tt.warning, main.stdout)
			}
		})
	}
}
