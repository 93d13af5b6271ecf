package main

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
)

// A failed job with keep-on-failure: the post step keeps the cluster for
// debugging instead of terminating it, its deadline moved to now plus the
// duration (shortened to the account's maximum), and the job summary says
// how to reach it and end it.
func TestPostStepKeepsFailedJobsCluster(t *testing.T) {
	for _, tt := range []struct {
		name, status, keep string
		max                int
		wantKept           bool
		wantMinutes        int
	}{
		{name: "failed, kept", status: "failure", keep: "30m", wantKept: true, wantMinutes: 30},
		{name: "failed, rounded up to whole minutes", status: "failure", keep: "90s", wantKept: true, wantMinutes: 2},
		{name: "failed, shortened to the account's maximum", status: "failure", keep: "2h", max: 45, wantKept: true, wantMinutes: 45},
		{name: "succeeded", status: "success", keep: "30m"},
		{name: "cancelled", status: "cancelled", keep: "30m"},
		{name: "failed, keep-on-failure off", status: "failure", keep: ""},
		{name: "failed, keep-on-failure 0", status: "failure", keep: "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			clk := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			e.api.Clock, e.api.MaxMinutesToLive = clk, tt.max
			in := e.inputs(map[string]string{"keep-on-failure": tt.keep, "job-status": tt.status})
			main := e.mainStep(in)
			if main.err != nil {
				t.Fatalf("main step: %v\n%s", main.err, main.stdout)
			}
			id := main.res.Outputs["cluster-id"]
			clk.Advance(10 * time.Minute) // the job's steps

			post := e.postStep(in) // GITHUB_JOB is e2e
			if post.err != nil || len(annotations(post.stdout, "warning")) != 0 {
				t.Fatalf("post step: %v\n%s", post.err, post.stdout)
			}
			cl, _ := e.api.Cluster(id)
			if !tt.wantKept {
				if cl.ClusterStatus != "terminated" || cl.KeptAt != nil {
					t.Errorf("cluster %s (kept-at %v), want terminated", cl.ClusterStatus, cl.KeptAt)
				}
				if strings.Contains(post.res.Summary, "kept for debugging") {
					t.Errorf("summary speaks of keeping:\n%s", post.res.Summary)
				}
				return
			}
			if cl.ClusterStatus != "running" || cl.KeptAt == nil || cl.KeptReason != "job e2e failed" {
				t.Fatalf("cluster %s, kept-at %v, reason %q; want running and kept", cl.ClusterStatus, cl.KeptAt, cl.KeptReason)
			}
			until := clk.Now().Add(time.Duration(tt.wantMinutes) * time.Minute)
			if !cl.ExpiresAt.Equal(until) {
				t.Errorf("expires-at %s, want %s", cl.ExpiresAt, until)
			}
			for _, want := range []string{"kept for debugging", id, until.Format(time.RFC3339),
				"smek kubeconfig " + id, "SMEK_API_URL=" + e.api.URL, "smek terminate " + id, "smek extend " + id} {
				if !strings.Contains(post.res.Summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, post.res.Summary)
				}
			}
			if shortened := tt.max > 0; shortened != strings.Contains(post.res.Summary, "the account allows less") {
				t.Errorf("summary about the shortened keep (max %d):\n%s", tt.max, post.res.Summary)
			}
			if strings.Contains(post.res.Summary, testToken) || strings.Contains(post.stdout, "smek_tenant") {
				t.Errorf("a credential in the summary or log")
			}
		})
	}
}

// A cluster the server will not keep (it stopped being running) is
// terminated, with a warning: the job's cleanup never leaves it to chance.
func TestPostStepTerminatesWhenKeepFails(t *testing.T) {
	e := newEnv(t)
	in := e.inputs(map[string]string{"keep-on-failure": "30m", "job-status": "failure", "diagnostics": "never"})
	main := e.mainStep(in)
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	id := main.res.Outputs["cluster-id"]
	e.api.SetStatus(id, "stopped")
	post := e.postStep(in)
	if w := annotations(post.stdout, "warning"); len(w) != 1 || !strings.Contains(w[0], "keep cluster "+id) {
		t.Errorf("warnings %q, want one about the keep", w)
	}
	if cl, _ := e.api.Cluster(id); cl.ClusterStatus != "terminated" {
		t.Errorf("cluster %s, want terminated", cl.ClusterStatus)
	}
}

// Malformed post-step inputs fail the main step, before a cluster exists.
func TestMainStepRefusesBadPostInputs(t *testing.T) {
	for _, tt := range []struct{ input, value, want string }{
		{"keep-on-failure", "30", `input keep-on-failure: "30" has no unit`},
		{"keep-on-failure", "soon", `input keep-on-failure: "soon" is not a duration`},
		{"keep-on-failure", "-5m", `input keep-on-failure: "-5m" must not be negative`},
		{"diagnostics", "sometimes", `input diagnostics: "sometimes" is not on-failure, always or never`},
	} {
		e := newEnv(t)
		main := e.mainStep(e.inputs(map[string]string{tt.input: tt.value}))
		if main.err == nil || !strings.Contains(main.err.Error(), tt.want) {
			t.Errorf("%s=%q: error %v, want %q", tt.input, tt.value, main.err, tt.want)
		}
		if n := len(e.api.Live()); n != 0 {
			t.Errorf("%s=%q: %d clusters made", tt.input, tt.value, n)
		}
	}
}

