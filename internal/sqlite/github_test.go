package sqlite

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/webhook"
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

// record accepts a delivery with the App's arguments and returns whether
// it is new.
func record(t *testing.T, db *DB, id string, digest, payload []byte) bool {
	t.Helper()
	_, isNew, err := db.AcceptDelivery(context.Background(), webhook.Received{ID: id, Event: "workflow_run", PayloadSHA256: digest, Payload: payload})
	if err != nil {
		t.Fatalf("AcceptDelivery(%q): %v", id, err)
	}
	return isNew
}

func TestAcceptDeliveryPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	if !record(t, db, "d-1", nil, nil) {
		t.Fatal("first AcceptDelivery: not new")
	}
	if record(t, db, "d-1", nil, nil) {
		t.Fatal("second AcceptDelivery: new, want seen")
	}
	db.Close()

	db2 := openGitHubTestDB(t, path)
	if record(t, db2, "d-1", nil, nil) {
		t.Fatal("AcceptDelivery after reopen: new, want seen")
	}
	if _, _, err := db2.AcceptDelivery(ctx, webhook.Received{Event: "ping"}); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("empty id: got %v, want EINVALID", err)
	}
}

func TestAcceptDeliveryForgetsOldFinishedOnes(t *testing.T) {
	db := openGitHubTestDB(t, filepath.Join(t.TempDir(), "smek.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(now)
	db.Clock = clock
	record(t, db, "old", nil, nil)
	record(t, db, "pending", nil, []byte(`{}`))
	clock.Advance(DeliveryRetention + time.Minute)
	if !record(t, db, "old", nil, nil) {
		t.Fatal("a done delivery past the retention: seen, want new")
	}
	// Work not done is kept however old it is.
	if record(t, db, "pending", nil, []byte(`{}`)) {
		t.Fatal("accepted work past the retention was forgotten")
	}
}

func TestAcceptDeliveryKnowsPayloads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(now)
	db.Clock = clock
	payload := sha256.Sum256([]byte(`{"action":"completed"}`))
	other := sha256.Sum256([]byte(`{"action":"closed"}`))
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
		if got := record(t, db, s.id, s.digest, nil); got != s.isNew {
			t.Fatalf("%s: new = %t, want %t", s.name, got, s.isNew)
		}
	}
	// The payload under a new id answers the delivery that has it.
	d, _, err := db.AcceptDelivery(ctx, webhook.Received{ID: "d-9", Event: "workflow_run", PayloadSHA256: payload[:]})
	if err != nil || d.ID != "d-1" {
		t.Fatalf("the payload under a new id: got %+v, %v; want delivery d-1", d, err)
	}
	// The digest survives a restart and is forgotten with the id.
	db.Close()
	db = openGitHubTestDB(t, path)
	db.Clock = clock
	if record(t, db, "d-6", payload[:], nil) {
		t.Fatal("the payload under a new id after reopening: new, want a duplicate")
	}
	clock.Advance(DeliveryRetention + time.Minute)
	if !record(t, db, "d-7", payload[:], nil) {
		t.Fatal("the payload past the retention: a duplicate, want new")
	}
	if _, _, err := db.AcceptDelivery(ctx, webhook.Received{ID: "d-8", Event: "ping", PayloadSHA256: []byte("short")}); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("a 5-byte digest: got %v, want EINVALID", err)
	}
}

