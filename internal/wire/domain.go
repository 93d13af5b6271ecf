package wire

import (
	"time"

	"github.com/smek/action/internal/cluster"
)

// Domain returns the cluster the answer describes, as the domain has it;
// a client of the API (the standalone GitHub App) works on this. The
// kubeconfig is not part of it.
func (c Cluster) Domain() cluster.Cluster {
	d := cluster.Cluster{
		ID: cluster.ID(c.ClusterID), Status: cluster.Status(c.ClusterStatus), Account: c.Account,
		Spec: cluster.Spec{K8sVersion: c.K8sVersion, Size: c.ClusterSize, MinutesToLive: c.MinutesToLive,
			KeepCluster: c.KeepCluster, Privileged: c.EnablePrivileged, NotificationEmail: c.NotificationEmail},
		APIServer: c.APIServer, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		StoppedAt: timeOf(c.StoppedAt), StoppedExpiresAt: timeOf(c.StoppedExpiresAt), TerminatedAt: timeOf(c.TerminatedAt),
		KeptAt: timeOf(c.KeptAt), KeptReason: c.KeptReason,
	}
	if c.Run != nil {
		d.Run = c.Run.Domain()
	}
	if t := c.Timings; t != nil {
		ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
		d.Timings = cluster.Timings{Queued: ms(t.QueuedMS), Claimed: ms(t.ClaimedMS), Ready: ms(t.ReadyMS), Warm: t.Warm}
		for phase, n := range t.Server {
			if d.ServerPhases == nil {
				d.ServerPhases = map[string]time.Duration{}
			}
			d.ServerPhases[phase] = ms(n)
		}
	}
	return d
}

// Domain returns the run metadata as the domain has it.
func (r RunMetadata) Domain() cluster.RunMetadata {
	return cluster.RunMetadata{
		Repository: r.Repository, RepositoryID: r.RepositoryID, RunID: r.RunID, RunAttempt: r.RunAttempt,
		Job: r.Job, JobID: r.JobID, Runner: r.RunnerName, Ref: r.Ref, SHA: r.SHA, Event: r.Event, WorkflowRef: r.WorkflowRef,
		Actor: r.Actor, PullRequest: r.PullRequest, InstallationID: r.InstallationID, Verified: r.Verified,
	}
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// RunOf returns r as an answer or request carries it: nil when r is empty.
func RunOf(r cluster.RunMetadata) *RunMetadata {
	if r == (cluster.RunMetadata{}) {
		return nil
	}
	return &RunMetadata{
		Repository: r.Repository, RepositoryID: r.RepositoryID, RunID: r.RunID, RunAttempt: r.RunAttempt,
		Job: r.Job, JobID: r.JobID, RunnerName: r.Runner, Ref: r.Ref, SHA: r.SHA, Event: r.Event, WorkflowRef: r.WorkflowRef,
		Actor: r.Actor, PullRequest: r.PullRequest, InstallationID: r.InstallationID, Verified: r.Verified,
	}
}
