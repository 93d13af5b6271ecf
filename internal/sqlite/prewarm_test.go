package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp/jobs"
)

var prewarmFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

func queuedJob(id, installation int64, at time.Time) jobs.Job {
	return jobs.Job{ID: id, Key: jobs.Key{InstallationID: installation, RepositoryID: 77, Workflow: "CI", Job: "e2e"},
		Repository: "octo/repo", RunID: 500, RunAttempt: 1, QueuedAt: at}
}

func TestQueuedJobsSurviveReopenAndKeepTheirPrewarm(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	rec, isNew, err := db.RecordQueuedJob(ctx, queuedJob(11, 3, now))
	if err != nil || !isNew || rec.State != jobs.Queued || !rec.QueuedAt.Equal(now) {
		t.Fatalf("RecordQueuedJob = %+v, %v, %v; want a new queued job at %s", rec, isNew, err, now)
	}
	// A redelivery changes nothing.
	again := queuedJob(11, 3, now.Add(time.Minute))
	again.Job = "other"
	if rec, isNew, err := db.RecordQueuedJob(ctx, again); err != nil || isNew || rec.Job != "e2e" {
		t.Fatalf("RecordQueuedJob again = %+v, %v, %v; want the first record, not new", rec, isNew, err)
	}
	until := now.Add(15 * time.Minute)
	if ok, err := db.StartJobPrewarm(ctx, 11, prewarmFlavor, now, until, 10); err != nil || !ok {
		t.Fatalf("StartJobPrewarm = %v, %v; want started", ok, err)
	}
	if ok, err := db.StartJobPrewarm(ctx, 11, prewarmFlavor, now, until, 10); err != nil || ok {
		t.Fatalf("second StartJobPrewarm = %v, %v; want not started (one pre-warm per job)", ok, err)
	}
	db.Close()

	db = openGitHubTestDB(t, path)
	open, err := db.OpenPrewarms(ctx, now.Add(time.Minute))
	if err != nil || len(open) != 1 || open[0].ID != 11 || open[0].Flavor != prewarmFlavor || !open[0].Until.Equal(until) {
		t.Fatalf("OpenPrewarms after reopen = %+v, %v; want job 11 pre-warming %s until %s", open, err, prewarmFlavor, until)
	}
	if open, err := db.OpenPrewarms(ctx, until); err != nil || len(open) != 0 {
		t.Fatalf("OpenPrewarms at the expiry = %+v, %v; want none", open, err)
	}
}

func TestStartJobPrewarmHoldsTheInstallationsLimit(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for id := int64(1); id <= 3; id++ {
		if _, _, err := db.RecordQueuedJob(ctx, queuedJob(id, 3, now)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.RecordQueuedJob(ctx, queuedJob(4, 9, now)); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Minute)
	for id, want := range map[int64]bool{1: true, 2: true} {
		if ok, err := db.StartJobPrewarm(ctx, id, prewarmFlavor, now, until, 2); err != nil || ok != want {
			t.Fatalf("StartJobPrewarm(%d) = %v, %v; want %v", id, ok, err, want)
		}
	}
	if ok, err := db.StartJobPrewarm(ctx, 3, prewarmFlavor, now, until, 2); err != nil || ok {
		t.Fatalf("third pre-warm of installation 3 = %v, %v; want refused at the limit of 2", ok, err)
	}
	if ok, err := db.StartJobPrewarm(ctx, 4, prewarmFlavor, now, until, 2); err != nil || !ok {
		t.Fatalf("pre-warm of installation 9 = %v, %v; want started: the limit is per installation", ok, err)
	}
	// An ended pre-warm frees its place; an expired one too.
	if before, ended, err := db.EndQueuedJob(ctx, 1, jobs.Created); err != nil || !ended || before.Until.IsZero() {
		t.Fatalf("EndQueuedJob = %+v, %v, %v; want the pre-warming job ended", before, ended, err)
	}
	if _, ended, err := db.EndQueuedJob(ctx, 1, jobs.Completed); err != nil || ended {
		t.Fatalf("EndQueuedJob twice = %v, %v; want not ended again", ended, err)
	}
	if ok, err := db.StartJobPrewarm(ctx, 3, prewarmFlavor, now, until, 2); err != nil || !ok {
		t.Fatalf("pre-warm after one ended = %v, %v; want started", ok, err)
	}
	if _, _, err := db.EndQueuedJob(ctx, 99, jobs.Created); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("EndQueuedJob(unknown) = %v; want ENOTFOUND", err)
	}
	if _, err := db.QueuedJob(ctx, 99); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("QueuedJob(unknown) = %v; want ENOTFOUND", err)
	}
	if _, _, err := db.EndQueuedJob(ctx, 2, jobs.Queued); err == nil {
		t.Fatal("EndQueuedJob(queued) = nil error; want refused")
	}
}

