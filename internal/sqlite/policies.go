package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

var _ auth.PolicyStore = (*DB)(nil)

const policyColumns = `p.id, p.issuer, p.repository_owner_id, p.repository_id, p.ref, p.environment, p.event,
	p.allow_privileged, p.created_at, a.id, a.name, a.max_clusters, a.max_minutes_to_live, a.max_stopped_clusters`

// AddPolicy validates and stores an OIDC policy for the account named
// p.Account.Name, creating the account if needed, and returns the stored
// policy. A policy with the same conditions is ECONFLICT.
func (db *DB) AddPolicy(ctx context.Context, p auth.Policy) (auth.Policy, error) {
	if err := p.Validate(); err != nil {
		return auth.Policy{}, err
	}
	acct, err := db.EnsureAccount(ctx, p.Account.Name, AccountLimits{})
	if err != nil {
		return auth.Policy{}, fmt.Errorf("add policy: %w", err)
	}
	var id int64
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var existing int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM oidc_policies WHERE issuer = ? AND repository_owner_id = ?
			AND repository_id = ? AND ref = ? AND environment = ? AND event = ?`,
			p.Issuer, p.RepositoryOwnerID, p.RepositoryID, p.Ref, p.Environment, p.Event).Scan(&existing)
		if err == nil {
			return cluster.Errorf(cluster.ECONFLICT, "", "policy %d already has these conditions; remove it first to change its account or rights", existing)
		}
		if !isNoRows(err) {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO oidc_policies (account_id, issuer, repository_owner_id, repository_id,
				ref, environment, event, allow_privileged, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			acct.ID, p.Issuer, p.RepositoryOwnerID, p.RepositoryID, p.Ref, p.Environment, p.Event, b2i(p.AllowPrivileged), ms(db.Now()))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		if cluster.ErrorCode(err) == cluster.ECONFLICT {
			return auth.Policy{}, err
		}
		return auth.Policy{}, fmt.Errorf("add policy: %w", err)
	}
	return policyByID(ctx, db.db, id)
}

// Policies lists all OIDC policies by id.
func (db *DB) Policies(ctx context.Context) ([]auth.Policy, error) {
	return queryPolicies(ctx, db.db, `SELECT `+policyColumns+` FROM oidc_policies p JOIN accounts a ON a.id = p.account_id ORDER BY p.id`)
}

// PoliciesForOwner returns the policies of issuer for one owner id, with
// the accounts' current limits. It implements auth.PolicyStore.
func (db *DB) PoliciesForOwner(ctx context.Context, issuer string, ownerID int64) ([]auth.Policy, error) {
	return queryPolicies(ctx, db.db, `SELECT `+policyColumns+` FROM oidc_policies p JOIN accounts a ON a.id = p.account_id
		WHERE p.issuer = ? AND p.repository_owner_id = ? ORDER BY p.id`, issuer, ownerID)
}

// RemovePolicy deletes the policy with this id. Tokens it admitted stop
// working at once; clusters they created stay.
func (db *DB) RemovePolicy(ctx context.Context, id int64) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM oidc_policies WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("remove policy %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cluster.Errorf(cluster.ENOTFOUND, "policy", "no policy %d", id)
	}
	return nil
}

func policyByID(ctx context.Context, q *sql.DB, id int64) (auth.Policy, error) {
	ps, err := queryPolicies(ctx, q, `SELECT `+policyColumns+` FROM oidc_policies p JOIN accounts a ON a.id = p.account_id WHERE p.id = ?`, id)
	if err != nil {
		return auth.Policy{}, err
	}
	if len(ps) == 0 {
		return auth.Policy{}, cluster.Errorf(cluster.ENOTFOUND, "policy", "no policy %d", id)
	}
	return ps[0], nil
}

func queryPolicies(ctx context.Context, q *sql.DB, query string, args ...any) ([]auth.Policy, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	var out []auth.Policy
	for rows.Next() {
		var p auth.Policy
		var priv int
		var created sql.NullInt64
		if err := rows.Scan(&p.ID, &p.Issuer, &p.RepositoryOwnerID, &p.RepositoryID, &p.Ref, &p.Environment, &p.Event,
			&priv, &created, &p.Account.ID, &p.Account.Name, &p.Account.MaxClusters, &p.Account.MaxMinutesToLive, &p.Account.MaxStoppedClusters); err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		p.AllowPrivileged = priv == 1
		p.CreatedAt = fromMS(created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}
