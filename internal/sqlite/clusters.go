package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

const clusterColumns = `c.id, c.account_id, a.name, c.status, c.k8s_version, c.size, c.privileged, c.keep_cluster,
	c.minutes_to_live, c.notification_email, COALESCE(c.server_id, ''), c.api_server,
	c.run_repository, c.run_repository_id, c.run_id, c.run_attempt, c.run_job, c.run_runner, c.run_ref, c.run_sha,
	c.run_event, c.run_workflow_ref, c.run_actor, c.run_pull_request, c.run_installation_id, c.run_verified, c.run_job_id,
	c.queued_ms, c.claimed_ms, c.ready_ms, c.warm, c.created_at, c.expires_at, c.stopped_at, c.terminated_at,
	c.stopped_expires_at, c.kept_at, c.kept_reason`

const clusterFrom = ` FROM clusters c JOIN accounts a ON a.id = c.account_id`

func scanCluster(s scanner) (cluster.Cluster, error) {
	var c cluster.Cluster
	var priv, keep, verified, warm int
	var queued, claimed, ready int64
	var created, expires, stopped, terminated, stoppedExpires, kept sql.NullInt64
	r := &c.Run
	err := s.Scan(&c.ID, &c.AccountID, &c.Account, &c.Status, &c.Spec.K8sVersion, &c.Spec.Size, &priv, &keep,
		&c.Spec.MinutesToLive, &c.Spec.NotificationEmail, &c.MemberID, &c.APIServer,
		&r.Repository, &r.RepositoryID, &r.RunID, &r.RunAttempt, &r.Job, &r.Runner, &r.Ref, &r.SHA,
		&r.Event, &r.WorkflowRef, &r.Actor, &r.PullRequest, &r.InstallationID, &verified, &r.JobID,
		&queued, &claimed, &ready, &warm, &created, &expires, &stopped, &terminated, &stoppedExpires,
		&kept, &c.KeptReason)
	c.Spec.Privileged, c.Spec.KeepCluster, r.Verified = priv == 1, keep == 1, verified == 1
	c.Timings = cluster.Timings{Queued: time.Duration(queued) * time.Millisecond, Claimed: time.Duration(claimed) * time.Millisecond,
		Ready: time.Duration(ready) * time.Millisecond, Warm: warm == 1}
	c.CreatedAt, c.ExpiresAt, c.StoppedAt, c.TerminatedAt = fromMS(created), fromMS(expires), fromMS(stopped), fromMS(terminated)
	c.StoppedExpiresAt, c.KeptAt = fromMS(stoppedExpires), fromMS(kept)
	return c, err
}

