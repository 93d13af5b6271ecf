package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/smek/action/internal/cluster"
)

// HibernateMember records that a hibernating member's snapshot is taken
// and its server deleted: the member becomes hibernated with the
// backend's data (which names the snapshot) and the snapshot's size, in
// one transaction, so that a member is never hibernated without a record
// of its snapshot.
func (db *DB) HibernateMember(ctx context.Context, id string, data []byte, snapshotGB float64) error {
	if snapshotGB < 0 {
		return cluster.Errorf(cluster.EINVALID, "snapshot-size-gb", "a snapshot's size cannot be negative, got %g", snapshotGB)
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		from, _, err := memberState(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := cluster.CheckMemberTransition(id, from, cluster.MemberHibernated); err != nil {
			return err
		}
		q := `UPDATE servers SET state = ?, updated_at = ?, failure = '', snapshot_gb = ?`
		args := []any{cluster.MemberHibernated, ms(db.Now()), snapshotGB}
		if data != nil {
			q, args = q+`, data = ?`, append(args, string(data))
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE id = ?`, append(args, id)...); err != nil {
			return fmt.Errorf("set member %s hibernated: %w", id, err)
		}
		return db.recordEvent(ctx, tx, event{subject: id, typ: string(cluster.MemberHibernated), from: string(from), to: string(cluster.MemberHibernated),
			cause: "pool", message: "snapshot of " + strconv.FormatFloat(snapshotGB, 'f', -1, 64) + " GB"})
	})
}

// ForgetSnapshot records that member id's snapshot is gone at the backend
// (deleted after a restore, or with the member's release).
func (db *DB) ForgetSnapshot(ctx context.Context, id string) error {
	_, err := db.db.ExecContext(ctx, `UPDATE servers SET snapshot_gb = NULL, updated_at = ? WHERE id = ?`, ms(db.Now()), id)
	if err != nil {
		return fmt.Errorf("forget snapshot of member %s: %w", id, err)
	}
	return nil
}
