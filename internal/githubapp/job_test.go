package githubapp

import (
	"testing"
	"time"

	"github.com/smek/action/internal/wire"
)

// workflow_job.completed.json: job 289782451 of run 2202229078 ran on
// runner "GitHub Actions 5" from 10:34:58 to 10:38:16.
var (
	jobStarted   = time.Date(2021, 8, 5, 10, 34, 58, 0, time.UTC)
	jobCompleted = time.Date(2021, 8, 5, 10, 38, 16, 0, time.UTC)
)

func jobCluster(id string, created time.Time, edit func(r *wire.RunMetadata)) wire.Cluster {
	c := withRun(id, false, edit, fixtureJob)
	c.CreatedAt = created
	return c
}

// A persistent self-hosted runner keeps its name across jobs: job A
// completes, job B of the same run starts on the same runner and makes a
// cluster, and only then is A's completion delivered. B's cluster is not
// A's: it was made after A completed.
func TestJobCompletedLateEndsOnlyThatJobsClusters(t *testing.T) {
	h := newHarness(t)
	clusters := []wire.Cluster{
		jobCluster("c-end001", jobStarted.Add(30*time.Second), same),   // job A's
		jobCluster("c-end002", jobCompleted, same),                     // made in A's last second
		jobCluster("c-jobb01", jobCompleted.Add(40*time.Second), same), // job B's, on the same runner
		jobCluster("c-early1", jobStarted.Add(-2*time.Minute), same),   // an earlier job's
		jobCluster("c-other1", jobStarted.Add(time.Minute), func(r *wire.RunMetadata) { r.RunnerName = "GitHub Actions 6" }),
	}
	deliverJobCompleted(t, h, clusters)
}

// A cluster that knows its job's id (the Action sends job.check_run_id)
// is ended by that job's completion alone, whatever its runner and time.
func TestJobCompletedEndsTheClustersOfItsID(t *testing.T) {
	h := newHarness(t)
	const jobA, jobB = 289782451, 289782460
	clusters := []wire.Cluster{
		jobCluster("c-end001", jobStarted.Add(time.Minute), func(r *wire.RunMetadata) { r.JobID = jobA }),
		// The id is exact: clocks and runner names do not matter.
		jobCluster("c-end002", jobCompleted.Add(time.Minute), func(r *wire.RunMetadata) { r.JobID, r.RunnerName = jobA, "renamed" }),
		// Job B's, made on the same runner while A's times would match.
		jobCluster("c-jobb01", jobStarted.Add(time.Minute), func(r *wire.RunMetadata) { r.JobID = jobB }),
		// A's id in another run attempt is not A.
		jobCluster("c-other1", jobStarted.Add(time.Minute), func(r *wire.RunMetadata) { r.JobID, r.RunAttempt = jobA, 2 }),
	}
	deliverJobCompleted(t, h, clusters)
}

// deliverJobCompleted adds clusters, delivers the fixture's workflow_job
// completion and checks that exactly the clusters whose id starts with
// "c-end" were terminated.
func deliverJobCompleted(t *testing.T, h *harness, clusters []wire.Cluster) {
	t.Helper()
	for _, c := range clusters {
		h.clusters.add(c)
	}
	if r := h.deliver("workflow_job", fixture(t, "workflow_job.completed.json")); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, c := range clusters {
		want := "running"
		if c.ClusterID[:5] == "c-end" {
			want = "terminated"
		}
		if got := h.clusters.get(c.ClusterID).ClusterStatus; got != want {
			t.Errorf("cluster %s (made %s, job %d): got %s, want %s", c.ClusterID, c.CreatedAt.Format(time.TimeOnly), c.Run.JobID, got, want)
		}
	}
}

// Without completed_at, a cluster that does not know its job cannot be
// told from a later job's: it is left to the run's end and its TTL.
func TestJobWithoutCompletedAtEndsOnlyKnownJobs(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(jobCluster("c-end001", jobStarted.Add(time.Minute), func(r *wire.RunMetadata) { r.JobID = 289782451 }))
	h.clusters.add(jobCluster("c-nojob1", jobStarted.Add(time.Minute), same))
	body := variant(t, "workflow_job.completed.json", func(m map[string]any) { delete(obj(m, "workflow_job"), "completed_at") })
	if r := h.deliver("workflow_job", body); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.clusters.get("c-end001").ClusterStatus; got != "terminated" {
		t.Errorf("cluster of the job's id: got %s, want terminated", got)
	}
	if got := h.clusters.get("c-nojob1").ClusterStatus; got != "running" {
		t.Errorf("cluster without a job id: got %s, want running", got)
	}
}
