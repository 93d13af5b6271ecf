package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/client/clienttest"
)

// The post step collects the cluster's diagnostics before it ends the
// cluster when the diagnostics input asks for them (on-failure by
// default): into the job's home, which later steps and the runner see
// under RUNNER_TEMP, with the failing pods in the job summary.
func TestPostStepDiagnostics(t *testing.T) {
	for _, tt := range []struct {
		mode, status string
		want         bool
	}{
		{"", "failure", true},
		{"on-failure", "failure", true},
		{"on-failure", "success", false},
		{"on-failure", "cancelled", false},
		{"always", "success", true},
		{"never", "failure", false},
	} {
		t.Run(tt.mode+"/"+tt.status, func(t *testing.T) {
			e := newEnv(t)
			in := e.inputs(map[string]string{"diagnostics": tt.mode, "job-status": tt.status})
			main := e.mainStep(in)
			if main.err != nil {
				t.Fatalf("main step: %v\n%s", main.err, main.stdout)
			}
			id := main.res.Outputs["cluster-id"]
			post := e.postStep(in)
			if post.err != nil || len(annotations(post.stdout, "warning")) != 0 {
				t.Fatalf("post step: %v\n%s", post.err, post.stdout)
			}
			dir := filepath.Join(e.runner.ContainerHome, "smek-diagnostics-"+id)
			_, err := os.Stat(filepath.Join(dir, "summary.md"))
			if got := err == nil; got != tt.want {
				t.Fatalf("diagnostics collected: %v, want %v (%v)", got, tt.want, err)
			}
			if strings.Contains(post.res.Summary, clienttest.FakeSummary) != tt.want {
				t.Errorf("job summary (want the diagnostics: %v):\n%s", tt.want, post.res.Summary)
			}
			if tt.want {
				hostDir := filepath.Join(e.runner.HostTemp, "_github_home", "smek-diagnostics-"+id)
				if !strings.Contains(post.res.Summary, hostDir) {
					t.Errorf("job summary does not name %s:\n%s", hostDir, post.res.Summary)
				}
			}
			// The diagnostics come before the end: the cluster is gone.
			if cl, _ := e.api.Cluster(id); cl.ClusterStatus != "terminated" {
				t.Errorf("cluster %s, want terminated", cl.ClusterStatus)
			}
		})
	}
}

// A step with collect-diagnostics makes no cluster: it collects the named
// cluster's diagnostics and sets the output for actions/upload-artifact;
// the post step that follows leaves the diagnostics where they are.
func TestCollectDiagnosticsStep(t *testing.T) {
	e := newEnv(t)
	main := e.mainStep(e.inputs(nil))
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	id := main.res.Outputs["cluster-id"]

	collect := e.mainStep(e.inputs(map[string]string{"collect-diagnostics": id}))
	if collect.err != nil {
		t.Fatalf("collect step: %v\n%s", collect.err, collect.stdout)
	}
	hostDir := filepath.Join(e.runner.HostTemp, "_github_home", "smek-diagnostics-"+id)
	if got := collect.res.Outputs["diagnostics"]; got != hostDir {
		t.Errorf("output diagnostics = %q, want %q", got, hostDir)
	}
	if n := len(e.api.Live()); n != 1 {
		t.Errorf("%d live clusters, want the one of the first step", n)
	}
	if _, ok := collect.res.Outputs["cluster-id"]; ok {
		t.Errorf("the collect step set cluster-id")
	}
	if !strings.Contains(collect.res.Summary, clienttest.FakeSummary) {
		t.Errorf("job summary lacks the diagnostics summary:\n%s", collect.res.Summary)
	}

	// The job's post step, on failure, finds them there already.
	post := e.postStep(e.inputs(map[string]string{"job-status": "failure"}))
	if !strings.Contains(post.stdout, "already") {
		t.Errorf("post step collected again:\n%s", post.stdout)
	}

	for _, bad := range []string{"../../etc", "c-ZZ"} {
		r := e.mainStep(e.inputs(map[string]string{"collect-diagnostics": bad}))
		if r.err == nil || !strings.Contains(r.err.Error(), "input collect-diagnostics") {
			t.Errorf("collect-diagnostics=%q: %v", bad, r.err)
		}
	}
	r := e.mainStep(e.inputs(map[string]string{"collect-diagnostics": "c-nosuch"}))
	if r.err == nil || len(annotations(r.stdout, "error")) != 1 {
		t.Errorf("collect-diagnostics of an unknown cluster: %v\n%s", r.err, r.stdout)
	}
}
