package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp/jobs"
)

const jobColumns = `id, installation_id, repository_id, repository, workflow, job, run_id, run_attempt, queued_at, state,
	k8s_version, size, privileged, until`

func scanJob(s scanner) (jobs.Job, error) {
	var j jobs.Job
	var queued, until sql.NullInt64
	var priv int
	err := s.Scan(&j.ID, &j.InstallationID, &j.RepositoryID, &j.Repository, &j.Workflow, &j.Job, &j.RunID, &j.RunAttempt,
		&queued, &j.State, &j.Flavor.K8sVersion, &j.Flavor.Size, &priv, &until)
	j.QueuedAt, j.Until, j.Flavor.Privileged = fromMS(queued), fromMS(until), priv == 1
	return j, err
}

// RecordQueuedJob records a job GitHub said was queued. A job recorded
// before (a redelivery) is left as it is: isNew is false and rec is what
// the database has.
func (db *DB) RecordQueuedJob(ctx context.Context, j jobs.Job) (rec jobs.Job, isNew bool, err error) {
	switch {
	case j.ID <= 0:
		return rec, false, cluster.Errorf(cluster.EINVALID, "workflow_job.id", "a queued job needs a positive id, got %d", j.ID)
	case j.InstallationID <= 0:
		return rec, false, cluster.Errorf(cluster.EINVALID, "installation.id", "a queued job needs a positive installation id, got %d", j.InstallationID)
	case j.RepositoryID <= 0:
		return rec, false, cluster.Errorf(cluster.EINVALID, "repository.id", "a queued job needs a positive repository id, got %d", j.RepositoryID)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO prewarm_jobs (id, installation_id, repository_id, repository, workflow, job,
			run_id, run_attempt, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			j.ID, j.InstallationID, j.RepositoryID, j.Repository, j.Workflow, j.Job, j.RunID, j.RunAttempt, ms(j.QueuedAt))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		isNew = n == 1
		rec, err = jobByID(ctx, tx, j.ID)
		return err
	})
	if err != nil {
		return rec, false, fmt.Errorf("record queued job %d: %w", j.ID, err)
	}
	return rec, isNew, nil
}

// QueuedJob returns a recorded job; ENOTFOUND when there is none.
func (db *DB) QueuedJob(ctx context.Context, id int64) (jobs.Job, error) {
	j, err := jobByID(ctx, db.db, id)
	if err != nil && cluster.ErrorCode(err) != cluster.ENOTFOUND {
		err = fmt.Errorf("queued job %d: %w", id, err)
	}
	return j, err
}

// jobByID reads a recorded job; ENOTFOUND when there is none.
func jobByID(ctx context.Context, q queryer, id int64) (jobs.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM prewarm_jobs WHERE id = ?`, id))
	if isNoRows(err) {
		return j, cluster.Errorf(cluster.ENOTFOUND, "job-id", "no queued job %d is recorded", id)
	}
	return j, err
}

// JobsOfRun returns the recorded jobs of a workflow run, by id.
func (db *DB) JobsOfRun(ctx context.Context, repositoryID, runID int64) ([]jobs.Job, error) {
	return db.queryJobs(ctx, `SELECT `+jobColumns+` FROM prewarm_jobs WHERE repository_id = ? AND run_id = ? ORDER BY id`, repositoryID, runID)
}

// OpenPrewarms returns the jobs that hold a pre-warm at now (queued, not
// expired), by id: a restarted server raises them again.
func (db *DB) OpenPrewarms(ctx context.Context, now time.Time) ([]jobs.Job, error) {
	return db.queryJobs(ctx, `SELECT `+jobColumns+` FROM prewarm_jobs WHERE state = 'queued' AND until > ? ORDER BY id`, ms(now))
}

func (db *DB) queryJobs(ctx context.Context, q string, args ...any) ([]jobs.Job, error) {
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("queued jobs: %w", err)
	}
	defer rows.Close()
	var out []jobs.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("queued jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// StartJobPrewarm records a pre-warm of flavor f until the given time for
// a queued job, unless the job has one already, is no longer queued, or
// its installation holds limit pre-warms at now (started is false; the
// count and the write are one transaction, so concurrent deliveries cannot
// pass the limit together).
func (db *DB) StartJobPrewarm(ctx context.Context, id int64, f cluster.Flavor, now, until time.Time, limit int) (started bool, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		j, err := jobByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if j.State != jobs.Queued || !j.Until.IsZero() {
			return nil
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM prewarm_jobs WHERE installation_id = ? AND state = 'queued' AND until > ?`,
			j.InstallationID, ms(now)).Scan(&open); err != nil {
			return err
		}
		if open >= limit {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE prewarm_jobs SET k8s_version = ?, size = ?, privileged = ?, until = ? WHERE id = ?`,
			f.K8sVersion, f.Size, b2i(f.Privileged), ms(until), id)
		started = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("start pre-warm of job %d: %w", id, err)
	}
	return started, nil
}

// EndQueuedJob moves a queued job to state (Created or Completed) and
// returns it as it was; ended is false when it was not queued any more
// (or not recorded: ENOTFOUND).
func (db *DB) EndQueuedJob(ctx context.Context, id int64, state jobs.State) (before jobs.Job, ended bool, err error) {
	if state != jobs.Created && state != jobs.Completed {
		return before, false, fmt.Errorf("end queued job %d: state %q is not created or completed", id, state)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		before, err = jobByID(ctx, tx, id)
		if err != nil || before.State != jobs.Queued {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE prewarm_jobs SET state = ? WHERE id = ?`, state, id)
		ended = err == nil
		return err
	})
	if err != nil {
		return before, false, fmt.Errorf("end queued job %d: %w", id, err)
	}
	return before, ended, nil
}

