package githubapp

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/wire"
)

// keptCluster is a cluster of the fixture's job (on pull request #2 of
// Codertocat/Hello-World) that the job's post step kept for debugging.
func keptCluster(id string) wire.Cluster {
	c := inJob(withRun(id, false, func(r *wire.RunMetadata) { r.PullRequest = 2 }, fixtureJob))
	at := jobCompleted.Add(-time.Second)
	c.KeptAt, c.KeptReason = &at, "job linters failed"
	c.ExpiresAt = jobCompleted.Add(30 * time.Minute)
	return c
}

// A failed job kept its cluster for debugging: the job's completion leaves
// it running, says why in its events, and tells the pull request once, with
// how to reach it and until when; a retry of the delivery's work does not
// comment again. The job's other clusters end as usual, and a pull request
// that closes ends the kept one too.
func TestCleanupLeavesKeptClusterAndTellsThePullRequestOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PublicURL = "https://smek.example.com" })
	h.clusters.add(keptCluster("c-kept01"))
	h.clusters.add(inJob(withRun("c-end001", false, same, fixtureJob)))
	// The first terminate fails: the work is retried, and the comment
	// written by the first try is not written again.
	h.clusters.failNext("Terminate", errUnavailable)
	body := variant(t, "workflow_job.completed.json", func(m map[string]any) { m["installation"] = map[string]any{"id": testInstallation} })
	status, _ := h.send(delivery{event: "workflow_job", body: body})
	if status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	h.advanceToRetry(1)
	if r := h.wait(); r.Err != nil || r.Attempts != 2 {
		t.Fatalf("got %d attempts (err %v), want success on the 2nd", r.Attempts, r.Err)
	}
	if got := h.clusters.get("c-kept01").ClusterStatus; got != "running" {
		t.Errorf("kept cluster: got %s, want running", got)
	}
	if got := h.clusters.get("c-end001").ClusterStatus; got != "terminated" {
		t.Errorf("the job's other cluster: got %s, want terminated", got)
	}
	cs := h.github.Comments()
	if len(cs) != 1 {
		t.Fatalf("comments: got %d %+v, want 1", len(cs), cs)
	}
	c := cs[0]
	if c.Repo != "Codertocat/Hello-World" || c.Number != 2 || c.Installation != testInstallation {
		t.Errorf("comment went to %s#%d (installation %d)", c.Repo, c.Number, c.Installation)
	}
	for _, want := range []string{"`linters`", "`c-kept01`", "job linters failed", "2021-08-05 11:08 UTC",
		"smek kubeconfig c-kept01", "https://smek.example.com/v1/clusters/c-kept01/kubeconfig", "smek terminate c-kept01"} {
		if !strings.Contains(c.Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, c.Body)
		}
	}
	assertNoSecrets(t, c.Body)
	h.clusters.mu.Lock()
	notes := h.clusters.notes["c-kept01"]
	h.clusters.mu.Unlock()
	if len(notes) == 0 || !strings.Contains(notes[0], "kept for debugging until 2021-08-05 11:08 UTC") {
		t.Errorf("notes of the kept cluster: %q", notes)
	}

	// The pull request closes: its clusters end, the kept one included.
	if r := h.deliver("pull_request", fixture(t, "pull_request.closed.json")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.clusters.get("c-kept01").ClusterStatus; got != "terminated" {
		t.Errorf("kept cluster after its pull request closed: got %s, want terminated", got)
	}
	if n := len(h.github.Comments()); n != 1 {
		t.Errorf("comments after the pull request closed: %d, want still 1", n)
	}
}

// A run's completion leaves its kept clusters alone too, without a
// comment (the job's completion tells the pull request); a failed comment
// is retried.
func TestCleanupRunLeavesKeptCluster(t *testing.T) {
	h := newHarness(t)
	kept := withRun("c-kept01", false, same, fixtureRun)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kept.KeptAt = &at
	h.clusters.add(kept)
	h.clusters.add(withRun("c-end001", false, same, fixtureRun))
	if r := h.deliver("workflow_run", fixture(t, "workflow_run.completed.json")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.clusters.get("c-kept01").ClusterStatus; got != "running" {
		t.Errorf("kept cluster: got %s, want running", got)
	}
	if got := h.clusters.get("c-end001").ClusterStatus; got != "terminated" {
		t.Errorf("other cluster: got %s, want terminated", got)
	}
	if n := len(h.github.Comments()); n != 0 {
		t.Errorf("comments: %d, want 0", n)
	}
}

// When GitHub refuses the comment, the work is retried until it is
// written, once.
func TestCleanupKeptCommentRetried(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(keptCluster("c-kept01"))
	h.github.Fail(githubfake.RouteComment, http.StatusBadGateway)
	body := variant(t, "workflow_job.completed.json", func(m map[string]any) { m["installation"] = map[string]any{"id": testInstallation} })
	h.send(delivery{event: "workflow_job", body: body})
	h.advanceToRetry(1)
	if r := h.wait(); r.Err != nil || r.Attempts != 2 {
		t.Fatalf("got %d attempts (err %v), want success on the 2nd", r.Attempts, r.Err)
	}
	if n := len(h.github.Comments()); n != 1 {
		t.Errorf("comments: %d, want 1", n)
	}
	if got := h.clusters.get("c-kept01").ClusterStatus; got != "running" {
		t.Errorf("kept cluster: got %s, want running", got)
	}
}