func TestKeepReason(t *testing.T) {
	for job, want := range map[string]string{"": "the job failed", "e2e": "job e2e failed", "a\nb": "job a b failed"} {
		if got := keepReason(job); got != want {
			t.Errorf("keepReason(%q) = %q, want %q", job, got, want)
		}
	}
	if got := keepReason(strings.Repeat("x", 300)); len(got) > maxKeepReason || !utf8.ValidString(got) {
		t.Errorf("keepReason of a long name = %q (%d bytes)", got, len(got))
	}
}

func TestJobFailed(t *testing.T) {
	for v, want := range map[string]bool{"failure": true, "failed": true, "1": true, "137": true,
		"success": false, "cancelled": false, "canceled": false, "0": false} {
		if got, err := jobFailed("status", v); err != nil || got != want {
			t.Errorf("jobFailed(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"ok", "-1", "256", "fail"} {
		if _, err := jobFailed("status", v); err == nil {
			t.Errorf("jobFailed(%q) accepted", v)
		}
	}
}

// `smek release` in other CIs: the job's status decides between
// terminating and keeping for debugging; keep-cluster clusters are left
// alone; bad input is a usage error.
func TestCLIRelease(t *testing.T) {
	c := newCLI(t)
	c.vars["CI_JOB_NAME"] = "e2e"
	create := func(keep string) string {
		out := c.ok("create", "--keep-cluster", keep)
		return strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	}

	failed := create("false")
	if out := c.ok("release", failed, "--keep-on-failure", "30m", "--status", "failed"); !strings.Contains(out, "keeping cluster "+failed+" for debugging") ||
		!strings.Contains(out, "smek kubeconfig "+failed) {
		t.Errorf("release of a failed job = %q", out)
	}
	if cl, _ := c.api.Cluster(failed); cl.ClusterStatus != "running" || cl.KeptReason != "job e2e failed" {
		t.Errorf("failed job's cluster: %s, reason %q; want running and kept", cl.ClusterStatus, cl.KeptReason)
	}

	for _, status := range []string{"success", "0", "canceled"} {
		id := create("false")
		if out := c.ok("release", id, "--keep-on-failure", "30m", "--status", status); !strings.Contains(out, "Terminated cluster "+id) {
			t.Errorf("release --status %s = %q", status, out)
		}
		if cl, _ := c.api.Cluster(id); cl.ClusterStatus != "terminated" {
			t.Errorf("--status %s: cluster %s, want terminated", status, cl.ClusterStatus)
		}
	}
	// The exit status of a failed script, without keep-on-failure.
	id := create("false")
	c.ok("release", id, "--status", "2")
	if cl, _ := c.api.Cluster(id); cl.ClusterStatus != "terminated" {
		t.Errorf("release without keep-on-failure: %s, want terminated", cl.ClusterStatus)
	}
	if out := c.ok("release", id); !strings.Contains(out, "already gone") {
		t.Errorf("second release = %q", out)
	}

	// GitLab allows job names of 255 characters; the server, reasons of
	// 200 bytes: the reason is cut, and the cluster kept all the same.
	c.vars["CI_JOB_NAME"] = strings.Repeat("ü", 130)
	long := create("false")
	c.ok("release", long, "--keep-on-failure", "30m", "--status", "1")
	if cl, _ := c.api.Cluster(long); cl.ClusterStatus != "running" || len(cl.KeptReason) > 200 || !strings.HasSuffix(cl.KeptReason, "… failed") {
		t.Errorf("long job name: cluster %s, reason %q (%d bytes)", cl.ClusterStatus, cl.KeptReason, len(cl.KeptReason))
	}
	c.vars["CI_JOB_NAME"] = "e2e"

	kept := create("true")
	if out := c.ok("release", kept, "--status", "failed"); !strings.Contains(out, "keep-cluster: true") {
		t.Errorf("release of a keep-cluster cluster = %q", out)
	}
	if cl, _ := c.api.Cluster(kept); cl.ClusterStatus != "running" {
		t.Errorf("keep-cluster cluster: %s, want running", cl.ClusterStatus)
	}

	for _, args := range [][]string{
		{"release", failed, "--keep-on-failure", "30m"},
		{"release", failed, "--status", "maybe"},
		{"release", failed, "--keep-on-failure", "30", "--status", "1"},
	} {
		_, errOut, err := c.run(args...)
		if !errors.Is(err, errUsage) || errOut == "" {
			t.Errorf("smek %q: %v %q, want a usage error", args, err, errOut)
		}
	}
}

// FuzzPostInputs: the post step's inputs never panic, and a keep duration
// that parses is whole minutes, never negative.
func FuzzPostInputs(f *testing.F) {
	for _, s := range []string{"30m", "90s", "0", "", "2h45m", "-1m", "1e9h", "failure", "137", " canceled "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d, err := parseKeepFor("keep-on-failure", v); err == nil && (d < 0 || d%time.Minute != 0) {
			t.Errorf("parseKeepFor(%q) = %v", v, d)
		}
		if _, err := jobFailed("job-status", v); err != nil && !strings.Contains(err.Error(), "job-status") {
			t.Errorf("jobFailed(%q): error %q does not name the input", v, err)
		}
		if r := keepReason(v); len(r) > maxKeepReason || !utf8.ValidString(r) || strings.IndexFunc(r, unicode.IsControl) >= 0 {
			t.Errorf("keepReason(%q) = %q, which the server refuses", v, r)
		}
		if _, err := parseDiagnostics("diagnostics", v); err != nil && !strings.Contains(err.Error(), "diagnostics") {
			t.Errorf("parseDiagnostics(%q): error %q does not name the input", v, err)
		}
	})
}
