package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
)

// tokHash stands in for auth.HashToken (the sqlite package must not
// import auth): the store only ever sees hashes.
func tokHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func tokCreate(t *testing.T, db *DB, accountID int64, secret string, priv, service bool) int64 {
	t.Helper()
	id, err := db.CreateToken(context.Background(), NewToken{
		AccountID: accountID, Prefix: secret[:13], Hash: tokHash(secret), AllowPrivileged: priv, Service: service, Description: "for " + secret[:13],
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTokenLookupByHash(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 7)
	plain := "smek_aaaaaaaaplainplainplain"
	priv := "smek_bbbbbbbbprivilegedtoken"
	svc := "smek_ccccccccservicetokenxxx"
	plainID := tokCreate(t, db, a.ID, plain, false, false)
	tokCreate(t, db, a.ID, priv, true, false)
	tokCreate(t, db, a.ID, svc, false, true)

	p, err := db.PrincipalByTokenHash(ctx, tokHash(plain))
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Principal{
		Account: cluster.Account{ID: a.ID, Name: "ci", MaxClusters: 7, MaxMinutesToLive: cluster.DefaultMaxMinutesToLive, MaxStoppedClusters: cluster.DefaultMaxStoppedClusters},
		TokenID: plainID, Actor: "token:smek_aaaaaaaa",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if p, err := db.PrincipalByTokenHash(ctx, tokHash(priv)); err != nil || !p.AllowPrivileged || p.Service {
		t.Errorf("privileged token: got %+v, %v", p, err)
	}
	if p, err := db.PrincipalByTokenHash(ctx, tokHash(svc)); err != nil || p.AllowPrivileged || !p.Service {
		t.Errorf("service token: got %+v, %v", p, err)
	}

	for name, hash := range map[string][]byte{
		"unknown":            tokHash("smek_unknown"),
		"the secret itself":  []byte(plain),
		"empty":              nil,
		"a hash one bit off": flipBit(tokHash(plain)),
	} {
		if _, err := db.PrincipalByTokenHash(ctx, hash); cluster.ErrorCode(err) != cluster.EUNAUTHORIZED {
			t.Errorf("%s: got %v, want unauthorized", name, err)
		}
	}
}

func flipBit(b []byte) []byte {
	out := bytes.Clone(b)
	out[0] ^= 1
	return out
}

// Only the hash is stored: the secret appears nowhere in the database file.
func TestTokenSecretNotStored(t *testing.T) {
	db := openClaimDB(t)
	a := claimAccount(t, db, "ci", 5)
	secret := "smek_ddddddddthesecretpartthatmustnotbestored"
	tokCreate(t, db, a.ID, secret, false, false)
	var n int
	err := db.db.QueryRow(`SELECT COUNT(*) FROM tokens WHERE prefix = ? OR hash = ? OR description LIKE ?`,
		secret, secret, "%thesecretpart%").Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("found the secret in %d rows (%v)", n, err)
	}
	if _, err := db.CreateToken(context.Background(), NewToken{AccountID: a.ID, Prefix: "smek_dddddddd", Hash: tokHash(secret)}); err == nil {
		t.Error("a second token with the same hash was stored")
	}
}

func TestTokenRevoke(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 5)
	byID := "smek_eeeeeeeerevokedbyid"
	byPrefix := "smek_ffffffffrevokedbyprefix"
	kept := "smek_gggggggkeptkeptkept"
	id := tokCreate(t, db, a.ID, byID, false, false)
	tokCreate(t, db, a.ID, byPrefix, false, false)
	tokCreate(t, db, a.ID, kept, false, false)

	revokedAt := claimT0.Add(time.Hour)
	db.Clock = clockwork.NewFakeClockAt(revokedAt)
	if err := db.RevokeToken(ctx, strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("revoke by id: %v", err)
	}
	if err := db.RevokeToken(ctx, "smek_ffffffff"); err != nil {
		t.Fatalf("revoke by prefix: %v", err)
	}
	for _, s := range []string{byID, byPrefix} {
		_, err := db.PrincipalByTokenHash(ctx, tokHash(s))
		if cluster.ErrorCode(err) != cluster.EUNAUTHORIZED || !strings.Contains(cluster.ErrorMessage(err), "revoked") {
			t.Errorf("%s after revoke: got %v, want unauthorized, revoked", s[:13], err)
		}
	}
	if _, err := db.PrincipalByTokenHash(ctx, tokHash(kept)); err != nil {
		t.Errorf("the token not revoked stopped working: %v", err)
	}
	for _, again := range []string{strconv.FormatInt(id, 10), "smek_ffffffff", "smek_nosuchtk", "999", ""} {
		if err := db.RevokeToken(ctx, again); cluster.ErrorCode(err) != cluster.ENOTFOUND {
			t.Errorf("revoke %q: got %v, want not-found", again, err)
		}
	}

	ts, err := db.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("got %d tokens, want 3", len(ts))
	}
	revoked := map[string]time.Time{}
	for _, tk := range ts {
		revoked[tk.Prefix] = tk.RevokedAt
		if tk.Account != "ci" || !tk.CreatedAt.Equal(claimT0) || !strings.HasPrefix(tk.Description, "for ") {
			t.Errorf("got %+v", tk)
		}
	}
	if !revoked["smek_eeeeeeee"].Equal(revokedAt) || !revoked["smek_ffffffff"].Equal(revokedAt) || !revoked["smek_gggggggk"].IsZero() {
		t.Errorf("got revoked-at %v", revoked)
	}
	if ts[0].ID < ts[2].ID {
		t.Errorf("tokens listed oldest first, want newest first")
	}
	// A listing carries nothing secret: no field can hold a hash or secret.
	for f := range reflect.TypeFor[Token]().Fields() {
		if f.Type == reflect.TypeFor[[]byte]() || strings.Contains(strings.ToLower(f.Name), "hash") || strings.Contains(strings.ToLower(f.Name), "secret") {
			t.Errorf("Token has field %s", f.Name)
		}
	}
}

