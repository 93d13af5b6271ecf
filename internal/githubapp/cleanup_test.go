package githubapp

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

var errUnavailable = cluster.Errorf(cluster.EUNAVAILABLE, "", "the server is busy")

// Run metadata of the fixtures.
var (
	// workflow_run.completed.json: octo-org/octo-repo, run 289782451.
	fixtureRun = wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 289782451, RunAttempt: 1, Verified: true}
	// workflow_job.completed.json: Codertocat/Hello-World, run 2202229078.
	fixtureJob = wire.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: 186853002, RunID: 2202229078, RunAttempt: 1, RunnerName: "GitHub Actions 5", Verified: true}
	// pull_request.closed.json: Codertocat/Hello-World#2, installation 1.
	fixturePR = wire.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: 186853002, PullRequest: 2, InstallationID: 1}
)

func runCluster(id string, keep bool) wire.Cluster {
	run := fixtureRun
	return wire.Cluster{ClusterID: id, Account: "acme", KeepCluster: keep, Run: &run}
}

func withRun(id string, keep bool, edit func(r *wire.RunMetadata), base wire.RunMetadata) wire.Cluster {
	edit(&base)
	return wire.Cluster{ClusterID: id, Account: "acme", KeepCluster: keep, Run: &base}
}

func same(*wire.RunMetadata) {}

// inJob dates a cluster in the run of workflow_job.completed.json while
// its job ran.
func inJob(c wire.Cluster) wire.Cluster {
	c.CreatedAt = jobStarted.Add(time.Minute)
	return c
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		name, event string
		body        func(t *testing.T) []byte
		// clusters: those named "c-end..." must end, all others must stay.
		clusters []wire.Cluster
	}{{
		name: "workflow_run completed", event: "workflow_run",
		body: func(t *testing.T) []byte { return fixture(t, "workflow_run.completed.json") },
		clusters: []wire.Cluster{
			withRun("c-end001", false, same, fixtureRun),
			withRun("c-end002", false, func(r *wire.RunMetadata) { r.RunnerName = "runner-2" }, fixtureRun),
			withRun("c-keep01", true, same, fixtureRun),
			withRun("c-other1", false, func(r *wire.RunMetadata) { r.RunAttempt = 2 }, fixtureRun),
			withRun("c-other2", false, func(r *wire.RunMetadata) { r.RepositoryID++ }, fixtureRun),
		},
	}, {
		name: "workflow_job completed", event: "workflow_job",
		body: func(t *testing.T) []byte { return fixture(t, "workflow_job.completed.json") },
		clusters: []wire.Cluster{
			inJob(withRun("c-end001", false, same, fixtureJob)),
			inJob(withRun("c-keep01", true, same, fixtureJob)),
			inJob(withRun("c-other1", false, func(r *wire.RunMetadata) { r.RunnerName = "GitHub Actions 6" }, fixtureJob)),
			inJob(withRun("c-other2", false, func(r *wire.RunMetadata) { r.RunAttempt = 2 }, fixtureJob)),
		},
	}, {
		name: "pull_request closed", event: "pull_request",
		body: func(t *testing.T) []byte { return fixture(t, "pull_request.closed.json") },
		clusters: []wire.Cluster{
			withRun("c-end001", false, same, fixturePR),
			withRun("c-keep01", true, same, fixturePR),
			withRun("c-other1", false, func(r *wire.RunMetadata) { r.PullRequest = 3 }, fixturePR),
		},
	}, {
		name: "pull_request closed without installation (repository webhook)", event: "pull_request",
		body: func(t *testing.T) []byte {
			return variant(t, "pull_request.closed.json", func(m map[string]any) { delete(m, "installation") })
		},
		clusters: []wire.Cluster{withRun("c-end001", false, same, fixturePR)},
	}, {
		name: "workflow_run completed with installation", event: "workflow_run",
		body: func(t *testing.T) []byte {
			return variant(t, "workflow_run.completed.json", func(m map[string]any) { m["installation"] = map[string]any{"id": 9} })
		},
		clusters: []wire.Cluster{withRun("c-end001", false, same, fixtureRun)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, c := range tt.clusters {
				h.clusters.add(c)
			}
			// A stopped cluster of the run ends too; a terminated one is
			// not touched again.
			if r := h.deliver(tt.event, tt.body(t)); r.Err != nil {
				t.Fatalf("work failed: %v", r.Err)
			}
			ended := 0
			for _, c := range tt.clusters {
				got := h.clusters.get(c.ClusterID).ClusterStatus
				want := "running"
				if c.ClusterID[:5] == "c-end" {
					want = "terminated"
					ended++
				}
				if got != want {
					t.Errorf("cluster %s: got %s, want %s", c.ClusterID, got, want)
				}
			}
			if got := h.clusters.count("Terminate"); got != ended {
				t.Errorf("Terminate calls: got %d, want %d (keep-cluster clusters are left alone)", got, ended)
			}
			// Every keep-cluster cluster of the run says why it still runs.
			for _, c := range tt.clusters {
				if !c.KeepCluster || c.ClusterID[:5] == "c-end" {
					continue
				}
				h.clusters.mu.Lock()
				notes := h.clusters.notes[c.ClusterID]
				h.clusters.mu.Unlock()
				if len(notes) != 1 || !strings.Contains(notes[0], "keep-cluster") {
					t.Errorf("cluster %s (keep-cluster) has notes %q, want one saying it was left alone", c.ClusterID, notes)
				}
			}
		})
	}
}

