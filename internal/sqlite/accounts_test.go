package sqlite

import (
	"context"
	"fmt"

	"github.com/smek/action/internal/cluster"
)

// Accounts lists all accounts by name. Only tests list them all, so it
// lives here.
func (db *DB) Accounts(ctx context.Context) ([]cluster.Account, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []cluster.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
