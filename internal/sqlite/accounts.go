package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/smek/action/internal/cluster"
)

// AccountLimits are the limits to set on an account; nil fields keep the
// current value (or the default for a new account). 0 is a value, not
// "unset": max-clusters 0 suspends the account, max-stopped-clusters 0
// allows no stopped cluster.
type AccountLimits struct {
	MaxClusters        *int
	MaxMinutesToLive   *int
	MaxStoppedClusters *int
}

// validate refuses limits no account can have.
func (l AccountLimits) validate() error {
	for _, v := range []struct {
		name string
		val  *int
		min  int
	}{
		{"max-clusters", l.MaxClusters, 0},
		{"max-minutes-to-live", l.MaxMinutesToLive, 1},
		{"max-stopped-clusters", l.MaxStoppedClusters, 0},
	} {
		if v.val != nil && *v.val < v.min {
			return cluster.Errorf(cluster.EINVALID, v.name, "%s must be at least %d, got %d", v.name, v.min, *v.val)
		}
	}
	return nil
}

// EnsureAccount returns the account called name, creating it when it does
// not exist, and applies the given limits: on an existing account they
// replace the current ones, for all of its tokens.
func (db *DB) EnsureAccount(ctx context.Context, name string, limits AccountLimits) (cluster.Account, error) {
	if err := limits.validate(); err != nil {
		return cluster.Account{}, err
	}
	var a cluster.Account
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (name, max_clusters, max_minutes_to_live, max_stopped_clusters, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
			name, cluster.DefaultMaxClusters, cluster.DefaultMaxMinutesToLive, cluster.DefaultMaxStoppedClusters, ms(db.Now()))
		if err != nil {
			return err
		}
		for _, set := range []struct {
			column string
			val    *int
		}{
			{"max_clusters", limits.MaxClusters},
			{"max_minutes_to_live", limits.MaxMinutesToLive},
			{"max_stopped_clusters", limits.MaxStoppedClusters},
		} {
			if set.val == nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET `+set.column+` = ? WHERE name = ?`, *set.val, name); err != nil {
				return err
			}
		}
		a, err = accountByName(ctx, tx, name)
		return err
	})
	if err != nil {
		return cluster.Account{}, fmt.Errorf("ensure account %q: %w", name, err)
	}
	return a, nil
}

// AccountByName returns the account called name.
func (db *DB) AccountByName(ctx context.Context, name string) (cluster.Account, error) {
	a, err := accountByName(ctx, db.db, name)
	if isNoRows(err) {
		return a, cluster.Errorf(cluster.ENOTFOUND, "account", "no account named %q", name)
	}
	return a, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

const accountColumns = `id, name, max_clusters, max_minutes_to_live, max_stopped_clusters`

func accountByName(ctx context.Context, q queryer, name string) (cluster.Account, error) {
	return scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE name = ?`, name))
}

func scanAccount(s scanner) (cluster.Account, error) {
	var a cluster.Account
	err := s.Scan(&a.ID, &a.Name, &a.MaxClusters, &a.MaxMinutesToLive, &a.MaxStoppedClusters)
	return a, err
}
