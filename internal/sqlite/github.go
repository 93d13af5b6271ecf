package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"

	"github.com/smek/action/internal/cluster"
)

// DeliveryRetention is how long a webhook delivery id and its payload's
// digest are remembered. GitHub lets an operator redeliver a webhook for
// three days; a week covers that with room to spare.
const DeliveryRetention = 7 * 24 * time.Hour

// RecordDelivery remembers a GitHub webhook delivery and reports whether it
// is new. A delivery seen before — the same id (GitHub's redelivery, or a
// replay) or, when payloadSHA256 is given, the same payload under another
// id — returns false. payloadSHA256 is the SHA-256 of the signed body, or
// nil when the caller does not know it. Deliveries older than
// DeliveryRetention are forgotten on the way.
func (db *DB) RecordDelivery(ctx context.Context, id, event string, payloadSHA256 []byte) (bool, error) {
	switch {
	case id == "":
		return false, cluster.Errorf(cluster.EINVALID, "id", "the delivery id is empty")
	case len(payloadSHA256) != 0 && len(payloadSHA256) != sha256.Size:
		return false, cluster.Errorf(cluster.EINVALID, "payload-sha256", "a payload digest is %d bytes, got %d", sha256.Size, len(payloadSHA256))
	}
	var digest any // NULL unless known: NULLs never collide
	if len(payloadSHA256) != 0 {
		digest = payloadSHA256
	}
	var isNew bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		if _, err := tx.ExecContext(ctx, `DELETE FROM github_deliveries WHERE received_at < ?`,
			ms(now.Add(-DeliveryRetention))); err != nil {
			return err
		}
		// Without a conflict target DO NOTHING covers both unique keys,
		// the id and the payload digest.
		res, err := tx.ExecContext(ctx, `INSERT INTO github_deliveries (id, event, received_at, payload_sha256)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, event, ms(now), digest)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		isNew = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record delivery %q: %w", id, err)
	}
	return isNew, nil
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
	res, err := db.db.ExecContext(ctx, `UPDATE accounts SET github_installation_id = 0 WHERE name = ?`, account)
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
