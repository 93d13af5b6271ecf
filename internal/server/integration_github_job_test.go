package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationGitHubJobEndsOnlyItsClusters: on a persistent
// self-hosted runner, job A of a run completes, job B of the same run
// starts on the same runner and makes its clusters, and only then is A's
// workflow_job completed delivered. The embedded App ends A's clusters —
// by the job id the Action sends, or, from an Action that sends none, by
// the runner and A's times — and B's survive.
func TestIntegrationGitHubJobEndsOnlyItsClusters(t *testing.T) {
	clk := newClock()
	res := newResults()
	smek := smektest.Start(t, smektest.Options{Clock: clk, Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubOnDone = res.done
	}})
	acme := smek.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	const jobA, jobB = 51725241954, 51725241990
	run := wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 18170960955, RunAttempt: 1,
		RunnerName: "build-box-1"}
	withJob := func(id int64) wire.RunMetadata { r := run; r.JobID = id; return r }

	// Job A runs from started to completed.
	started := clk.Now().Truncate(time.Second)
	clk.Advance(30 * time.Second)
	aByID := createForRun(t, smek, acme, withJob(jobA))
	aByTime := createForRun(t, smek, acme, run) // an Action that sends no job id
	clk.Advance(30 * time.Second)
	completed := clk.Now().Truncate(time.Second)
	// Job B on the same runner, after A completed.
	clk.Advance(20 * time.Second)
	bByID := createForRun(t, smek, acme, withJob(jobB))
	bByTime := createForRun(t, smek, acme, run)

	body := webhookFixture(t, "workflow_job.completed.json", func(m map[string]any) {
		m["repository"].(map[string]any)["id"] = run.RepositoryID
		j := m["workflow_job"].(map[string]any)
		j["id"], j["run_id"], j["run_attempt"], j["runner_name"] = jobA, run.RunID, run.RunAttempt, run.RunnerName
		j["started_at"], j["completed_at"] = started.Format(time.RFC3339), completed.Format(time.RFC3339)
	})
	status, b := deliver(t, smek.URL+"/github/webhook", ghSecret, "workflow_job", "job-a-late", body)
	accepted(t, status, b)
	res.wait(t, "job-a-late")

	for _, tt := range []struct {
		name string
		c    wire.Cluster
		want []string
	}{
		{"job A's, by its id", aByID, []string{"terminated", "terminating"}},
		{"job A's, by runner and time", aByTime, []string{"terminated", "terminating"}},
		{"job B's, by its id", bByID, []string{"running"}},
		{"job B's, by runner and time", bByTime, []string{"running"}},
	} {
		got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+tt.c.ClusterID, acme, "")
		if got.ClusterStatus != tt.want[0] && (len(tt.want) == 1 || got.ClusterStatus != tt.want[1]) {
			t.Errorf("%s (%s, made %s): %s, want %v", tt.name, tt.c.ClusterID, got.CreatedAt.Format(time.TimeOnly), got.ClusterStatus, tt.want)
		}
		if got.Run == nil || got.Run.JobID != tt.c.Run.JobID {
			t.Errorf("%s: stored run %+v, want job id %d", tt.name, got.Run, tt.c.Run.JobID)
		}
	}
}

// TestIntegrationGitHubKeptClusterSurvivesCompletion: a job failed and
// its post step kept its cluster for debugging (POST .../keep, what the
// Action's keep-on-failure does). The job's and the run's completion
// deliveries leave it running, its events say why, and its new deadline
// ends it; the job's other cluster ends with the job as before.
func TestIntegrationGitHubKeptClusterSurvivesCompletion(t *testing.T) {
	clk := newClock()
	res := newResults()
	smek := smektest.Start(t, smektest.Options{PoolSize: 2, Clock: clk, Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubOnDone = res.done
	}})
	acme := smek.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	smek.WaitReady(2, false)
	const job = 51725241954
	run := wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 18170960955, RunAttempt: 1,
		RunnerName: "GitHub Actions 7", JobID: job}
	started := clk.Now().Truncate(time.Second)
	kept := createForRun(t, smek, acme, run)
	other := createForRun(t, smek, acme, run)
	clk.Advance(5 * time.Minute) // the job's tests fail
	k := mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+kept.ClusterID+"/keep", acme, `{"minutes": 30, "reason": "job e2e failed"}`)
	completed := clk.Now().Truncate(time.Second)

	jobBody := webhookFixture(t, "workflow_job.completed.json", func(m map[string]any) {
		m["repository"].(map[string]any)["id"] = run.RepositoryID
		j := m["workflow_job"].(map[string]any)
		j["id"], j["run_id"], j["run_attempt"], j["runner_name"] = job, run.RunID, run.RunAttempt, run.RunnerName
		j["started_at"], j["completed_at"] = started.Format(time.RFC3339), completed.Format(time.RFC3339)
	})
	status, b := deliver(t, smek.URL+"/github/webhook", ghSecret, "workflow_job", "job-completed", jobBody)
	accepted(t, status, b)
	res.wait(t, "job-completed")
	status, b = deliver(t, smek.URL+"/github/webhook", ghSecret, "workflow_run", "run-completed", workflowRunCompleted(t, run))
	accepted(t, status, b)
	res.wait(t, "run-completed")

	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+other.ClusterID, acme, ""); got.ClusterStatus != "terminated" && got.ClusterStatus != "terminating" {
		t.Errorf("the job's other cluster: %s, want ended", got.ClusterStatus)
	}
	got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+kept.ClusterID, acme, "")
	if got.ClusterStatus != "running" || got.ExpiresAt.Sub(k.ExpiresAt).Abs() >= time.Millisecond {
		t.Fatalf("kept cluster after the completions: %s until %s, want running until %s", got.ClusterStatus, got.ExpiresAt, k.ExpiresAt)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+kept.ClusterID+"/events", acme, "")
	notes := 0
	for _, ev := range evs.Events {
		if ev.Cause == "webhook" && strings.Contains(ev.Message, "kept for debugging until") {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("events %+v: want a note for each completion that left the kept cluster alone", evs.Events)
	}

	// The deadline ends it.
	clk.Advance(29 * time.Minute)
	if err := smek.Life.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+kept.ClusterID, acme, ""); got.ClusterStatus != "running" {
		t.Fatalf("kept cluster before its deadline: %s", got.ClusterStatus)
	}
	clk.Advance(2 * time.Minute)
	if err := smek.Life.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+kept.ClusterID, acme, ""); got.ClusterStatus != "terminated" {
		t.Errorf("kept cluster after its deadline: %s, want terminated", got.ClusterStatus)
	}
}