// TestDeliveryWork walks a delivery's work through its states as the App
// records them, across a reopen of the file.
func TestDeliveryWork(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db := openGitHubTestDB(t, path)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	db.Clock = clockwork.NewFakeClockAt(now)
	body := []byte(`{"action":"completed","workflow_run":{"id":1}}`)
	digest := sha256.Sum256(body)

	d, isNew, err := db.AcceptDelivery(ctx, webhook.Received{ID: "w-1", Event: "workflow_run", PayloadSHA256: digest[:], Payload: body})
	if err != nil || !isNew || d.State != webhook.Accepted || d.Attempts != 0 {
		t.Fatalf("accept: got %+v, %t, %v; want new accepted work", d, isNew, err)
	}
	// Old records, and Apps that only de-duplicate, are done at once.
	if d, _, _ := db.AcceptDelivery(ctx, webhook.Received{ID: "w-old", Event: "ping"}); d.State != webhook.Done {
		t.Fatalf("a delivery without payload: state %s, want done", d.State)
	}
	next := now.Add(4 * time.Second)
	if err := db.UpdateDelivery(ctx, "w-1", webhook.Update{State: webhook.Accepted, Attempts: 2, NextAttemptAt: next, Reason: "list clusters: 503"}); err != nil {
		t.Fatal(err)
	}

	// A restart finds the work pending, with its payload.
	db.Close()
	db = openGitHubTestDB(t, path)
	db.Clock = clockwork.NewFakeClockAt(now)
	pending, err := db.PendingDeliveries(ctx)
	want := webhook.Delivery{ID: "w-1", Event: "workflow_run", State: webhook.Accepted, Attempts: 2, NextAttemptAt: next, Reason: "list clusters: 503", ReceivedAt: now}
	if err != nil || len(pending) != 1 || pending[0] != want {
		t.Fatalf("pending after reopen: got %+v, %v; want [%+v]", pending, err, want)
	}
	if got, err := db.DeliveryPayload(ctx, "w-1"); err != nil || string(got) != string(body) {
		t.Fatalf("payload: got %q, %v", got, err)
	}
	// GitHub's redelivery of work not done finds it as it stands.
	if d, isNew, err := db.AcceptDelivery(ctx, webhook.Received{ID: "w-1", Event: "workflow_run", PayloadSHA256: digest[:], Payload: body}); err != nil || isNew || d != want {
		t.Fatalf("redelivery of pending work: got %+v, %t, %v; want %+v, not new", d, isNew, err, want)
	}

	// Given up, then reopened by a redelivery, then done.
	if err := db.UpdateDelivery(ctx, "w-1", webhook.Update{State: webhook.GivenUp, Attempts: 10, Reason: "no tries left"}); err != nil {
		t.Fatal(err)
	}
	if pending, _ := db.PendingDeliveries(ctx); len(pending) != 0 {
		t.Fatalf("pending after giving up: %+v", pending)
	}
	if err := db.UpdateDelivery(ctx, "w-1", webhook.Update{State: webhook.Accepted}); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateDelivery(ctx, "w-1", webhook.Update{State: webhook.Done, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeliveryPayload(ctx, "w-1"); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("payload of done work: got %v, want ENOTFOUND (dropped)", err)
	}
	if d, _, _ := db.AcceptDelivery(ctx, webhook.Received{ID: "w-1", Event: "workflow_run", PayloadSHA256: digest[:], Payload: body}); d.State != webhook.Done {
		t.Fatalf("redelivery of done work: state %s, want done", d.State)
	}
	// Done is final; unknown ids and bad states are refused.
	for _, tt := range []struct {
		id   string
		u    webhook.Update
		code cluster.Code
	}{
		{"w-1", webhook.Update{State: webhook.Accepted}, cluster.ECONFLICT},
		{"w-none", webhook.Update{State: webhook.Done}, cluster.ENOTFOUND},
		{"w-1", webhook.Update{State: "lost"}, cluster.EINVALID},
		{"w-1", webhook.Update{State: webhook.GivenUp, Attempts: -1}, cluster.EINVALID},
	} {
		if err := db.UpdateDelivery(ctx, tt.id, tt.u); cluster.ErrorCode(err) != tt.code {
			t.Errorf("update %s to %+v: got %v, want %s", tt.id, tt.u, err, tt.code)
		}
	}
	// A long reason is cut.
	record(t, db, "w-2", nil, []byte(`{}`))
	if err := db.UpdateDelivery(ctx, "w-2", webhook.Update{State: webhook.GivenUp, Reason: strings.Repeat("é", webhook.MaxReason)}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := db.AcceptDelivery(ctx, webhook.Received{ID: "w-2"}); len(d.Reason) > webhook.MaxReason || !utf8.ValidString(d.Reason) {
		t.Fatalf("reason kept: %d bytes, valid %t", len(d.Reason), utf8.ValidString(d.Reason))
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
