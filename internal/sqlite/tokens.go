package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Token is a stored token without its secret.
type Token struct {
	ID              int64
	Account         string
	Prefix          string
	AllowPrivileged bool
	Service         bool
	Description     string
	CreatedAt       time.Time
	RevokedAt       time.Time
}

// NewToken is a token to store: the hash of its secret and its rights.
type NewToken struct {
	AccountID       int64
	Prefix          string
	Hash            []byte
	AllowPrivileged bool
	Service         bool
	Description     string
}

// CreateToken stores a token and returns its id.
func (db *DB) CreateToken(ctx context.Context, t NewToken) (int64, error) {
	res, err := db.w.ExecContext(ctx, `INSERT INTO tokens (account_id, prefix, hash, allow_privileged, service, description, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.AccountID, t.Prefix, t.Hash, b2i(t.AllowPrivileged), b2i(t.Service), t.Description, ms(db.Now()))
	if err != nil {
		return 0, fmt.Errorf("create token: %w", err)
	}
	return res.LastInsertId()
}

// PrincipalByTokenHash returns who holds the unrevoked token with this hash.
// An unknown or revoked token is EUNAUTHORIZED.
func (db *DB) PrincipalByTokenHash(ctx context.Context, hash []byte) (cluster.Principal, error) {
	var p cluster.Principal
	var prefix string
	var priv, service int
	var revoked sql.NullInt64
	err := db.db.QueryRowContext(ctx, `SELECT t.id, t.prefix, t.allow_privileged, t.service, t.revoked_at,
			a.id, a.name, a.max_clusters, a.max_minutes_to_live, a.max_stopped_clusters
		FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?`, hash).
		Scan(&p.TokenID, &prefix, &priv, &service, &revoked,
			&p.Account.ID, &p.Account.Name, &p.Account.MaxClusters, &p.Account.MaxMinutesToLive, &p.Account.MaxStoppedClusters)
	if isNoRows(err) {
		return p, cluster.Errorf(cluster.EUNAUTHORIZED, "", "the bearer token is not valid")
	}
	if err != nil {
		return p, fmt.Errorf("look up token: %w", err)
	}
	if revoked.Valid {
		return p, cluster.Errorf(cluster.EUNAUTHORIZED, "", "the bearer token has been revoked")
	}
	p.AllowPrivileged = priv == 1
	p.Service = service == 1
	p.Actor = "token:" + prefix
	return p, nil
}

// Tokens lists all tokens, newest first.
func (db *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT t.id, a.name, t.prefix, t.allow_privileged, t.service, t.description, t.created_at, t.revoked_at
		FROM tokens t JOIN accounts a ON a.id = t.account_id ORDER BY t.id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var priv, service int
		var created, revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Account, &t.Prefix, &priv, &service, &t.Description, &created, &revoked); err != nil {
			return nil, err
		}
		t.AllowPrivileged, t.Service = priv == 1, service == 1
		t.CreatedAt, t.RevokedAt = fromMS(created), fromMS(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes the token with this id or prefix.
func (db *DB) RevokeToken(ctx context.Context, idOrPrefix string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE (CAST(id AS TEXT) = ? OR prefix = ?) AND revoked_at IS NULL`,
		ms(db.Now()), idOrPrefix, idOrPrefix)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cluster.Errorf(cluster.ENOTFOUND, "token", "no active token %q", idOrPrefix)
	}
	return nil
}