// ClaimMember is the heart of a create: in one transaction it checks the
// account's parallel-cluster limit, takes the oldest ready member of the
// cluster's flavor, records the cluster as pending on it and marks the
// member claimed (ready → claimed, the one way a member is claimed).
// SQLite's single writer makes the claim exclusive: two creates can never
// get the same member. cluster.ErrPoolEmpty means there was none.
//
// A cluster without an id (the create's usual case) gets the one its
// member reserved (cluster.Member.ReservedID), so the node is labelled
// already; a member without a reservation gives it a fresh one. The
// returned member's ClusterID is the cluster's id.
func (db *DB) ClaimMember(ctx context.Context, c cluster.Cluster, backend string) (cluster.Member, error) {
	var s cluster.Member
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkRunLimit(ctx, tx, c.AccountID); err != nil {
			return err
		}
		f := c.Spec.Flavor()
		var err error
		s, err = scanMember(tx.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers
			WHERE backend = ? AND state = 'ready' AND k8s_version = ? AND size = ? AND privileged = ?
			ORDER BY ready_at LIMIT 1`, backend, f.K8sVersion, f.Size, b2i(f.Privileged)))
		if isNoRows(err) {
			return cluster.ErrPoolEmpty
		}
		if err != nil {
			return fmt.Errorf("find ready member: %w", err)
		}
		if c.ID == "" {
			c.ID = s.ReservedID
		}
		if c.ID == "" {
			c.ID = cluster.NewID()
		}
		now := ms(db.Now())
		res, err := tx.ExecContext(ctx, `UPDATE servers SET state = 'claimed', cluster_id = ?, updated_at = ? WHERE id = ? AND state = 'ready'`, c.ID, now, s.ID)
		if err != nil {
			return fmt.Errorf("claim member: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("claim member %s: it was taken", s.ID)
		}
		s.State, s.ClusterID = cluster.MemberClaimed, c.ID
		r := c.Run
		_, err = tx.ExecContext(ctx, `INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster,
			minutes_to_live, notification_email, server_id, run_repository, run_repository_id, run_id, run_attempt, run_job,
			run_runner, run_ref, run_sha, run_event, run_workflow_ref, run_actor, run_pull_request, run_installation_id,
			run_verified, queued_ms, warm, created_at, expires_at, run_job_id)
			VALUES (`+placeholders(29)+`)`,
			c.ID, c.AccountID, cluster.Pending, c.Spec.K8sVersion, c.Spec.Size, b2i(c.Spec.Privileged), b2i(c.Spec.KeepCluster),
			c.Spec.MinutesToLive, c.Spec.NotificationEmail, s.ID, r.Repository, r.RepositoryID, r.RunID, r.RunAttempt, r.Job,
			r.Runner, r.Ref, r.SHA, r.Event, r.WorkflowRef, r.Actor, r.PullRequest, r.InstallationID,
			b2i(r.Verified), c.Timings.Queued.Milliseconds(), b2i(c.Timings.Warm), ms(c.CreatedAt), ms(c.ExpiresAt), r.JobID)
		if err != nil {
			return fmt.Errorf("insert cluster: %w", err)
		}
		if err := db.recordEvent(ctx, tx, event{subject: s.ID, typ: "claimed", from: string(cluster.MemberReady), to: string(cluster.MemberClaimed), cause: "api", message: string(c.ID)}); err != nil {
			return err
		}
		actor := c.CreatedBy
		if actor == "" {
			actor = c.Account
		}
		return db.recordEvent(ctx, tx, event{subject: string(c.ID), typ: "created", to: string(cluster.Pending), cause: "api", actor: actor, message: "on server " + s.ID})
	})
	return s, err
}

// checkRunLimit refuses one more pending or running cluster for an account
// that is suspended (max-clusters 0) or at its max-clusters. It runs in the
// transaction that adds the cluster, so that concurrent creates and starts
// cannot all slip under the limit.
func checkRunLimit(ctx context.Context, tx *sql.Tx, accountID int64) error {
	var live, max int
	var name string
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM clusters WHERE account_id = ? AND status IN ('pending', 'running')),
		max_clusters, name FROM accounts WHERE id = ?`, accountID, accountID).Scan(&live, &max, &name); err != nil {
		return fmt.Errorf("count clusters: %w", err)
	}
	if max == 0 {
		return cluster.SuspendedError(name)
	}
	if live >= max {
		return cluster.LimitError(max)
	}
	return nil
}

// CheckRunLimit refuses one more pending or running cluster for an
// account, as checkRunLimit does in the transaction that adds it: a look
// before slow work (a start at the backend), which that transaction
// repeats.
func (db *DB) CheckRunLimit(ctx context.Context, accountID int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error { return checkRunLimit(ctx, tx, accountID) })
}

// checkStoppedLimit refuses one more stopped cluster for an account at its
// max-stopped-clusters, in the transaction that stops the cluster.
func checkStoppedLimit(ctx context.Context, tx *sql.Tx, accountID int64) error {
	var stopped, max int
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM clusters WHERE account_id = ? AND status = 'stopped'),
		max_stopped_clusters FROM accounts WHERE id = ?`, accountID, accountID).Scan(&stopped, &max); err != nil {
		return fmt.Errorf("count stopped clusters: %w", err)
	}
	if stopped >= max {
		return cluster.StoppedLimitError(max)
	}
	return nil
}

// CountLive returns how many pending or running clusters an account has.
func (db *DB) CountLive(ctx context.Context, accountID int64) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM clusters WHERE account_id = ? AND status IN ('pending', 'running')`, accountID).Scan(&n)
	return n, err
}

