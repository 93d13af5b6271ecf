package server_test

import (
	"context"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationGitHubPrewarm goes through the real webhook handler with
// signed deliveries: a queued job makes a cluster and so teaches its
// flavor; when the same job is queued in the next run, the pool makes one
// more member ready before the job asks, and the job's create uses the
// pre-warm (a hit).
func TestIntegrationGitHubPrewarm(t *testing.T) {
	const installation = 3456996 // workflow_job.queued.json's
	// The wall clock: a member whose boot fails on a busy machine is
	// retried on the pool's timers.
	res := newResults()
	learned := make(chan error, 8)
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubOnDone = res.done
		c.GitHubPrewarm = true
		c.PrewarmOnLearned = func(_ cluster.Cluster, err error) { learned <- err }
	}})
	acme := smek.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	if _, err := smek.DB.LinkInstallation(context.Background(), "acme", installation); err != nil {
		t.Fatal(err)
	}
	queued := func(delivery string, job, run int64) {
		t.Helper()
		body := webhookFixture(t, "workflow_job.queued.json", func(m map[string]any) {
			j := m["workflow_job"].(map[string]any)
			j["id"], j["run_id"], j["run_attempt"] = job, run, 1
		})
		status, b := deliver(t, smek.URL+"/github/webhook", ghSecret, "workflow_job", delivery, body)
		accepted(t, status, b)
		res.wait(t, delivery)
	}
	run := func(job, id int64) wire.RunMetadata {
		return wire.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: 186853002, RunID: id, RunAttempt: 1, JobID: job}
	}
	const job1, run1, job2, run2 = 51725241954, 18170960955, 51725249999, 18170969999

	smek.WaitReady(1, false)
	queued("queued-1", job1, run1)
	createForRun(t, smek, acme, run(job1, run1))
	if err := waitFor(t, learned, workTimeout, "the flavor learned from the first create"); err != nil {
		t.Fatalf("learn: %v", err)
	}
	// The pool refills its one member; then the next run's job is queued
	// and the pool makes a second one ready for it.
	smek.WaitReady(1, false)
	queued("queued-2", job2, run2)
	smek.WaitReady(2, false)
	if hits, _ := smek.Pool.PrewarmCounts(); hits != 0 {
		t.Fatalf("pre-warm hits before the create: %d", hits)
	}
	c := createForRun(t, smek, acme, run(job2, run2))
	if c.Timings == nil || !c.Timings.Warm {
		t.Errorf("the pre-warmed job's create: timings %+v, want warm", c.Timings)
	}
	if hits, _ := smek.Pool.PrewarmCounts(); hits != 1 {
		t.Errorf("pre-warm hits after the job's create: %d, want 1", hits)
	}
}
