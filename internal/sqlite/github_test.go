package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

func openGitHubTestDB(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRecordDeliveryPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	isNew, err := db.RecordDelivery(ctx, "d-1", "ping")
	if err != nil || !isNew {
		t.Fatalf("first RecordDelivery = %v, %v; want true, nil", isNew, err)
	}
	isNew, err = db.RecordDelivery(ctx, "d-1", "ping")
	if err != nil || isNew {
		t.Fatalf("second RecordDelivery = %v, %v; want false, nil", isNew, err)
	}
	db.Close()

	db2 := openGitHubTestDB(t, path)
	isNew, err = db2.RecordDelivery(ctx, "d-1", "ping")
	if err != nil || isNew {
		t.Fatalf("RecordDelivery after reopen = %v, %v; want false, nil", isNew, err)
	}
	if _, err := db2.RecordDelivery(ctx, "", "ping"); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("empty id: got %v, want EINVALID", err)
	}
}

func TestRecordDeliveryForgetsOldIDs(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := db.RecordDelivery(ctx, "old", "ping"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DeliveryRetention + time.Minute)
	isNew, err := db.RecordDelivery(ctx, "old", "ping")
	if err != nil || !isNew {
		t.Fatalf("RecordDelivery past retention = %v, %v; want true, nil", isNew, err)
	}
}

func TestLinkInstallation(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	for _, name := range []string{"acme", "umbrella"} {
		if _, err := db.EnsureAccount(ctx, name, AccountLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := db.LinkInstallation(ctx, "acme", 42)
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	if a.GitHubInstallationID != 42 || a.Name != "acme" {
		t.Fatalf("got %+v, want acme linked to 42", a)
	}
	got, err := db.AccountByInstallation(ctx, 42)
	if err != nil || got.Name != "acme" {
		t.Fatalf("AccountByInstallation(42) = %+v, %v; want acme", got, err)
	}
	if _, err := db.LinkInstallation(ctx, "umbrella", 42); cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("linking 42 twice: got %v, want ECONFLICT", err)
	}
	if _, err := db.LinkInstallation(ctx, "nobody", 7); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("unknown account: got %v, want ENOTFOUND", err)
	}
	if _, err := db.LinkInstallation(ctx, "acme", 0); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("id 0: got %v, want EINVALID", err)
	}
	if _, err := db.AccountByInstallation(ctx, 0); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("AccountByInstallation(0): got %v, want ENOTFOUND", err)
	}
	// Relinking the same account moves it to the new installation.
	if _, err := db.LinkInstallation(ctx, "acme", 43); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AccountByInstallation(ctx, 42); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("old installation after relink: got %v, want ENOTFOUND", err)
	}
	if _, err := db.UnlinkInstallation(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	list, err := db.AccountsWithInstallations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].GitHubInstallationID != 0 {
		t.Fatalf("accounts after unlink: got %+v", list)
	}
}
