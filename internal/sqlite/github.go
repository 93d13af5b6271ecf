package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/webhook"
)

// DeliveryRetention is how long a finished webhook delivery (done or given
// up) is remembered, with its payload's digest. GitHub lets an operator
// redeliver a webhook for three days; a week covers that with room to
// spare. Accepted work is kept until it ends.
const DeliveryRetention = 7 * 24 * time.Hour

const deliveryColumns = `id, event, state, attempts, next_attempt_at, reason, received_at`

// AcceptDelivery records a verified GitHub webhook delivery as accepted
// work, its payload kept until the work is done, in the transaction that
// de-duplicates it. isNew is true when neither its id (GitHub's
// redelivery, or a replay) nor, when r.PayloadSHA256 is given, its
// payload under another id was seen; otherwise the delivery seen before
// is returned as it stands, for the caller to tell a done one (a
// duplicate) from one whose work is not done (to run again). Without a
// payload the delivery is recorded as done: only remembered. Finished
// deliveries older than DeliveryRetention are forgotten on the way.
func (db *DB) AcceptDelivery(ctx context.Context, r webhook.Received) (d webhook.Delivery, isNew bool, err error) {
	switch {
	case r.ID == "":
		return d, false, cluster.Errorf(cluster.EINVALID, "id", "the delivery id is empty")
	case len(r.PayloadSHA256) != 0 && len(r.PayloadSHA256) != sha256.Size:
		return d, false, cluster.Errorf(cluster.EINVALID, "payload-sha256", "a payload digest is %d bytes, got %d", sha256.Size, len(r.PayloadSHA256))
	}
	var digest any // NULL unless known: NULLs never collide
	if len(r.PayloadSHA256) != 0 {
		digest = r.PayloadSHA256
	}
	var payload any
	state := webhook.Done
	if r.Payload != nil {
		payload, state = r.Payload, webhook.Accepted
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		if _, err := tx.ExecContext(ctx, `DELETE FROM github_deliveries WHERE received_at < ? AND state <> 'accepted'`,
			ms(now.Add(-DeliveryRetention))); err != nil {
			return err
		}
		// Without a conflict target DO NOTHING covers both unique keys,
		// the id and the payload digest.
		res, err := tx.ExecContext(ctx, `INSERT INTO github_deliveries (id, event, received_at, payload_sha256, state, payload)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, r.ID, r.Event, ms(now), digest, state, payload)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			isNew = true
			d = webhook.Delivery{ID: r.ID, Event: r.Event, State: state, ReceivedAt: time.UnixMilli(ms(now)).UTC()}
			return err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM github_deliveries
			WHERE id = ? OR payload_sha256 = ? ORDER BY id = ? DESC LIMIT 1`, r.ID, digest, r.ID))
		return err
	})
	if err != nil {
		return webhook.Delivery{}, false, fmt.Errorf("accept delivery %q: %w", r.ID, err)
	}
	return d, isNew, nil
}

// UpdateDelivery records what a try of a delivery's work changed. Done
// drops the payload. A done delivery does not change any more (ECONFLICT);
// an unknown one is ENOTFOUND.
func (db *DB) UpdateDelivery(ctx context.Context, id string, u webhook.Update) error {
	if err := u.Check(); err != nil {
		return cluster.Errorf(cluster.EINVALID, "state", "%v", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE github_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, reason = ?,
				payload = CASE WHEN ? = 'done' THEN NULL ELSE payload END
			WHERE id = ? AND state <> 'done'`,
			u.State, u.Attempts, ms(u.NextAttemptAt), truncateReason(u.Reason), u.State, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM github_deliveries WHERE id = ?`, id).Scan(&state)
		if isNoRows(err) {
			return cluster.Errorf(cluster.ENOTFOUND, "id", "no delivery %q", id)
		}
		if err != nil {
			return err
		}
		return cluster.Errorf(cluster.ECONFLICT, "state", "delivery %q is done", id)
	})
	if err != nil {
		return fmt.Errorf("update delivery %q: %w", id, err)
	}
	return nil
}

