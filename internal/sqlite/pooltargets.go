package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/smek/action/internal/cluster"
)

// PoolTargets are the warm-pool targets a server recorded when it
// started.
type PoolTargets struct {
	Backend    string
	RecordedAt time.Time
	Targets    map[cluster.Flavor]int
}

// RecordPoolTargets replaces the recorded pool targets by those of the
// server that is starting.
func (db *DB) RecordPoolTargets(ctx context.Context, backend string, targets map[cluster.Flavor]int) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pool_targets`); err != nil {
			return fmt.Errorf("record pool targets: %w", err)
		}
		for f, n := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO pool_targets (k8s_version, size, privileged, target) VALUES (?, ?, ?, ?)`,
				f.K8sVersion, f.Size, b2i(f.Privileged), n); err != nil {
				return fmt.Errorf("record pool targets: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pool_targets_recorded (id, backend, recorded_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET backend = excluded.backend, recorded_at = excluded.recorded_at`, backend, ms(db.Now()))
		if err != nil {
			return fmt.Errorf("record pool targets: %w", err)
		}
		return nil
	})
}

// RecordedPoolTargets returns the pool targets the last server that
// started recorded; ok is false when no server has started on this
// database.
func (db *DB) RecordedPoolTargets(ctx context.Context) (t PoolTargets, ok bool, err error) {
	var at sql.NullInt64
	err = db.db.QueryRowContext(ctx, `SELECT backend, recorded_at FROM pool_targets_recorded WHERE id = 1`).Scan(&t.Backend, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("read pool targets: %w", err)
	}
	t.RecordedAt = fromMS(at)
	rows, err := db.db.QueryContext(ctx, `SELECT k8s_version, size, privileged, target FROM pool_targets`)
	if err != nil {
		return t, false, fmt.Errorf("read pool targets: %w", err)
	}
	defer rows.Close()
	t.Targets = map[cluster.Flavor]int{}
	for rows.Next() {
		var f cluster.Flavor
		var n int
		if err := rows.Scan(&f.K8sVersion, &f.Size, &f.Privileged, &n); err != nil {
			return t, false, fmt.Errorf("read pool targets: %w", err)
		}
		t.Targets[f] = n
	}
	if err := rows.Err(); err != nil {
		return t, false, fmt.Errorf("read pool targets: %w", err)
	}
	return t, true, nil
}