// PruneQueuedJobs deletes the jobs queued before the given time and
// returns how many.
func (db *DB) PruneQueuedJobs(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM prewarm_jobs WHERE queued_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune queued jobs: %w", err)
	}
	return res.RowsAffected()
}

// LearnJobFlavor records the flavor a job's create asked for: the job's
// last create wins.
func (db *DB) LearnJobFlavor(ctx context.Context, l jobs.Learned) error {
	switch {
	case l.InstallationID <= 0 || l.RepositoryID <= 0:
		return cluster.Errorf(cluster.EINVALID, "job", "a learned job needs positive installation and repository ids, got %d and %d", l.InstallationID, l.RepositoryID)
	case l.Flavor.K8sVersion == "" || l.Flavor.Size == "":
		return cluster.Errorf(cluster.EINVALID, "flavor", "a learned flavor needs a Kubernetes version and a size, got %q", l.Flavor)
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO prewarm_flavors (installation_id, repository_id, workflow, job, k8s_version, size,
		privileged, account_id, learned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (installation_id, repository_id, workflow, job) DO UPDATE SET k8s_version = excluded.k8s_version,
		size = excluded.size, privileged = excluded.privileged, account_id = excluded.account_id,
		learned_at = excluded.learned_at, creates = creates + 1`,
		l.InstallationID, l.RepositoryID, l.Workflow, l.Job, l.Flavor.K8sVersion, l.Flavor.Size, b2i(l.Flavor.Privileged),
		l.AccountID, ms(l.LearnedAt))
	if err != nil {
		return fmt.Errorf("learn flavor of job %q: %w", l.Job, err)
	}
	return nil
}

// LearnedFlavor returns what a job learned; ok is false when it never made
// a cluster.
func (db *DB) LearnedFlavor(ctx context.Context, k jobs.Key) (l jobs.Learned, ok bool, err error) {
	var at sql.NullInt64
	var priv int
	err = db.db.QueryRowContext(ctx, `SELECT k8s_version, size, privileged, account_id, learned_at, creates FROM prewarm_flavors
		WHERE installation_id = ? AND repository_id = ? AND workflow = ? AND job = ?`,
		k.InstallationID, k.RepositoryID, k.Workflow, k.Job).
		Scan(&l.Flavor.K8sVersion, &l.Flavor.Size, &priv, &l.AccountID, &at, &l.Creates)
	if isNoRows(err) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("learned flavor of job %q: %w", k.Job, err)
	}
	l.Key, l.Flavor.Privileged, l.LearnedAt = k, priv == 1, fromMS(at)
	return l, true, nil
}

// AccountMayPrivileged reports whether any credential of the account may
// create privileged clusters now: a token not revoked, or an OIDC policy,
// that allows it.
func (db *DB) AccountMayPrivileged(ctx context.Context, accountID int64) (bool, error) {
	var ok bool
	err := db.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE account_id = ? AND allow_privileged = 1 AND revoked_at IS NULL)
		OR EXISTS (SELECT 1 FROM oidc_policies WHERE account_id = ? AND allow_privileged = 1)`, accountID, accountID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("privileged credentials of account %d: %w", accountID, err)
	}
	return ok, nil
}
