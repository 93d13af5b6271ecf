package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/smek/action/internal/cluster"
)

// ErrPoolEmpty means no ready server of the wanted flavor was there to claim.
var ErrPoolEmpty = errors.New("no ready server")

const serverColumns = `id, backend, k8s_version, size, privileged, state, cluster_id, data, failure, created_at, updated_at, ready_at`

func scanMember(s scanner) (cluster.Member, error) {
	var v cluster.Member
	var priv int
	var clusterID sql.NullString
	var created, updated, ready sql.NullInt64
	var data string
	err := s.Scan(&v.ID, &v.Backend, &v.Flavor.K8sVersion, &v.Flavor.Size, &priv, &v.State, &clusterID, &data, &v.Failure, &created, &updated, &ready)
	v.Flavor.Privileged = priv == 1
	v.ClusterID = cluster.ID(clusterID.String)
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

// CreateMember records a new pool member in state creating.
func (db *DB) CreateMember(ctx context.Context, backend string, f cluster.Flavor) (cluster.Member, error) {
	now := db.Now()
	s := cluster.Member{ID: NewMemberID(), Backend: backend, Flavor: f, State: cluster.MemberCreating, Data: []byte("{}"), CreatedAt: now, UpdatedAt: now}
	_, err := db.db.ExecContext(ctx, `INSERT INTO servers (id, backend, k8s_version, size, privileged, state, data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)`, s.ID, backend, f.K8sVersion, f.Size, b2i(f.Privileged), s.State, ms(now), ms(now))
	if err != nil {
		return s, fmt.Errorf("create server: %w", err)
	}
	return s, db.recordEvent(ctx, db.db, event{subject: s.ID, typ: "created", to: string(s.State), cause: "pool", message: f.String()})
}

// SetMemberState moves a server to state, storing data when not nil and a
// failure reason when not empty. Moving to ready stamps ready_at; moving to
// deleted or dirty clears nothing: the cluster link is cleared by
// ReleaseServer.
func (db *DB) SetMemberState(ctx context.Context, id string, state cluster.MemberState, data []byte, failure string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var from string
		var clusterID sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT state, cluster_id FROM servers WHERE id = ?`, id).Scan(&from, &clusterID); err != nil {
			return fmt.Errorf("server %s: %w", id, err)
		}
		now := ms(db.Now())
		// A server that fails or vanishes while serving a cluster takes the
		// cluster with it: the cluster is failed, never left "running" on
		// nothing.
		if clusterID.Valid && (state == cluster.MemberFailed || state == cluster.MemberDeleted) {
			res, err := tx.ExecContext(ctx, `UPDATE clusters SET status = 'failed', terminated_at = ? WHERE id = ? AND status IN ('pending', 'running', 'stopped')`, now, clusterID.String)
			if err != nil {
				return fmt.Errorf("fail cluster %s: %w", clusterID.String, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if err := db.recordEvent(ctx, tx, event{subject: clusterID.String, typ: string(cluster.Failed), to: string(cluster.Failed), cause: "reconciler",
					message: "its server " + id + " failed: " + failure}); err != nil {
					return err
				}
			}
		}
		q := `UPDATE servers SET state = ?, updated_at = ?, failure = ?`
		args := []any{state, now, failure}
		if data != nil {
			q += `, data = ?`
			args = append(args, string(data))
		}
		if state == cluster.MemberReady {
			q += `, ready_at = ?, cluster_id = NULL`
			args = append(args, now)
		}
		if state == cluster.MemberDeleted || state == cluster.MemberFailed {
			q += `, cluster_id = NULL`
		}
		q += ` WHERE id = ?`
		args = append(args, id)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("set server %s %s: %w", id, state, err)
		}
		return db.recordEvent(ctx, tx, event{subject: id, typ: string(state), from: from, to: string(state), cause: "pool", message: failure})
	})
}

// Member returns one pool member.
func (db *DB) Member(ctx context.Context, id string) (cluster.Member, error) {
	s, err := scanMember(db.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE id = ?`, id))
	if isNoRows(err) {
		return s, cluster.Errorf(cluster.ENOTFOUND, "server", "no server %s", id)
	}
	return s, err
}

// Servers lists the pool members of a backend that are not deleted.
func (db *DB) Members(ctx context.Context, backend string) ([]cluster.Member, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE backend = ? AND state <> 'deleted' ORDER BY created_at`, backend)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
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
