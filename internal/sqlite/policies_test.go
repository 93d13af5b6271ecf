package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

func openPolicyDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "smek.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Clock = clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	return db, path
}

func TestAddPolicy(t *testing.T) {
	db, _ := openPolicyDB(t)
	ctx := context.Background()
	limit := 2
	if _, err := db.EnsureAccount(ctx, "infra", AccountLimits{MaxClusters: &limit}); err != nil {
		t.Fatal(err)
	}
	p, err := db.AddPolicy(ctx, auth.Policy{
		Account: cluster.Account{Name: "infra"}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65, RepositoryID: 74,
		Ref: "refs/heads/**", Environment: "prod", Event: "push", AllowPrivileged: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 || p.Account.ID == 0 || p.Account.Name != "infra" || p.Account.MaxClusters != 2 ||
		p.Account.MaxMinutesToLive != cluster.DefaultMaxMinutesToLive {
		t.Errorf("got %+v, want an id and account infra with its limits", p)
	}
	if p.RepositoryOwnerID != 65 || p.RepositoryID != 74 || p.Ref != "refs/heads/**" || p.Environment != "prod" ||
		p.Event != "push" || !p.AllowPrivileged || p.Issuer != auth.GitHubIssuer || !p.CreatedAt.Equal(db.Now()) {
		t.Errorf("got %+v, want the fields as added", p)
	}

	// A new account name creates the account with the default limits.
	q, err := db.AddPolicy(ctx, auth.Policy{Account: cluster.Account{Name: "fresh"}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65})
	if err != nil {
		t.Fatal(err)
	}
	if q.Account.MaxClusters != cluster.DefaultMaxClusters || q.AllowPrivileged {
		t.Errorf("got %+v, want default limits and no privilege", q)
	}
	if _, err := db.AccountByName(ctx, "fresh"); err != nil {
		t.Errorf("account fresh: %v", err)
	}
}

func TestAddPolicyRefusesBadInput(t *testing.T) {
	db, _ := openPolicyDB(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		p     auth.Policy
		field string
	}{
		{"no owner", auth.Policy{Account: cluster.Account{Name: "a"}, Issuer: auth.GitHubIssuer}, "repository-owner-id"},
		{"no account", auth.Policy{Issuer: auth.GitHubIssuer, RepositoryOwnerID: 1}, "account"},
		{"no issuer", auth.Policy{Account: cluster.Account{Name: "a"}, RepositoryOwnerID: 1}, "issuer"},
		{"bad glob", auth.Policy{Account: cluster.Account{Name: "a"}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 1, Ref: "[x"}, "ref"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.AddPolicy(ctx, tc.p)
			var e *cluster.Error
			if !errors.As(err, &e) || e.Code != cluster.EINVALID || e.Field != tc.field {
				t.Fatalf("got %v, want EINVALID for field %s", err, tc.field)
			}
		})
	}
	if ps, err := db.Policies(ctx); err != nil || len(ps) != 0 {
		t.Errorf("got %d policies (%v), want none stored", len(ps), err)
	}
	if accts, err := db.Accounts(ctx); err != nil || len(accts) != 0 {
		t.Errorf("got accounts %v (%v), want none created by refused policies", accts, err)
	}
}

func TestAddPolicyConflict(t *testing.T) {
	db, _ := openPolicyDB(t)
	ctx := context.Background()
	p := auth.Policy{Account: cluster.Account{Name: "a"}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65, Ref: "refs/heads/main"}
	first, err := db.AddPolicy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Account.Name, p.AllowPrivileged = "b", true
	_, err = db.AddPolicy(ctx, p)
	if cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("got %v, want ECONFLICT", err)
	}
	// The same conditions for another issuer are another policy.
	p.Issuer = "https://gitlab.com"
	if _, err := db.AddPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	ps, err := db.Policies(ctx)
	if err != nil || len(ps) != 2 || ps[0].ID != first.ID || ps[0].Account.Name != "a" {
		t.Errorf("got %+v (%v), want the first policy unchanged and the GitLab one", ps, err)
	}
}

func TestPoliciesForOwnerAndRemove(t *testing.T) {
	db, path := openPolicyDB(t)
	ctx := context.Background()
	add := func(issuer string, owner, repo int64) auth.Policy {
		t.Helper()
		p, err := db.AddPolicy(ctx, auth.Policy{Account: cluster.Account{Name: "a"}, Issuer: issuer, RepositoryOwnerID: owner, RepositoryID: repo})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := add(auth.GitHubIssuer, 65, 0)
	p2 := add(auth.GitHubIssuer, 65, 74)
	add(auth.GitHubIssuer, 66, 0)
	add("https://gitlab.com", 65, 0)

	got, err := db.PoliciesForOwner(ctx, auth.GitHubIssuer, 65)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != p1.ID || got[1].ID != p2.ID {
		t.Fatalf("got %+v, want policies %d and %d", got, p1.ID, p2.ID)
	}

	if err := db.RemovePolicy(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.RemovePolicy(ctx, p1.ID); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Errorf("removing twice: got %v, want ENOTFOUND", err)
	}

	// Policies survive a reopen (the migration is applied once).
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err = db2.PoliciesForOwner(ctx, auth.GitHubIssuer, 65)
	if err != nil || len(got) != 1 || got[0].ID != p2.ID {
		t.Errorf("after reopen: got %+v (%v), want only policy %d", got, err, p2.ID)
	}
	all, err := db2.Policies(ctx)
	if err != nil || len(all) != 3 {
		t.Errorf("got %d policies (%v), want 3", len(all), err)
	}
}

// TestPolicyLimitsFollowAccount: a policy reports its account's current
// limits, not those at the time it was added.
func TestPolicyLimitsFollowAccount(t *testing.T) {
	db, _ := openPolicyDB(t)
	ctx := context.Background()
	if _, err := db.AddPolicy(ctx, auth.Policy{Account: cluster.Account{Name: "a"}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65}); err != nil {
		t.Fatal(err)
	}
	limit := 9
	if _, err := db.EnsureAccount(ctx, "a", AccountLimits{MaxMinutesToLive: &limit}); err != nil {
		t.Fatal(err)
	}
	got, err := db.PoliciesForOwner(ctx, auth.GitHubIssuer, 65)
	if err != nil || len(got) != 1 || got[0].Account.MaxMinutesToLive != 9 {
		t.Errorf("got %+v (%v), want max-minutes-to-live 9", got, err)
	}
}