func TestCleanupIgnoresOtherActions(t *testing.T) {
	for _, tt := range []struct{ event, file string }{
		{"workflow_run", "workflow_run.requested.json"},
		{"workflow_run", "workflow_run.in_progress.json"},
		{"workflow_job", "workflow_job.queued.json"},
		{"workflow_job", "workflow_job.in_progress.json"},
		{"pull_request", "pull_request.opened.json"},
		{"installation", "installation.created.json"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			h := newHarness(t)
			status, answer := h.send(delivery{event: tt.event, body: fixture(t, tt.file)})
			if status != http.StatusOK {
				t.Fatalf("got %d %s, want 200 ignored", status, answer)
			}
			if n := h.clusters.count("List"); n != 0 {
				t.Fatalf("List calls: got %d, want 0", n)
			}
		})
	}
}

func TestCleanupJobWithoutRunnerIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(withRun("c-other1", false, same, fixtureJob))
	body := variant(t, "workflow_job.completed.json", func(m map[string]any) { obj(m, "workflow_job")["runner_name"] = nil })
	status, answer := h.send(delivery{event: "workflow_job", body: body})
	if status != http.StatusOK {
		t.Fatalf("got %d %s, want 200 ignored", status, answer)
	}
	if got := h.clusters.get("c-other1").ClusterStatus; got != "running" {
		t.Fatalf("cluster: got %s, want running", got)
	}
}

func TestCleanupRetriesUntilTheServerAnswers(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(runCluster("c-end001", false))
	h.clusters.add(runCluster("c-end002", false))
	h.clusters.failNext("List", errUnavailable, errors.New("connection refused"))
	h.clusters.failNext("Terminate", errUnavailable)

	status, _ := h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")})
	if status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		h.advanceToRetry(attempt)
	}
	r := h.wait()
	if r.Err != nil || r.Attempts != 4 {
		t.Fatalf("got %d attempts (err %v), want success on the 4th", r.Attempts, r.Err)
	}
	for _, id := range []string{"c-end001", "c-end002"} {
		if got := h.clusters.get(id).ClusterStatus; got != "terminated" {
			t.Errorf("%s: got %s, want terminated", id, got)
		}
	}
}

func TestCleanupGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxAttempts = 2 })
	h.clusters.failNext("List", errUnavailable, errUnavailable, errUnavailable)
	h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")})
	h.advanceToRetry(1)
	r := h.wait()
	if r.Err == nil || r.Attempts != 2 {
		t.Fatalf("got %d attempts, err %v; want 2 attempts and the error", r.Attempts, r.Err)
	}
}
