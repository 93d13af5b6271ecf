package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"

	"github.com/smek/action/internal/cluster"
)

const serverColumns = `id, backend, k8s_version, size, privileged, state, cluster_id, reserved_cluster_id, data, failure, created_at, updated_at, ready_at, snapshot_gb`

func scanMember(s scanner) (cluster.Member, error) {
	var v cluster.Member
	var priv int
	var clusterID, reserved sql.NullString
	var created, updated, ready sql.NullInt64
	var data string
	var snapshot sql.NullFloat64
	err := s.Scan(&v.ID, &v.Backend, &v.Flavor.K8sVersion, &v.Flavor.Size, &priv, &v.State, &clusterID, &reserved, &data, &v.Failure, &created, &updated, &ready, &snapshot)
	v.Snapshot, v.SnapshotGB = snapshot.Valid, snapshot.Float64
	v.Flavor.Privileged = priv == 1
	v.ClusterID, v.ReservedID = cluster.ID(clusterID.String), cluster.ID(reserved.String)
	v.Data = []byte(data)
	v.CreatedAt, v.UpdatedAt, v.ReadyAt = fromMS(created), fromMS(updated), fromMS(ready)
	return v, err
}

// NewMemberID returns a fresh pool member id.
func NewMemberID() string {
	var b [6]byte
	rand.Read(b[:])
	return "s-" + hex.EncodeToString(b[:])
}

// CreateMember records a new pool member in state creating, with the id
// reserved for the cluster that will claim it (cluster.Member.ReservedID).
func (db *DB) CreateMember(ctx context.Context, backend string, f cluster.Flavor) (cluster.Member, error) {
	now := db.Now()
	s := cluster.Member{ID: NewMemberID(), Backend: backend, Flavor: f, State: cluster.MemberCreating, ReservedID: cluster.NewID(),
		Data: []byte("{}"), CreatedAt: now, UpdatedAt: now}
	return s, db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO servers (id, backend, k8s_version, size, privileged, state, reserved_cluster_id, data, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)`, s.ID, backend, f.K8sVersion, f.Size, b2i(f.Privileged), s.State, s.ReservedID, ms(now), ms(now))
		if err != nil {
			return fmt.Errorf("create member: %w", err)
		}
		return db.recordEvent(ctx, tx, event{subject: s.ID, typ: "created", to: string(s.State), cause: "pool", message: f.String()})
	})
}

// SetMemberState moves a member to state, storing data when not nil and a
// failure reason when not empty. The move must be one of the member's
// transitions (cluster.MemberState.CanBecome); any other is ECONFLICT and
// changes nothing. Moving to ready stamps ready_at; moving to ready, failed
// or deleted ends the member's link to a cluster. Moving to rebuilding
// reserves a fresh id for the next cluster (the last one's is never used
// again); moving to failed or deleted drops the reservation. A member that fails while
// it serves a cluster fails the cluster too, in the same transaction
// (failMemberCluster): a cluster is never left running on nothing.
func (db *DB) SetMemberState(ctx context.Context, id string, state cluster.MemberState, data []byte, failure string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		from, clusterID, err := memberState(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := cluster.CheckMemberTransition(id, from, state); err != nil {
			return err
		}
		now := ms(db.Now())
		if state == cluster.MemberFailed && clusterID != "" {
			if err := db.failMemberCluster(ctx, tx, clusterID, id, failure, now); err != nil {
				return err
			}
		}
		q := `UPDATE servers SET state = ?, updated_at = ?, failure = ?`
		args := []any{state, now, failure}
		if data != nil {
			q += `, data = ?`
			args = append(args, string(data))
		}
		if state == cluster.MemberReady {
			q += `, ready_at = ?`
			args = append(args, now)
		}
		if state == cluster.MemberReady || state == cluster.MemberDeleted || state == cluster.MemberFailed {
			q += `, cluster_id = NULL`
		}
		switch {
		case state == cluster.MemberRebuilding && from != cluster.MemberRebuilding:
			q += `, reserved_cluster_id = ?`
			args = append(args, cluster.NewID())
		case state == cluster.MemberDeleted || state == cluster.MemberFailed:
			q += `, reserved_cluster_id = NULL`
		}
		q += ` WHERE id = ?`
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("set member %s %s: %w", id, state, err)
		}
		return db.recordEvent(ctx, tx, event{subject: id, typ: string(state), from: string(from), to: string(state), cause: "pool", message: failure})
	})
}

// memberState reads a member's state and the cluster it serves ("" for
// none) inside a transaction that is about to change it.
func memberState(ctx context.Context, tx *sql.Tx, id string) (cluster.MemberState, cluster.ID, error) {
	var state cluster.MemberState
	var clusterID sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT state, cluster_id FROM servers WHERE id = ?`, id).Scan(&state, &clusterID)
	if isNoRows(err) {
		return "", "", cluster.Errorf(cluster.ENOTFOUND, "", "no member %s", id)
	}
	if err != nil {
		return "", "", fmt.Errorf("read member %s: %w", id, err)
	}
	return state, cluster.ID(clusterID.String), nil
}

// failMemberCluster is the step of a member's move to failed that takes the
// cluster it serves with it: a pending, running or stopped cluster is
// failed, with an event that names the member and the failure.
func (db *DB) failMemberCluster(ctx context.Context, tx *sql.Tx, clusterID cluster.ID, memberID, failure string, now int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE clusters SET status = 'failed', terminated_at = ? WHERE id = ? AND status IN ('pending', 'running', 'stopped')`, now, clusterID)
	if err != nil {
		return fmt.Errorf("fail cluster %s: %w", clusterID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil // it ended already
	}
	return db.recordEvent(ctx, tx, event{subject: string(clusterID), typ: string(cluster.Failed), to: string(cluster.Failed), cause: "reconciler",
		message: "its server " + memberID + " failed: " + failure})
}

// Member returns one pool member.
func (db *DB) Member(ctx context.Context, id string) (cluster.Member, error) {
	s, err := scanMember(db.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE id = ?`, id))
	if isNoRows(err) {
		return s, cluster.Errorf(cluster.ENOTFOUND, "server", "no server %s", id)
	}
	return s, err
}

// Members lists the pool members of a backend that are not deleted.
func (db *DB) Members(ctx context.Context, backend string) ([]cluster.Member, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE backend = ? AND state <> 'deleted' ORDER BY created_at`, backend)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var out []cluster.Member
	for rows.Next() {
		s, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
