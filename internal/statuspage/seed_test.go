package statuspage_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

// now is the page's clock in the tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	baseline   = cluster.Flavor{K8sVersion: "1.27.4", Size: "1-mid"}
	privileged = cluster.Flavor{K8sVersion: "1.27.4", Size: "1-mid", Privileged: true}
	newer      = cluster.Flavor{K8sVersion: "1.28.0", Size: "1-mid"}
	targets    = map[cluster.Flavor]int{baseline: 3, privileged: 1, newer: 1}
)

// claim is one seeded cluster creation in the last hour.
type claim struct {
	id                     string
	ago                    time.Duration
	queued, claimed, ready int64 // ms
}

// seededClaims total 1010, 1020, 1030, 1040 ms (warm) and 21060 ms (cold);
// with the running cluster c-run001 (905 ms, warm) the last hour has six
// claims: p50 1020 ms, p95 21060 ms.
var seededClaims = []claim{
	{"c-wrm001", 55 * time.Minute, 0, 10, 1000},
	{"c-wrm002", 40 * time.Minute, 0, 20, 1000},
	{"c-wrm003", 25 * time.Minute, 0, 30, 1000},
	{"c-wrm004", 10 * time.Minute, 0, 40, 1000},
	{"c-cold05", 5 * time.Minute, 20000, 60, 1000},
}

// seed opens a fresh database file and fills it the way a running server
// would have: two accounts, pool members of two flavors, live and ended
// clusters, and events.
func seed(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smek.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	teamA, err := db.EnsureAccount(ctx, "team-a", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	teamB, err := db.EnsureAccount(ctx, "team-b", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ms := func(t time.Time) int64 { return t.UnixMilli() }

	servers := []struct {
		id    string
		f     cluster.Flavor
		state string
	}{
		{"local-1", baseline, "ready"}, {"local-2", baseline, "ready"}, {"local-3", baseline, "bootstrapping"},
		{"local-4", baseline, "rebuilding"}, {"local-5", baseline, "claimed"}, {"local-6", baseline, "claimed"},
		{"local-7", privileged, "failed"}, {"local-8", baseline, "deleted"},
	}
	for _, s := range servers {
		priv := 0
		if s.f.Privileged {
			priv = 1
		}
		exec(`INSERT INTO servers (id, backend, k8s_version, size, privileged, state, created_at, updated_at)
			VALUES (?, 'local', ?, ?, ?, ?, ?, ?)`, s.id, s.f.K8sVersion, s.f.Size, priv, s.state, ms(now.Add(-2*time.Hour)), ms(now))
	}

	insert := func(id string, account int64, status string, created time.Time, ttl time.Duration, queued, claimed, ready int64, repo string, pr int) {
		t.Helper()
		warm := 0
		if queued == 0 {
			warm = 1
		}
		exec(`INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster, minutes_to_live,
				notification_email, run_repository, run_pull_request, queued_ms, claimed_ms, ready_ms, warm, created_at, expires_at)
			VALUES (?, ?, ?, '1.27.4', '1-mid', 0, 1, ?, 'dev@example.com', ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, account, status, int(ttl/time.Minute), repo, pr, queued, claimed, ready, warm, ms(created), ms(created.Add(ttl)))
	}
	for _, c := range seededClaims {
		insert(c.id, teamA.ID, "terminated", now.Add(-c.ago), time.Minute, c.queued, c.claimed, c.ready, "", 0)
	}
	insert("c-run001", teamA.ID, "running", now.Add(-20*time.Minute), time.Hour, 0, 5, 900, "acme/shop", 17)
	insert("c-stp002", teamB.ID, "stopped", now.Add(-3*time.Hour), 2*time.Hour, 0, 5, 900, "", 0)
	insert("c-late03", teamB.ID, "running", now.Add(-70*time.Minute), time.Hour, 0, 5, 900, "", 0)
	insert("c-gone04", teamA.ID, "terminated", now.Add(-5*time.Hour), time.Hour, 0, 5, 900, "", 0)

	events := []struct {
		ago                                  time.Duration
		subject, typ, from, to, cause, actor string
	}{
		{30 * time.Minute, "local-4", "released", "claimed", "dirty", "pool", ""},
		{20 * time.Minute, "c-run001", "created", "pending", "running", "api", "token:smek_ab12"},
		{2 * time.Minute, "c-stp002", "expired", "running", "stopped", "ttl", "sweeper"},
	}
	for _, e := range events {
		exec(`INSERT INTO events (time, subject, type, from_state, to_state, cause, actor, message) VALUES (?, ?, ?, ?, ?, ?, ?, '')`,
			ms(now.Add(-e.ago)), e.subject, e.typ, e.from, e.to, e.cause, e.actor)
	}
	return db
}
