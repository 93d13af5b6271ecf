package githubapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// cleanup is the work of an event that ends clusters: terminate every live
// cluster that one of the selections picks, leaving keep-cluster ones alone
// or, when stopKept is set (the App is uninstalled), stopping them.
//
// When its run or job completes (spareDebug), a cluster that its failed
// job kept for debugging (keep-on-failure) is left alone too: its deadline
// ends it. report, when set, tells the pull request about each such
// cluster, once: reported remembers it across the retries of the work.
type cleanup struct {
	app        *App
	log        *slog.Logger
	why        string
	selections []selection
	stopKept   bool
	spareDebug bool
	report     func(context.Context, cluster.Cluster) error
	reported   map[cluster.ID]bool
}

// selection picks clusters: those the listing returns, when match (nil:
// all) accepts them.
type selection struct {
	list  cluster.Filter
	match func(cluster.Cluster) bool
}

// all selects every cluster the listing returns.
func all(opts cluster.Filter) selection { return selection{list: opts} }

func (a *App) newCleanup(delivery, event string, why string, selections ...selection) func(context.Context) error {
	return a.newCleanupOf(&cleanup{why: why, selections: selections}, delivery, event)
}

func (a *App) newCleanupOf(c *cleanup, delivery, event string) func(context.Context) error {
	c.app, c.log = a, a.log.With(logkey.Delivery, delivery, logkey.Event, event)
	return c.run
}