func TestEnsureAccountLimits(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a, err := db.EnsureAccount(ctx, "team", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxClusters != cluster.DefaultMaxClusters || a.MaxMinutesToLive != cluster.DefaultMaxMinutesToLive || a.Name != "team" {
		t.Errorf("new account: got %+v, want the default limits", a)
	}
	secret := "smek_hhhhhhhhlimitslimits"
	tokCreate(t, db, a.ID, secret, false, false)

	three, ninety := 3, 90
	b, err := db.EnsureAccount(ctx, "team", AccountLimits{MaxClusters: &three})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID || b.MaxClusters != 3 || b.MaxMinutesToLive != cluster.DefaultMaxMinutesToLive {
		t.Errorf("after setting max-clusters: got %+v", b)
	}
	c, err := db.EnsureAccount(ctx, "team", AccountLimits{MaxMinutesToLive: &ninety})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxClusters != 3 || c.MaxMinutesToLive != 90 {
		t.Errorf("after setting max-minutes-to-live: got %+v, want 3 and 90 (nil keeps)", c)
	}
	// An existing token sees the new limits at once.
	p, err := db.PrincipalByTokenHash(ctx, tokHash(secret))
	if err != nil {
		t.Fatal(err)
	}
	if p.Account.MaxClusters != 3 || p.Account.MaxMinutesToLive != 90 {
		t.Errorf("principal: got %+v, want the account's new limits", p.Account)
	}

	// A new account gets given limits from the start.
	one := 1
	d, err := db.EnsureAccount(ctx, "solo", AccountLimits{MaxClusters: &one, MaxMinutesToLive: &ninety})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == a.ID || d.MaxClusters != 1 || d.MaxMinutesToLive != 90 {
		t.Errorf("new account with limits: got %+v", d)
	}
	accounts, err := db.Accounts(ctx)
	if err != nil || len(accounts) != 2 || accounts[0].Name != "solo" || accounts[1].Name != "team" {
		t.Errorf("got accounts %+v (%v), want solo and team by name", accounts, err)
	}
	if _, err := db.AccountByName(ctx, "nobody"); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Errorf("unknown account: got %v, want not-found", err)
	}
}

// The limit set through EnsureAccount is the one the claim transaction
// enforces.
func TestEnsureAccountLimitEnforcedByClaim(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "tight", 1)
	readyServers(t, db, "local", claimFlavor, 3)
	if _, err := db.ClaimMember(ctx, newClaim(a, 1, claimFlavor), "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimMember(ctx, newClaim(a, 2, claimFlavor), "local"); cluster.ErrorCode(err) != cluster.ELIMIT {
		t.Fatalf("second cluster with a limit of 1: got %v, want the limit", err)
	}
	two := 2
	if _, err := db.EnsureAccount(ctx, "tight", AccountLimits{MaxClusters: &two}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimMember(ctx, newClaim(a, 3, claimFlavor), "local"); err != nil {
		t.Errorf("after raising the limit to 2: %v", err)
	}
}
