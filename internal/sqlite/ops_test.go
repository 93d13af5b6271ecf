package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
)

var opsT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openOpsDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Clock = clockwork.NewFakeClockAt(opsT0)
	return db
}

func opsExec(t *testing.T, db *DB, q string, args ...any) {
	t.Helper()
	if _, err := db.w.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func insertOpsServer(t *testing.T, db *DB, id, version string, priv bool, state string) {
	t.Helper()
	opsExec(t, db, `INSERT INTO servers (id, backend, k8s_version, size, privileged, state, created_at, updated_at)
		VALUES (?, 'local', ?, '1-mid', ?, ?, ?, ?)`, id, version, b2i(priv), state, ms(opsT0), ms(opsT0))
}

func insertOpsCluster(t *testing.T, db *DB, id string, accountID int64, status string, created time.Time, queued, claimed, ready int64) {
	t.Helper()
	opsExec(t, db, `INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster,
			minutes_to_live, notification_email, queued_ms, claimed_ms, ready_ms, warm, created_at, expires_at)
		VALUES (?, ?, ?, '1.27.4', '1-mid', 0, 1, 60, 'dev@example.com', ?, ?, ?, ?, ?, ?)`,
		id, accountID, status, queued, claimed, ready, b2i(queued == 0), ms(created), ms(created.Add(time.Hour)))
}

func TestPoolHealth(t *testing.T) {
	ctx := context.Background()
	db := openOpsDB(t)
	for i, state := range []string{"ready", "ready", "creating", "bootstrapping", "dirty", "rebuilding", "claimed", "stopped", "failed", "deleted", "weird"} {
		insertOpsServer(t, db, "s"+string(rune('a'+i)), "1.27.4", false, state)
	}
	insertOpsServer(t, db, "p1", "1.27.4", true, "ready")

	got, err := db.PoolHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []PoolHealth{
		{Flavor: cluster.Flavor{K8sVersion: "1.27.4", Size: "1-mid"}, Ready: 2, Booting: 2, Rebuilding: 2, InUse: 2, Failed: 1, Other: 1},
		{Flavor: cluster.Flavor{K8sVersion: "1.27.4", Size: "1-mid", Privileged: true}, Ready: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	counts, err := db.MemberCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := counts[cluster.Flavor{K8sVersion: "1.27.4", Size: "1-mid"}]
	if base["ready"] != 2 || base["deleted"] != 0 || base["weird"] != 1 {
		t.Errorf("got counts %v, want ready=2 deleted=0 weird=1", base)
	}
}

func TestAllClustersAndCounts(t *testing.T) {
	ctx := context.Background()
	db := openOpsDB(t)
	alice, err := db.EnsureAccount(ctx, "alice", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := db.EnsureAccount(ctx, "bob", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	insertOpsCluster(t, db, "c-aaaaa1", alice.ID, "running", opsT0.Add(-3*time.Minute), 0, 4, 900)
	insertOpsCluster(t, db, "c-bbbbb2", bob.ID, "stopped", opsT0.Add(-2*time.Minute), 0, 3, 800)
	insertOpsCluster(t, db, "c-ccccc3", bob.ID, "terminated", opsT0.Add(-1*time.Minute), 0, 3, 700)

	live, err := db.AllClusters(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := opsIDs(live); !reflect.DeepEqual(got, []cluster.ID{"c-bbbbb2", "c-aaaaa1"}) {
		t.Errorf("live clusters: got %v, want [c-bbbbb2 c-aaaaa1]", got)
	}
	all, err := db.AllClusters(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := opsIDs(all); !reflect.DeepEqual(got, []cluster.ID{"c-ccccc3", "c-bbbbb2", "c-aaaaa1"}) {
		t.Errorf("all clusters: got %v, want [c-ccccc3 c-bbbbb2 c-aaaaa1]", got)
	}
	c := all[2]
	if c.Account != "alice" || c.Status != cluster.Running || c.Spec.K8sVersion != "1.27.4" ||
		c.Timings.Ready != 900*time.Millisecond || !c.Timings.Warm || !c.ExpiresAt.Equal(opsT0.Add(57*time.Minute)) {
		t.Errorf("got %+v, want alice's running cluster with its timings and deadline", c)
	}

	counts, err := db.ClusterCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[cluster.Status]int{cluster.Running: 1, cluster.Stopped: 1, cluster.Terminated: 1}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("got %v, want %v", counts, want)
	}
}

func TestClaimSamples(t *testing.T) {
	ctx := context.Background()
	db := openOpsDB(t)
	a, err := db.EnsureAccount(ctx, "alice", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	insertOpsCluster(t, db, "c-old001", a.ID, "running", opsT0.Add(-2*time.Hour), 0, 5, 1000)
	insertOpsCluster(t, db, "c-warm01", a.ID, "terminated", opsT0.Add(-30*time.Minute), 0, 5, 1000)
	insertOpsCluster(t, db, "c-cold01", a.ID, "running", opsT0.Add(-10*time.Minute), 20000, 5, 1000)
	insertOpsCluster(t, db, "c-fail01", a.ID, "failed", opsT0.Add(-5*time.Minute), 0, 0, 0)
	insertOpsCluster(t, db, "c-pend01", a.ID, "pending", opsT0.Add(-1*time.Minute), 0, 0, 0)

	got, err := db.ClaimSamples(ctx, opsT0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []ClaimSample{
		{ClusterID: "c-warm01", At: opsT0.Add(-30 * time.Minute), Timings: cluster.Timings{Claimed: 5 * time.Millisecond, Ready: time.Second, Warm: true}},
		{ClusterID: "c-cold01", At: opsT0.Add(-10 * time.Minute), Timings: cluster.Timings{Queued: 20 * time.Second, Claimed: 5 * time.Millisecond, Ready: time.Second}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestRecentEventsAndPrune(t *testing.T) {
	ctx := context.Background()
	db := openOpsDB(t)
	for i := range 5 {
		opsExec(t, db, `INSERT INTO events (time, subject, type, from_state, to_state, cause, actor, message)
			VALUES (?, 'c-aaaaa1', ?, 'running', 'stopped', 'ttl', 'sweeper', '')`,
			ms(opsT0.Add(time.Duration(i)*time.Hour)), "e"+string(rune('0'+i)))
	}

	got, err := db.RecentEvents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != "e4" || got[1].Type != "e3" {
		t.Fatalf("got %+v, want the events e4 and e3, newest first", got)
	}
	if e := got[0]; e.Subject != "c-aaaaa1" || e.From != "running" || e.To != "stopped" || e.Cause != "ttl" ||
		e.Actor != "sweeper" || !e.Time.Equal(opsT0.Add(4*time.Hour)) {
		t.Errorf("got %+v, want every column of the stored event", e)
	}

	n, err := db.PruneEvents(ctx, opsT0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("pruned %d events, want 2 (e0 and e1)", n)
	}
	left, err := db.RecentEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 || left[2].Type != "e2" {
		t.Errorf("got %+v left, want e4, e3, e2", left)
	}
	if n, err := db.PruneEvents(ctx, opsT0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("second prune: got %d, %v, want 0, nil", n, err)
	}
}

func opsIDs(cs []cluster.Cluster) []cluster.ID {
	var out []cluster.ID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}