// PendingDeliveries returns the deliveries whose work is accepted but not
// ended, oldest first, without their payloads.
func (db *DB) PendingDeliveries(ctx context.Context) ([]webhook.Delivery, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM github_deliveries
		WHERE state = 'accepted' ORDER BY received_at, id`)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	defer rows.Close()
	var out []webhook.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("pending deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	return out, nil
}

// DeliveryPayload returns the payload of a delivery whose work is not
// done; ENOTFOUND when there is none (unknown, done, or recorded without
// one).
func (db *DB) DeliveryPayload(ctx context.Context, id string) ([]byte, error) {
	var payload []byte
	err := db.db.QueryRowContext(ctx, `SELECT payload FROM github_deliveries WHERE id = ? AND payload IS NOT NULL`, id).Scan(&payload)
	if isNoRows(err) {
		return nil, cluster.Errorf(cluster.ENOTFOUND, "id", "no payload kept for delivery %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("payload of delivery %q: %w", id, err)
	}
	return payload, nil
}

func scanDelivery(row interface{ Scan(...any) error }) (webhook.Delivery, error) {
	var d webhook.Delivery
	var next, received int64
	err := row.Scan(&d.ID, &d.Event, &d.State, &d.Attempts, &next, &d.Reason, &received)
	if next != 0 {
		d.NextAttemptAt = time.UnixMilli(next).UTC()
	}
	d.ReceivedAt = time.UnixMilli(received).UTC()
	return d, err
}

// truncateReason keeps a reason within webhook.MaxReason bytes.
func truncateReason(s string) string {
	if len(s) <= webhook.MaxReason {
		return s
	}
	return strings.ToValidUTF8(s[:webhook.MaxReason], "")
}

// LinkInstallation ties a GitHub App installation to an existing account:
// clusters made from that installation's pull-request comments belong to
// the account. An installation serves one account; linking it to a second
// one is ECONFLICT. Relinking an account replaces its installation.
func (db *DB) LinkInstallation(ctx context.Context, account string, installationID int64) (cluster.Account, error) {
	if installationID <= 0 {
		return cluster.Account{}, cluster.Errorf(cluster.EINVALID, "github-installation-id",
			"github-installation-id must be a positive number, got %d", installationID)
	}
	var a cluster.Account
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = accountWithInstallation(ctx, tx, `name = ?`, account)
		if isNoRows(err) {
			return cluster.Errorf(cluster.ENOTFOUND, "account", "no account named %q", account)
		}
		if err != nil {
			return err
		}
		other, err := accountWithInstallation(ctx, tx, `github_installation_id = ?`, installationID)
		switch {
		case err == nil && other.ID != a.ID:
			return cluster.Errorf(cluster.ECONFLICT, "github-installation-id",
				"installation %d is already linked to account %q", installationID, other.Name)
		case err != nil && !isNoRows(err):
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET github_installation_id = ? WHERE id = ?`,
			installationID, a.ID); err != nil {
			return err
		}
		a.GitHubInstallationID = installationID
		return nil
	})
	if err != nil {
		return cluster.Account{}, fmt.Errorf("link installation %d to account %q: %w", installationID, account, err)
	}
	return a, nil
}

// UnlinkInstallation removes the GitHub App installation of an account.
func (db *DB) UnlinkInstallation(ctx context.Context, account string) (cluster.Account, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE accounts SET github_installation_id = 0 WHERE name = ?`, account)
	if err != nil {
		return cluster.Account{}, fmt.Errorf("unlink account %q: %w", account, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cluster.Account{}, cluster.Errorf(cluster.ENOTFOUND, "account", "no account named %q", account)
	}
	return accountWithInstallation(ctx, db.db, `name = ?`, account)
}

// AccountByInstallation returns the account linked to a GitHub App
// installation; ENOTFOUND when there is none.
func (db *DB) AccountByInstallation(ctx context.Context, installationID int64) (cluster.Account, error) {
	a, err := accountWithInstallation(ctx, db.db, `github_installation_id = ? AND github_installation_id <> 0`, installationID)
	if isNoRows(err) {
		return a, cluster.Errorf(cluster.ENOTFOUND, "installation-id",
			"GitHub App installation %d is not linked to a SMEK account", installationID)
	}
	if err != nil {
		return a, fmt.Errorf("account by installation %d: %w", installationID, err)
	}
	return a, nil
}

// AccountsWithInstallations lists all accounts by name, with their GitHub
// App installation ids.
func (db *DB) AccountsWithInstallations(ctx context.Context) ([]cluster.Account, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+accountColumns+`, github_installation_id FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []cluster.Account
	for rows.Next() {
		var a cluster.Account
		if err := rows.Scan(&a.ID, &a.Name, &a.MaxClusters, &a.MaxMinutesToLive, &a.MaxStoppedClusters, &a.GitHubInstallationID); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func accountWithInstallation(ctx context.Context, q queryer, where string, arg any) (cluster.Account, error) {
	var a cluster.Account
	err := q.QueryRowContext(ctx, `SELECT `+accountColumns+`, github_installation_id FROM accounts WHERE `+where, arg).
		Scan(&a.ID, &a.Name, &a.MaxClusters, &a.MaxMinutesToLive, &a.MaxStoppedClusters, &a.GitHubInstallationID)
	return a, err
}
