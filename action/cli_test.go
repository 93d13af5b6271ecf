package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/wire"
)

// cliEnv is a shell: SMEK_API_URL, SMEK_TOKEN and a HOME.
type cliEnv struct {
	t    *testing.T
	api  *clienttest.Server
	vars map[string]string
}

func newCLI(t *testing.T) *cliEnv {
	api := clienttest.NewServer(testToken)
	t.Cleanup(api.Close)
	return &cliEnv{t: t, api: api, vars: map[string]string{
		"SMEK_API_URL": api.URL,
		"SMEK_TOKEN":   testToken,
		"HOME":         t.TempDir(),
	}}
}

func (c *cliEnv) run(args ...string) (stdout, stderr string, err error) {
	var out, errOut syncBuffer
	err = run(c.t.Context(), args, func(k string) string { return c.vars[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func (c *cliEnv) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("smek %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestCLILifecycle(t *testing.T) {
	c := newCLI(t)
	out := c.ok("create", "--minutes-to-live", "20", "--keep-cluster", "true")
	id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	path := filepath.Join(c.vars["HOME"], ".kube", "smek-"+id+".yaml")
	if got := lineWith(out, "export KUBECONFIG="); got != "export KUBECONFIG="+path {
		t.Errorf("stdout = %q, want export KUBECONFIG=%s", out, path)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != clienttest.Kubeconfig(id, "https://127.0.0.1:6443") {
		t.Errorf("kubeconfig file: %q, %v", b, err)
	}
	if strings.Contains(out, clienttest.TenantToken(id)) {
		t.Error("create printed the kubeconfig's token")
	}

	if out := c.ok("list"); !strings.Contains(out, id) || !strings.Contains(out, "running") {
		t.Errorf("list = %q", out)
	}
	var list wire.ClusterList
	if err := json.Unmarshal([]byte(c.ok("list", "--output", "json", "--status", "running")), &list); err != nil || len(list.Clusters) != 1 {
		t.Errorf("list json = %+v, %v", list, err)
	}
	if out := c.ok("kubeconfig", id); out != clienttest.Kubeconfig(id, "https://127.0.0.1:6443") {
		t.Errorf("kubeconfig = %q", out)
	}
	if out := c.ok("extend", id, "--minutes", "15"); !strings.Contains(out, "Extended "+id) {
		t.Errorf("extend = %q", out)
	}
	if out := c.ok("stop", id); !strings.Contains(out, "Stopped "+id+": stopped") {
		t.Errorf("stop = %q", out)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("start", id); out != "export KUBECONFIG="+path+"\n" {
		t.Errorf("start = %q", out)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("start did not write the fresh kubeconfig: %v", err)
	}
	var got wire.Cluster
	if err := json.Unmarshal([]byte(c.ok("get", "--output", "json", id)), &got); err != nil || got.ClusterID != id || got.Kubeconfig != "" {
		t.Errorf("get json = %+v, %v", got, err)
	}
	// Flags after the id work too.
	if out := c.ok("stop", id, "--force-terminate"); !strings.Contains(out, ": terminated") {
		t.Errorf("stop --force-terminate = %q", out)
	}
	_, errOut, err := c.run("terminate", id)
	if err == nil || !strings.Contains(errOut, "409") {
		t.Errorf("terminate of a terminated cluster: %v, %q; want the 409", err, errOut)
	}
	if out := c.ok("versions"); !strings.Contains(out, "1.36.3") {
		t.Errorf("versions = %q", out)
	}
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestCLIKubeconfigToStdout(t *testing.T) {
	c := newCLI(t)
	out := c.ok("create", "--kubeconfig", "-")
	if !strings.HasPrefix(out, "apiVersion: v1\n") || !strings.Contains(out, "export SMEK_CLUSTER_ID=") || strings.Contains(out, "export KUBECONFIG") {
		t.Errorf("stdout = %q", out)
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		unset     string
		wantUsage bool
		want      string
	}{
		{"unknown command", []string{"destroy"}, "", true, `unknown command "destroy"`},
		{"missing id", []string{"stop"}, "", true, "stop takes one cluster id"},
		{"extra argument", []string{"list", "x"}, "", true, "list takes no arguments"},
		{"unknown flag", []string{"list", "--colour"}, "", true, "flag provided but not defined: -colour"},
		{"bad output", []string{"list", "--output", "xml"}, "", true, `--output: "xml" is not text or json`},
		{"no server", []string{"list"}, "SMEK_API_URL", true, "no server: set SMEK_API_URL or --api-url"},
		{"no token", []string{"list"}, "SMEK_TOKEN", false, "refused the credential (401"},
		{"bad minutes", []string{"create", "--minutes-to-live", "abc"}, "", false, `--minutes-to-live: "abc" is not a whole number of minutes`},
		{"extend without minutes", []string{"extend", "c-abc123"}, "", true, "--minutes: 0 must be at least 1"},
		{"unknown cluster", []string{"get", "c-nope00"}, "", false, "404 not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			delete(c.vars, tt.unset)
			_, errOut, err := c.run(tt.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if errors.Is(err, errUsage) != tt.wantUsage {
				t.Errorf("usage error = %v, want %v (%v)", errors.Is(err, errUsage), tt.wantUsage, err)
			}
			if !strings.Contains(errOut, "smek: ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.want)
			}
		})
	}
}

func TestCLIHelp(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"--help"}, {"help"}} {
		out, _, err := c.run(args...)
		if err != nil || !strings.Contains(out, "Commands:") {
			t.Errorf("%v: %v, %q", args, err, out)
		}
	}
	_, errOut, err := c.run("create", "--help")
	if err != nil || !strings.Contains(errOut, "-minutes-to-live") {
		t.Errorf("create --help: %v, %q", err, errOut)
	}
}

// TestCLIVersion: the version stamped in at build time, with no server
// needed, so that an installation can be checked.
func TestCLIVersion(t *testing.T) {
	c := newCLI(t)
	delete(c.vars, "SMEK_API_URL")
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := c.run(args...)
		if err != nil || out != "smek dev\n" {
			t.Errorf("smek %s = %q, %v; want \"smek dev\"", args[0], out, err)
		}
	}
}

// TestCLIInGitHubActions: run in a GitHub Actions job (a macOS or Windows
// runner, a job container), the CLI sends the run's metadata as the action
// does, so that the SMEK App ends the cluster with the run.
func TestCLIInGitHubActions(t *testing.T) {
	c := newCLI(t)
	event := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(event, []byte(`{"pull_request":{"number":7}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/octo-repo", "GITHUB_REPOSITORY_ID": "74",
		"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "e2e", "RUNNER_NAME": "GitHub Actions 9",
		"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": event,
	} {
		c.vars[k] = v
	}
	out, errOut, err := c.run("create", "--keep-cluster", "false")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errOut)
	}
	if strings.Contains(errOut, "warning") {
		t.Errorf("stderr = %q, want no warnings", errOut)
	}
	id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	cl, ok := c.api.Cluster(id)
	if !ok || cl.Run == nil {
		t.Fatalf("cluster %s on the server: %+v, want run metadata", id, cl)
	}
	if r := *cl.Run; r.Repository != "octo-org/octo-repo" || r.RepositoryID != 74 || r.RunID != 4242 || r.RunAttempt != 2 || r.PullRequest != 7 || r.RunnerName != "GitHub Actions 9" {
		t.Errorf("run metadata = %+v", r)
	}

	// An unreadable event payload is a warning, not a failure.
	c.vars["GITHUB_EVENT_PATH"] = filepath.Join(t.TempDir(), "missing.json")
	if _, errOut, err := c.run("create"); err != nil || !strings.Contains(errOut, "smek: warning: read the event payload") {
		t.Errorf("create with a missing event payload: %v, stderr %q; want success and a warning", err, errOut)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/u/.kube/smek-c-abc.yaml": "/home/u/.kube/smek-c-abc.yaml",
		"/home/my user/x":               "'/home/my user/x'",
		"it's":                          `'it'\''s'`,
		"$(rm -rf /)":                   "'$(rm -rf /)'",
		"":                              "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestProgramArgs(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{[]string{"/smek"}, ""},
		{[]string{"/smek", "post"}, "post"},
		{[]string{"/smek-post"}, "post"},
		{[]string{"/usr/local/bin/smek", "list", "--output", "json"}, "list --output json"},
	} {
		if got := strings.Join(programArgs(tt.argv), " "); got != tt.want {
			t.Errorf("programArgs(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

func TestNoCommandOutsideActions(t *testing.T) {
	c := newCLI(t)
	_, errOut, err := c.run()
	if !errors.Is(err, errUsage) || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no arguments outside GitHub Actions: %v, %q; want the usage", err, errOut)
	}
	if calls := c.api.Calls(); len(calls) != 0 {
		t.Errorf("called the server: %v", calls)
	}
}

func TestCLIStartOfHibernatedClusterSaysItRestores(t *testing.T) {
	c := newCLI(t)
	out := c.ok("create", "--keep-cluster", "true")
	id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	c.ok("stop", id)
	if !c.api.Hibernate(id, 2.5) {
		t.Fatal("the fake did not hibernate the cluster")
	}
	if out := c.ok("list"); !strings.Contains(out, "hibernated") {
		t.Errorf("list of a hibernated cluster = %q, want it hibernated", out)
	}
	_, errOut, err := c.run("start", id)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"is hibernated (stopped for long, its server kept as a 2.5 GB snapshot): restoring it takes a few minutes",
		"restoring " + id + ": creating a server from the snapshot",
		"restoring " + id + ": the cluster is ready; its address changed",
		"Restored " + id + " from its snapshot in 3m0s; its API server is https://127.0.0.2:6443 now",
		"Started " + id,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr of the start misses %q:\n%s", want, errOut)
		}
	}
	if strings.Count(errOut, "creating a server from the snapshot") != 1 {
		t.Errorf("a restore step printed more than once:\n%s", errOut)
	}
}
