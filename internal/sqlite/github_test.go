package sqlite

import (
	"context"
	"crypto/sha256"
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
	isNew, err := db.RecordDelivery(ctx, "d-1", "ping", nil)
	if err != nil || !isNew {
		t.Fatalf("first RecordDelivery = %v, %v; want true, nil", isNew, err)
	}
	isNew, err = db.RecordDelivery(ctx, "d-1", "ping", nil)
	if err != nil || isNew {
		t.Fatalf("second RecordDelivery = %v, %v; want false, nil", isNew, err)
	}
	db.Close()

	db2 := openGitHubTestDB(t, path)
	isNew, err = db2.RecordDelivery(ctx, "d-1", "ping", nil)
	if err != nil || isNew {
		t.Fatalf("RecordDelivery after reopen = %v, %v; want false, nil", isNew, err)
	}
	if _, err := db2.RecordDelivery(ctx, "", "ping", nil); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("empty id: got %v, want EINVALID", err)
	}
}

func TestRecordDeliveryForgetsOldIDs(t *testing.T) {
	ctx := context.Background()
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := db.RecordDelivery(ctx, "old", "ping", nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DeliveryRetention + time.Minute)
	isNew, err := db.RecordDelivery(ctx, "old", "ping", nil)
	if err != nil || !isNew {
		t.Fatalf("RecordDelivery past retention = %v, %v; want true, nil", isNew, err)
	}
}

func TestRecordDeliveryKnowsPayloads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	payload := sha256.Sum256([]byte(`{"action":"completed"}`))
	other := sha256.Sum256([]byte(`{"action":"closed"}`))
	record := func(id string, digest []byte) bool {
		t.Helper()
		isNew, err := db.RecordDelivery(ctx, id, "workflow_run", digest)
		if err != nil {
			t.Fatalf("RecordDelivery(%q): %v", id, err)
		}
		return isNew
	}
	steps := []struct {
		name   string
		id     string
		digest []byte
		isNew  bool
	}{
		{"first", "d-1", payload[:], true},
		{"GitHub's redelivery: same id, same payload", "d-1", payload[:], false},
		{"the payload under a new id", "d-2", payload[:], false},
		{"another payload", "d-3", other[:], true},
		{"an id without digest", "d-4", nil, true},
		{"another id without digest", "d-5", nil, true},
		{"a seen id without digest", "d-3", nil, false},
	}
	for _, s := range steps {
		if got := record(s.id, s.digest); got != s.isNew {
			t.Fatalf("%s: new = %t, want %t", s.name, got, s.isNew)
		}
	}
	// The digest survives a restart and is forgotten with the id.
	db.Close()
	db = openGitHubTestDB(t, path)
	db.Now = func() time.Time { return now }
	if record("d-6", payload[:]) {
		t.Fatal("the payload under a new id after reopening: new, want a duplicate")
	}
	now = now.Add(DeliveryRetention + time.Minute)
	if !record("d-7", payload[:]) {
		t.Fatal("the payload past the retention: a duplicate, want new")
	}
	if _, err := db.RecordDelivery(ctx, "d-8", "ping", []byte("short")); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("a 5-byte digest: got %v, want EINVALID", err)
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