func TestPruneQueuedJobs(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for id, at := range map[int64]time.Time{1: now.Add(-72 * time.Hour), 2: now} {
		if _, _, err := db.RecordQueuedJob(ctx, queuedJob(id, 3, at)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.PruneQueuedJobs(ctx, now.Add(-48*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneQueuedJobs = %d, %v; want 1", n, err)
	}
	if _, err := db.QueuedJob(ctx, 1); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("pruned job: %v; want ENOTFOUND", err)
	}
	if j, err := db.QueuedJob(ctx, 2); err != nil || j.ID != 2 {
		t.Fatalf("kept job = %+v, %v", j, err)
	}
	if js, err := db.JobsOfRun(ctx, 77, 500); err != nil || len(js) != 1 || js[0].ID != 2 {
		t.Fatalf("JobsOfRun = %+v, %v; want job 2", js, err)
	}
}

func TestRecordQueuedJobRefusesMissingIDs(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	for name, j := range map[string]jobs.Job{
		"workflow_job.id": {Key: jobs.Key{InstallationID: 1, RepositoryID: 1}},
		"installation.id": {ID: 1, Key: jobs.Key{RepositoryID: 1}},
		"repository.id":   {ID: 1, Key: jobs.Key{InstallationID: 1}},
	} {
		_, _, err := db.RecordQueuedJob(ctx, j)
		if ce, ok := err.(*cluster.Error); !ok || ce.Field != name {
			t.Errorf("RecordQueuedJob without %s = %v; want EINVALID naming it", name, err)
		}
	}
}

func TestLearnJobFlavorKeepsTheLastCreate(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	db.Clock = clockwork.NewFakeClockAt(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	a, err := db.EnsureAccount(ctx, "team", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	k := jobs.Key{InstallationID: 3, RepositoryID: 77, Workflow: "CI", Job: "e2e"}
	if _, ok, err := db.LearnedFlavor(ctx, k); err != nil || ok {
		t.Fatalf("LearnedFlavor before = %v, %v; want nothing", ok, err)
	}
	priv := cluster.Flavor{K8sVersion: "1.35.1", Size: cluster.SizeMid, Privileged: true}
	for _, f := range []cluster.Flavor{prewarmFlavor, priv} {
		if err := db.LearnJobFlavor(ctx, jobs.Learned{Key: k, Flavor: f, AccountID: a.ID, LearnedAt: db.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	l, ok, err := db.LearnedFlavor(ctx, k)
	if err != nil || !ok || l.Flavor != priv || l.Creates != 2 || l.AccountID != a.ID || !l.LearnedAt.Equal(db.Now()) {
		t.Fatalf("LearnedFlavor = %+v, %v, %v; want %s from 2 creates of account %d", l, ok, err, priv, a.ID)
	}
	other := k
	other.Job = "lint"
	if _, ok, _ := db.LearnedFlavor(ctx, other); ok {
		t.Fatal("another job of the workflow learned the flavor")
	}
	if err := db.LearnJobFlavor(ctx, jobs.Learned{Key: k, AccountID: a.ID}); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("LearnJobFlavor without a flavor = %v; want EINVALID", err)
	}
}

func TestAccountMayPrivileged(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	a, err := db.EnsureAccount(ctx, "team", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateToken(ctx, NewToken{AccountID: a.ID, Prefix: "smek_base", Hash: []byte("h1")}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AccountMayPrivileged(ctx, a.ID); err != nil || ok {
		t.Fatalf("with a baseline token = %v, %v; want false", ok, err)
	}
	if _, err := db.CreateToken(ctx, NewToken{AccountID: a.ID, Prefix: "smek_priv", Hash: []byte("h2"), AllowPrivileged: true}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AccountMayPrivileged(ctx, a.ID); err != nil || !ok {
		t.Fatalf("with a privileged token = %v, %v; want true", ok, err)
	}
	if err := db.RevokeToken(ctx, "smek_priv"); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AccountMayPrivileged(ctx, a.ID); err != nil || ok {
		t.Fatalf("after the privileged token is revoked = %v, %v; want false", ok, err)
	}
}