// UpdateCluster applies a change to a cluster and its member in one
// transaction. A cluster whose status is not in ch.From is ECONFLICT. The
// account's limits are checked in the same transaction, as the claim does:
// a start (stopped → running) against max-clusters (ESUSPENDED at 0,
// ELIMIT when full), a stop (running → stopped) against
// max-stopped-clusters (ELIMIT).
func (db *DB) UpdateCluster(ctx context.Context, id cluster.ID, ch cluster.Change) (cluster.Cluster, error) {
	var c cluster.Cluster
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCluster(tx.QueryRowContext(ctx, `SELECT `+clusterColumns+clusterFrom+` WHERE c.id = ?`, id))
		if isNoRows(err) {
			return cluster.Errorf(cluster.ENOTFOUND, "cluster-id", "no cluster %s", id)
		}
		if err != nil {
			return err
		}
		if len(ch.From) > 0 && !slices.Contains(ch.From, c.Status) {
			return cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s", id, c.Status)
		}
		if !ch.Undo {
			switch {
			case c.Status == cluster.Stopped && ch.To == cluster.Running:
				err = checkRunLimit(ctx, tx, c.AccountID)
			case c.Status != cluster.Stopped && ch.To == cluster.Stopped:
				err = checkStoppedLimit(ctx, tx, c.AccountID)
			}
			if err != nil {
				return err
			}
		}
		now := db.Now()
		sets := []string{"status = ?"}
		args := []any{ch.To}
		if c.Status != ch.To {
			switch ch.To {
			case cluster.Stopped:
				sets, args = append(sets, "stopped_at = ?", "stopped_expires_at = ?", "stopped_warned_at = NULL"), append(args, ms(now), nullMS(ch.StoppedUntil))
				c.StoppedAt, c.StoppedExpiresAt = now, ch.StoppedUntil
			case cluster.Terminated, cluster.Failed:
				sets, args = append(sets, "terminated_at = ?"), append(args, ms(now))
				c.TerminatedAt = now
			case cluster.Running:
				sets = append(sets, "stopped_at = NULL")
				c.StoppedAt = time.Time{}
			}
			// Only a stopped cluster has a stopped deadline.
			if ch.To != cluster.Stopped {
				sets = append(sets, "stopped_expires_at = NULL", "stopped_warned_at = NULL")
				c.StoppedExpiresAt = time.Time{}
			}
		}
		if !ch.ExpiresAt.IsZero() {
			sets, args = append(sets, "expires_at = ?", "warned_at = NULL"), append(args, ms(ch.ExpiresAt))
			c.ExpiresAt = ch.ExpiresAt
		}
		if ch.Keep != nil {
			sets, args = append(sets, "kept_at = ?", "kept_reason = ?"), append(args, ms(now), ch.Keep.Reason)
			c.KeptAt, c.KeptReason = now, ch.Keep.Reason
		}
		if ch.APIServer != "" {
			sets, args = append(sets, "api_server = ?"), append(args, ch.APIServer)
			c.APIServer = ch.APIServer
		}
		if t := ch.Timings; t != nil {
			sets = append(sets, "queued_ms = ?", "claimed_ms = ?", "ready_ms = ?", "warm = ?")
			args = append(args, t.Queued.Milliseconds(), t.Claimed.Milliseconds(), t.Ready.Milliseconds(), b2i(t.Warm))
			c.Timings = *t
		}
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, `UPDATE clusters SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update cluster %s: %w", id, err)
		}
		from := c.Status
		c.Status = ch.To
		if c.MemberID != "" && ch.MemberState != "" {
			if err := db.changeMember(ctx, tx, c.ID, c.MemberID, ch, now); err != nil {
				return err
			}
		}
		typ := string(ch.To)
		if from == ch.To {
			typ = "updated"
		}
		return db.recordEvent(ctx, tx, event{subject: string(id), typ: typ, from: string(from), to: string(ch.To), cause: ch.Cause, actor: ch.Actor, message: ch.Message})
	})
	return c, err
}

// changeMember is the member's part of a cluster change: it moves the
// member of cluster id to ch.MemberState, when the member still serves that
// cluster and the move is one of its transitions.
func (db *DB) changeMember(ctx context.Context, tx *sql.Tx, id cluster.ID, memberID string, ch cluster.Change, now time.Time) error {
	from, serves, err := memberState(ctx, tx, memberID)
	if err != nil {
		return err
	}
	if serves != id {
		return nil // released before: the member is no longer this cluster's
	}
	if err := cluster.CheckMemberTransition(memberID, from, ch.MemberState); err != nil {
		return err
	}
	q := `UPDATE servers SET state = ?, updated_at = ?`
	args := []any{ch.MemberState, ms(now)}
	if ch.ReleaseMember {
		q += `, cluster_id = NULL`
	}
	if ch.MemberData != nil {
		q, args = q+`, data = ?`, append(args, string(ch.MemberData))
	}
	if from == cluster.MemberHibernated && ch.MemberState == cluster.MemberClaimed {
		// Restored: the member has a server again, and its snapshot is
		// forgotten in the same step (the pool deletes it next; one left
		// behind belongs to no hibernated member, and the backend's
		// reconcile deletes it).
		q += `, snapshot_gb = NULL`
	}
	if _, err := tx.ExecContext(ctx, q+` WHERE id = ?`, append(args, memberID)...); err != nil {
		return fmt.Errorf("update member %s: %w", memberID, err)
	}
	return db.recordEvent(ctx, tx, event{subject: memberID, typ: string(ch.MemberState), from: string(from), to: string(ch.MemberState), cause: ch.Cause, actor: ch.Actor, message: string(id)})
}

// Cluster returns a cluster. With accountID not 0, a cluster of another
// account is ENOTFOUND, exactly like one that does not exist.
func (db *DB) Cluster(ctx context.Context, accountID int64, id cluster.ID) (cluster.Cluster, error) {
	c, err := scanCluster(db.db.QueryRowContext(ctx, `SELECT `+clusterColumns+clusterFrom+` WHERE c.id = ?`, id))
	if isNoRows(err) || (err == nil && accountID != 0 && c.AccountID != accountID) {
		return cluster.Cluster{}, cluster.Errorf(cluster.ENOTFOUND, "cluster-id", "no cluster %s", id)
	}
	return c, err
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Clusters lists clusters, newest first.
func (db *DB) Clusters(ctx context.Context, f cluster.Filter) ([]cluster.Cluster, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if f.AccountID != 0 {
		add("c.account_id = ?", f.AccountID)
	}
	if len(f.Statuses) > 0 {
		where = append(where, "c.status IN ("+placeholders(len(f.Statuses))+")")
		for _, s := range f.Statuses {
			args = append(args, s)
		}
	}
	if f.RepositoryID != 0 {
		add("c.run_repository_id = ?", f.RepositoryID)
	}
	if f.RunID != 0 {
		add("c.run_id = ?", f.RunID)
	}
	if f.RunAttempt != 0 {
		add("c.run_attempt = ?", f.RunAttempt)
	}
	if f.Runner != "" {
		add("c.run_runner = ?", f.Runner)
	}
	if f.PullRequest != 0 {
		add("c.run_pull_request = ?", f.PullRequest)
	}
	if f.InstallationID != 0 {
		add("c.run_installation_id = ?", f.InstallationID)
	}
	if f.RepositoryOwner != "" {
		// LIKE ignores ASCII case, as GitHub's names do.
		add(`c.run_repository LIKE ? ESCAPE '\'`, likeEscaper.Replace(f.RepositoryOwner)+"/%")
	}
	q := `SELECT ` + clusterColumns + clusterFrom
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY c.created_at DESC, c.id`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return db.queryClusters(ctx, q, args...)
}

// DueClusters returns the running or pending clusters whose deadline has
// passed at now.
func (db *DB) DueClusters(ctx context.Context, now time.Time) ([]cluster.Cluster, error) {
	return db.clustersWhere(ctx, `c.status IN ('pending', 'running') AND c.expires_at <= ?`, ms(now))
}

// ExpiringClusters returns running clusters whose deadline is before
// horizon and whose owner has not been warned yet.
func (db *DB) ExpiringClusters(ctx context.Context, horizon time.Time) ([]cluster.Cluster, error) {
	return db.clustersWhere(ctx, `c.status = 'running' AND c.expires_at <= ? AND c.warned_at IS NULL AND c.notification_email <> ''`, ms(horizon))
}

// MarkWarned records that the owner of a cluster was warned of its deadline.
func (db *DB) MarkWarned(ctx context.Context, id cluster.ID) error {
	_, err := db.w.ExecContext(ctx, `UPDATE clusters SET warned_at = ? WHERE id = ?`, ms(db.Now()), id)
	return err
}

// DueStoppedClusters returns the stopped clusters whose stopped deadline
// has passed at now.
func (db *DB) DueStoppedClusters(ctx context.Context, now time.Time) ([]cluster.Cluster, error) {
	return db.queryClusters(ctx, `SELECT `+clusterColumns+clusterFrom+`
		WHERE c.status = 'stopped' AND c.stopped_expires_at <= ? ORDER BY c.stopped_expires_at`, ms(now))
}

// StoppedExpiringClusters returns the stopped clusters whose stopped
// deadline is before horizon and whose owner has not been warned yet.
func (db *DB) StoppedExpiringClusters(ctx context.Context, horizon time.Time) ([]cluster.Cluster, error) {
	return db.queryClusters(ctx, `SELECT `+clusterColumns+clusterFrom+`
		WHERE c.status = 'stopped' AND c.stopped_expires_at <= ? AND c.stopped_warned_at IS NULL AND c.notification_email <> ''
		ORDER BY c.stopped_expires_at`, ms(horizon))
}

// MarkStoppedWarned records that the owner of a stopped cluster was warned
// of its stopped deadline. It reports false when the cluster is no longer
// stopped or was already marked, so that the warning goes out once.
func (db *DB) MarkStoppedWarned(ctx context.Context, id cluster.ID) (bool, error) {
	n, err := db.execCount(ctx, `UPDATE clusters SET stopped_warned_at = ?
		WHERE id = ? AND status = 'stopped' AND stopped_warned_at IS NULL`, ms(db.Now()), id)
	if err != nil {
		return false, fmt.Errorf("mark %s warned: %w", id, err)
	}
	return n == 1, nil
}

// SetMissingStoppedDeadlines gives the stopped clusters that have no
// stopped deadline (stopped before there was one) the deadline until, and
// returns how many it changed.
func (db *DB) SetMissingStoppedDeadlines(ctx context.Context, until time.Time) (int64, error) {
	n, err := db.execCount(ctx, `UPDATE clusters SET stopped_expires_at = ?
		WHERE status = 'stopped' AND stopped_expires_at IS NULL`, ms(until))
	if err != nil {
		return 0, fmt.Errorf("set stopped deadlines: %w", err)
	}
	return n, nil
}

func (db *DB) clustersWhere(ctx context.Context, where string, args ...any) ([]cluster.Cluster, error) {
	return db.queryClusters(ctx, `SELECT `+clusterColumns+clusterFrom+` WHERE `+where+` ORDER BY c.expires_at`, args...)
}

// queryClusters runs a query that selects clusterColumns.
func (db *DB) queryClusters(ctx context.Context, q string, args ...any) ([]cluster.Cluster, error) {
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []cluster.Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListedClusters returns what GET /list shows of an account, newest
// first: its pending, running and stopped clusters, and the clusters lost
// while running (failed after they ran: their API address is recorded)
// until their deadline, so that the owner sees what became of them.
// Clusters whose create failed never ran and are not listed.
func (db *DB) ListedClusters(ctx context.Context, accountID int64) ([]cluster.Summary, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, status FROM clusters
		WHERE account_id = ? AND (status IN (?, ?, ?) OR (status = ? AND api_server != '' AND expires_at > ?))
		ORDER BY created_at DESC, id`,
		accountID, cluster.Pending, cluster.Running, cluster.Stopped, cluster.Failed, ms(db.Now()))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	out := make([]cluster.Summary, 0, 64)
	for rows.Next() {
		var c cluster.Summary
		if err := rows.Scan(&c.ID, &c.Status); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