// run terminates what matches. It is safe to run again after a failure:
// clusters already terminated no longer match as live, and a 404 or 409
// from terminate means someone else ended the cluster first.
func (c *cleanup) run(ctx context.Context) error {
	var errs []error
	var debugged []cluster.Cluster
	seen := map[cluster.ID]bool{}
	for _, s := range c.selections {
		list, err := c.app.clusters.List(ctx, AsApp, s.list)
		if err != nil {
			return fmt.Errorf("list clusters of %s: %w", c.why, err)
		}
		for _, cl := range list {
			if seen[cl.ID] || s.match != nil && !s.match(cl) {
				continue
			}
			seen[cl.ID] = true
			log := c.log.With(logkey.Cluster, cl.ID)
			if !cl.Status.Live() || cl.Status == cluster.Terminating {
				continue
			}
			if c.spareDebug && !cl.KeptAt.IsZero() {
				log.Info("cluster left alone: kept for debugging", logkey.Reason, c.why)
				c.note(ctx, log, string(cl.ID), "left alone though "+c.why+": kept for debugging until "+formatTime(cl.ExpiresAt))
				debugged = append(debugged, cl)
				continue
			}
			if cl.Spec.KeepCluster && c.stopKept {
				if err := c.stop(ctx, log, cl); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if cl.Spec.KeepCluster {
				log.Info("cluster left alone: created with keep-cluster", logkey.Reason, c.why)
				// The owner should find why it still runs in its event log.
				if err := c.app.clusters.Note(ctx, AsApp, string(cl.ID), "left alone though "+c.why+": created with keep-cluster"); err != nil {
					log.Warn("note in the event log", logkey.Err, err)
				}
				continue
			}
			_, err := c.app.clusters.Terminate(ctx, AsApp, string(cl.ID))
			switch cluster.ErrorCode(err) {
			case "":
				log.Info("cluster terminated", logkey.Reason, c.why)
			case cluster.ENOTFOUND, cluster.ECONFLICT:
				log.Info("cluster already ending", logkey.Reason, c.why, logkey.Err, err)
			default:
				errs = append(errs, fmt.Errorf("terminate %s: %w", cl.ID, err))
			}
		}
	}
	for _, cl := range debugged {
		if c.report == nil || c.reported[cl.ID] {
			continue
		}
		if err := c.report(ctx, cl); err != nil {
			errs = append(errs, fmt.Errorf("tell the pull request about kept cluster %s: %w", cl.ID, err))
			continue
		}
		if c.reported == nil {
			c.reported = map[cluster.ID]bool{}
		}
		c.reported[cl.ID] = true
	}
	return errors.Join(errs...)
}

// stop stops a keep-cluster cluster, as its own expiry would: its owner
// may start it again until the server's stopped lifetime ends it. One the
// account cannot keep stopped (its max-stopped-clusters) is terminated.
func (c *cleanup) stop(ctx context.Context, log *slog.Logger, cl cluster.Cluster) error {
	switch cl.Status {
	case cluster.Stopped:
		return nil
	case cluster.Pending:
		// Stopped once it runs: the next try finds it so.
		return fmt.Errorf("stop %s: it is still being created", cl.ID)
	}
	_, err := c.app.clusters.Stop(ctx, AsApp, string(cl.ID))
	switch cluster.ErrorCode(err) {
	case "":
		log.Info("cluster stopped: created with keep-cluster", logkey.Reason, c.why)
		c.note(ctx, log, string(cl.ID), "stopped, not terminated, though "+c.why+": created with keep-cluster")
		return nil
	case cluster.ENOTFOUND, cluster.ECONFLICT:
		log.Info("cluster already changing", logkey.Reason, c.why, logkey.Err, err)
		return nil
	case cluster.ELIMIT:
		log.Info("cluster terminated: its account keeps no more stopped clusters", logkey.Reason, c.why)
		c.note(ctx, log, string(cl.ID), "terminated though created with keep-cluster: "+c.why+" and its account keeps no more stopped clusters")
		_, err := c.app.clusters.Terminate(ctx, AsApp, string(cl.ID))
		if code := cluster.ErrorCode(err); err != nil && code != cluster.ENOTFOUND && code != cluster.ECONFLICT {
			return fmt.Errorf("terminate %s: %w", cl.ID, err)
		}
		return nil
	default:
		return fmt.Errorf("stop %s: %w", cl.ID, err)
	}
}

// note writes in a cluster's event log, where its owner looks for why it
// changed.
func (c *cleanup) note(ctx context.Context, log *slog.Logger, id, message string) {
	if err := c.app.clusters.Note(ctx, AsApp, id, message); err != nil {
		log.Warn("note in the event log", logkey.Err, err)
	}
}

func (a *App) planWorkflowRun(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e workflowRunEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Action != "completed" {
		return nil, "workflow run not completed", nil
	}
	switch {
	case e.Repository == nil || e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case e.WorkflowRun == nil || e.WorkflowRun.ID == 0:
		return nil, "", missing("workflow_run.id")
	case e.WorkflowRun.RunAttempt == 0:
		return nil, "", missing("workflow_run.run_attempt")
	}
	why := fmt.Sprintf("workflow run %d (attempt %d) of %s completed", e.WorkflowRun.ID, e.WorkflowRun.RunAttempt, e.Repository.FullName)
	return a.newCleanupOf(&cleanup{why: why, spareDebug: true, selections: []selection{all(cluster.Filter{
		RepositoryID: e.Repository.ID, RunID: e.WorkflowRun.ID, RunAttempt: e.WorkflowRun.RunAttempt,
	})}}, delivery, "workflow_run"), "", nil
}

func (a *App) planWorkflowJob(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e workflowJobEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Action == "queued" && a.prewarm != nil {
		return a.planPrewarm(e)
	}
	if e.Action != "completed" {
		return nil, "workflow job not completed", nil
	}
	switch {
	case e.Repository == nil || e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case e.WorkflowJob == nil || e.WorkflowJob.RunID == 0:
		return nil, "", missing("workflow_job.run_id")
	case e.WorkflowJob.RunAttempt == 0:
		return nil, "", missing("workflow_job.run_attempt")
	case e.WorkflowJob.ID == 0:
		return nil, "", missing("workflow_job.id")
	}
	// A job cancelled before it got a runner made no cluster.
	if e.WorkflowJob.RunnerName == nil || *e.WorkflowJob.RunnerName == "" {
		if a.prewarm != nil && e.installationID() != 0 {
			return a.prewarmCompleted(e.WorkflowJob.ID, nil), "", nil
		}
		return nil, "the job ran on no runner", nil
	}
	j := e.WorkflowJob
	why := fmt.Sprintf("job %d on runner %q of workflow run %d (attempt %d) of %s completed", j.ID, *j.RunnerName, j.RunID, j.RunAttempt, e.Repository.FullName)
	run := a.newCleanupOf(&cleanup{why: why, spareDebug: true, report: a.reportKept(e.installationID(), e.Repository, j.Name),
		selections: []selection{{
			list:  cluster.Filter{RepositoryID: e.Repository.ID, RunID: j.RunID, RunAttempt: j.RunAttempt},
			match: jobMatch(j.ID, *j.RunnerName, j.StartedAt, j.CompletedAt),
		}}}, delivery, "workflow_job")
	if a.prewarm != nil && e.installationID() != 0 {
		run = a.prewarmCompleted(j.ID, run)
	}
	return run, "", nil
}

// jobMatch tells a cluster of a run that the completed job made. A
// cluster that knows its job's id (the Action sends job.check_run_id)
// matches on it alone. One that does not (an older Action, GitHub
// Enterprise Server) must have been made on the job's runner while the
// job ran: a persistent self-hosted runner keeps its name from job to job
// of a run, and a later job's cluster on it was made after this job
// completed. Without completed_at such a cluster is not ended: the run's
// own completion and the TTL remain. Both times are GitHub's, to the
// second, and the cluster's creation time is SMEK's: the clocks are
// assumed to agree within the time a runner takes to start its next job.
func jobMatch(jobID int64, runner string, started, completed *time.Time) func(cluster.Cluster) bool {
	return func(c cluster.Cluster) bool {
		r := c.Run
		switch {
		case r == (cluster.RunMetadata{}):
			return false
		case r.JobID != 0:
			return r.JobID == jobID
		case r.Runner != runner || completed == nil:
			return false
		case started != nil && c.CreatedAt.Before(*started):
			return false
		default:
			return !c.CreatedAt.After(*completed)
		}
	}
}

// reportKept returns how a completed job tells its pull request about a
// cluster it kept for debugging: one comment with how to reach it, until
// when, and how to end it early. It is nil without GitHub credentials or
// an installation; clusters of no pull request are not reported.
// Only the job's completion reports (its run's completion, which selects
// the same cluster, does not), so the pull request hears of it once.
func (a *App) reportKept(installation int64, repo *repositoryRef, job string) func(context.Context, cluster.Cluster) error {
	owner, name, ok := strings.Cut(repo.FullName, "/")
	if a.github == nil || installation == 0 || !ok {
		return nil
	}
	return func(ctx context.Context, cl cluster.Cluster) error {
		if cl.Run.PullRequest == 0 {
			return nil
		}
		return a.github.Comment(ctx, installation, owner, name, int(cl.Run.PullRequest), a.keptComment(cl, job))
	}
}

// keptComment is the pull request's comment about a cluster its failed
// job kept. Like every reply it shows no credential.
func (a *App) keptComment(cl cluster.Cluster, job string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Job `%s` failed, and SMEK kept its cluster `%s` for debugging", job, cl.ID)
	if cl.KeptReason != "" {
		fmt.Fprintf(&b, " (%s)", cl.KeptReason)
	}
	fmt.Fprintf(&b, ". It runs until %s, when it is ended.\n\n", formatTime(cl.ExpiresAt))
	b.WriteString(a.fetchHelp(cl))
	fmt.Fprintf(&b, "\nEnd it early with `smek terminate %s`, or comment `/smek stop %s` here; `/smek extend %s 30` gives it 30 more minutes.\n", cl.ID, cl.ID, cl.ID)
	return b.String()
}

func (a *App) planPullRequest(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e pullRequestEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Action != "closed" {
		return nil, "pull request not closed", nil
	}
	switch {
	case e.Repository == nil || e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case e.Number == 0:
		return nil, "", missing("number")
	}
	why := fmt.Sprintf("pull request %s#%d closed", e.Repository.FullName, e.Number)
	return a.newCleanup(delivery, "pull_request", why, all(cluster.Filter{
		RepositoryID: e.Repository.ID, PullRequest: e.Number,
	})), "", nil
}

func (a *App) planInstallation(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e installationEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Action != "deleted" {
		return nil, "installation not deleted", nil
	}
	if e.installationID() == 0 {
		return nil, "", missing("installation.id")
	}
	// The clusters made through the installation (comment commands), and
	// those the Action made in its repositories, which carry the
	// repository only. An installation on all of an account's
	// repositories served every repository of that owner, listed or not.
	selections := []selection{all(cluster.Filter{InstallationID: e.installationID()})}
	for _, r := range e.Repositories {
		if r.ID != 0 {
			selections = append(selections, all(cluster.Filter{RepositoryID: r.ID}))
		}
	}
	if in := e.Installation; in.RepositorySelection == "all" && in.Account != nil && in.Account.Login != "" {
		selections = append(selections, all(cluster.Filter{RepositoryOwner: in.Account.Login}))
	}
	why := fmt.Sprintf("the App was uninstalled (installation %d)", e.installationID())
	return a.newCleanupOf(&cleanup{why: why, selections: selections, stopKept: true}, delivery, "installation"), "", nil
}

// planInstallationRepositories ends the clusters of the repositories taken
// away from the installation, whoever made them; its other repositories
// keep theirs.
func (a *App) planInstallationRepositories(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e installationRepositoriesEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Action != "removed" {
		return nil, "no repositories removed", nil
	}
	if e.installationID() == 0 {
		return nil, "", missing("installation.id")
	}
	var selections []selection
	for _, r := range e.RepositoriesRemoved {
		if r.ID == 0 {
			return nil, "", missing("repositories_removed[].id")
		}
		selections = append(selections, all(cluster.Filter{RepositoryID: r.ID}))
	}
	if len(selections) == 0 {
		return nil, "no repositories removed", nil
	}
	why := fmt.Sprintf("%d repositories were removed from the App's installation %d", len(selections), e.installationID())
	return a.newCleanupOf(&cleanup{why: why, selections: selections, stopKept: true}, delivery, "installation_repositories"), "", nil
}
