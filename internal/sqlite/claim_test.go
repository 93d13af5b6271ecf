package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
)

var claimT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var claimFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

// openClaimDB opens a fresh database file with a fixed clock.
func openClaimDB(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Clock = clockwork.NewFakeClockAt(claimT0)
	t.Cleanup(func() { db.Close() })
	return db
}

func claimAccount(t testing.TB, db *DB, name string, maxClusters int) cluster.Account {
	t.Helper()
	a, err := db.EnsureAccount(context.Background(), name, AccountLimits{MaxClusters: &maxClusters})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readyServers records n servers of flavor f and takes them through the
// pool's states to ready.
func readyServers(t testing.TB, db *DB, backend string, f cluster.Flavor, n int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for range n {
		s, err := db.CreateMember(ctx, backend, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []cluster.MemberState{cluster.MemberBootstrapping, cluster.MemberReady} {
			if err := db.SetMemberState(ctx, s.ID, st, []byte(`{"port": 1}`), ""); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, s.ID)
	}
	return ids
}

func newClaim(a cluster.Account, i int, f cluster.Flavor) cluster.Cluster {
	return cluster.Cluster{
		ID: cluster.ID(fmt.Sprintf("c-%06d", i)), AccountID: a.ID, Account: a.Name, Status: cluster.Pending,
		Spec:      cluster.Spec{K8sVersion: f.K8sVersion, Size: f.Size, Privileged: f.Privileged, MinutesToLive: 60, KeepCluster: true},
		CreatedAt: claimT0, ExpiresAt: claimT0.Add(time.Hour),
	}
}

type claimResult struct {
	c   cluster.Cluster
	srv cluster.Member
	err error
}

// claimAll runs one ClaimMember per cluster, all released at once.
func claimAll(t *testing.T, db *DB, cs []cluster.Cluster) []claimResult {
	t.Helper()
	out := make([]claimResult, len(cs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			<-start
			srv, err := db.ClaimMember(context.Background(), c, "local")
			out[i] = claimResult{c, srv, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// Invariant 2 of DESIGN.md: one ready server is claimed by at most one
// cluster, whatever the concurrency.
func TestClaimIsExclusive(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 100)
	servers := readyServers(t, db, "local", claimFlavor, 20)

	var cs []cluster.Cluster
	for i := range 40 {
		cs = append(cs, newClaim(a, i, claimFlavor))
	}
	results := claimAll(t, db, cs)

	byServer := map[string]cluster.ID{}
	won := 0
	for _, r := range results {
		if r.err != nil {
			if !errors.Is(r.err, cluster.ErrPoolEmpty) {
				t.Errorf("claim for %s: got %v, want ErrPoolEmpty", r.c.ID, r.err)
			}
			continue
		}
		won++
		if other, dup := byServer[r.srv.ID]; dup {
			t.Errorf("server %s handed to %s and %s", r.srv.ID, other, r.c.ID)
		}
		byServer[r.srv.ID] = r.c.ID
		if r.srv.State != cluster.MemberClaimed || r.srv.ClusterID != r.c.ID {
			t.Errorf("claim for %s returned %+v", r.c.ID, r.srv)
		}
	}
	if won != 20 {
		t.Errorf("got %d successful claims, want 20 (one per ready server)", won)
	}

	// The database agrees: every server is claimed by the cluster that
	// records it, and every cluster is on the server that records it.
	for _, id := range servers {
		s, err := db.Member(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != cluster.MemberClaimed || s.ClusterID != byServer[id] {
			t.Errorf("server %s: state %s cluster %q, want claimed by %q", id, s.State, s.ClusterID, byServer[id])
		}
		c, err := db.Cluster(ctx, a.ID, s.ClusterID)
		if err != nil {
			t.Fatalf("cluster %s of server %s: %v", s.ClusterID, id, err)
		}
		if c.MemberID != id || c.Status != cluster.Pending {
			t.Errorf("cluster %s: server %q status %s, want server %s, pending", c.ID, c.MemberID, c.Status, id)
		}
	}
	all, err := db.Clusters(ctx, cluster.Filter{})
	if err != nil || len(all) != 20 {
		t.Errorf("got %d clusters recorded (%v), want 20: a failed claim must record nothing", len(all), err)
	}
}

// The parallel-cluster limit is checked inside the claim transaction, so
// that concurrent creates cannot overshoot it.
func TestClaimLimitUnderConcurrency(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "small", 5)
	readyServers(t, db, "local", claimFlavor, 20)

	var cs []cluster.Cluster
	for i := range 20 {
		cs = append(cs, newClaim(a, i, claimFlavor))
	}
	won, limited := 0, 0
	var winner cluster.ID
	for _, r := range claimAll(t, db, cs) {
		switch {
		case r.err == nil:
			won++
			winner = r.c.ID
		case cluster.ErrorCode(r.err) == cluster.ELIMIT:
			limited++
		default:
			t.Errorf("claim for %s: got %v, want success or the limit", r.c.ID, r.err)
		}
	}
	if won != 5 || limited != 15 {
		t.Errorf("got %d claims and %d refused, want 5 and 15", won, limited)
	}
	if n, err := db.CountLive(ctx, a.ID); err != nil || n != 5 {
		t.Errorf("CountLive = %d, %v; want 5", n, err)
	}
	ready := 0
	servers, err := db.Members(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.State == cluster.MemberReady {
			ready++
		}
	}
	if ready != 15 {
		t.Errorf("got %d ready servers left, want 15: a refused claim takes nothing", ready)
	}

	// Another account is not held back by this one's limit.
	other := claimAccount(t, db, "other", 5)
	if _, err := db.ClaimMember(ctx, newClaim(other, 100, claimFlavor), "local"); err != nil {
		t.Errorf("other account: %v", err)
	}
	// A stopped cluster does not count: stopping one makes room.
	for _, ch := range []cluster.Change{
		{From: []cluster.Status{cluster.Pending}, To: cluster.Running},
		{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped},
	} {
		if _, err := db.UpdateCluster(ctx, winner, ch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ClaimMember(ctx, newClaim(a, 200, claimFlavor), "local"); err != nil {
		t.Errorf("after stopping one of 5: %v", err)
	}
	if _, err := db.ClaimMember(ctx, newClaim(a, 201, claimFlavor), "local"); cluster.ErrorCode(err) != cluster.ELIMIT {
		t.Errorf("sixth live cluster: got %v, want the limit", err)
	}
}

func TestClaimMatchesFlavorAndBackend(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 100)
	priv := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	readyServers(t, db, "local", priv, 1)
	readyServers(t, db, "hetzner", claimFlavor, 1)
	older := cluster.Flavor{K8sVersion: "1.35.7", Size: cluster.SizeMid}
	readyServers(t, db, "local", older, 1)

	if _, err := db.ClaimMember(ctx, newClaim(a, 1, claimFlavor), "local"); !errors.Is(err, cluster.ErrPoolEmpty) {
		t.Errorf("baseline 1.36.3 on local: got %v, want ErrPoolEmpty (only other flavors and backends are ready)", err)
	}
	s, err := db.ClaimMember(ctx, newClaim(a, 2, priv), "local")
	if err != nil || s.Flavor != priv || s.Backend != "local" {
		t.Errorf("privileged: got %+v, %v", s, err)
	}
}

// The oldest ready server is taken first, so that servers are used in
// turn.
func TestClaimTakesOldestReady(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 100)
	var ids []string
	for i := range 3 {
		db.Clock = clockwork.NewFakeClockAt(claimT0.Add(time.Duration(3-i) * time.Minute)) // the last is the oldest
		ids = append(ids, readyServers(t, db, "local", claimFlavor, 1)[0])
	}
	for i, want := range []string{ids[2], ids[1], ids[0]} {
		s, err := db.ClaimMember(ctx, newClaim(a, i, claimFlavor), "local")
		if err != nil || s.ID != want {
			t.Errorf("claim %d: got %s, %v; want %s", i, s.ID, err, want)
		}
	}
}

func TestUpdateClusterTransitions(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 100)
	srvID := readyServers(t, db, "local", claimFlavor, 1)[0]
	c := newClaim(a, 1, claimFlavor)
	if _, err := db.ClaimMember(ctx, c, "local"); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		ch   cluster.Change
		want cluster.Status // "" means ECONFLICT
	}{
		{"stop while pending", cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped}, ""},
		{"running", cluster.Change{From: []cluster.Status{cluster.Pending}, To: cluster.Running, APIServer: "https://127.0.0.1:6443",
			Timings: &cluster.Timings{Claimed: 3 * time.Millisecond, Ready: 50 * time.Millisecond, Warm: true}}, cluster.Running},
		{"start while running", cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running}, ""},
		{"stop", cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped}, cluster.Stopped},
		{"stop again", cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped}, ""},
		{"start", cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed}, cluster.Running},
		{"terminate", cluster.Change{From: []cluster.Status{cluster.Running, cluster.Stopped}, To: cluster.Terminated,
			ReleaseMember: true, MemberState: cluster.MemberDirty}, cluster.Terminated},
		{"stop a terminated cluster", cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped}, ""},
		{"start a terminated cluster", cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running}, ""},
		{"terminate twice", cluster.Change{From: []cluster.Status{cluster.Running, cluster.Stopped}, To: cluster.Terminated}, ""},
	}
	for _, st := range steps {
		before, err := db.Cluster(ctx, 0, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.UpdateCluster(ctx, c.ID, st.ch)
		if st.want == "" {
			if cluster.ErrorCode(err) != cluster.ECONFLICT {
				t.Errorf("%s: got %v, want a conflict", st.name, err)
			}
			after, _ := db.Cluster(ctx, 0, c.ID)
			if after.Status != before.Status {
				t.Errorf("%s: a refused change moved the cluster from %s to %s", st.name, before.Status, after.Status)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		stored, err := db.Cluster(ctx, a.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != st.want || stored.Status != st.want {
			t.Errorf("%s: got %s, stored %s; want %s", st.name, got.Status, stored.Status, st.want)
		}
	}

	final, err := db.Cluster(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.APIServer != "https://127.0.0.1:6443" || final.Timings.Ready != 50*time.Millisecond || !final.Timings.Warm {
		t.Errorf("the running step's data was not kept: %+v", final)
	}
	if !final.TerminatedAt.Equal(claimT0) || !final.StoppedAt.IsZero() {
		t.Errorf("got terminated-at %v, stopped-at %v", final.TerminatedAt, final.StoppedAt)
	}
	// Invariant 1: the released server is dirty and linked to nothing; it
	// cannot be claimed until the pool has rebuilt it.
	s, err := db.Member(ctx, srvID)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != cluster.MemberDirty || s.ClusterID != "" {
		t.Errorf("released server: state %s cluster %q, want dirty and unlinked", s.State, s.ClusterID)
	}
	if _, err := db.ClaimMember(ctx, newClaim(a, 2, claimFlavor), "local"); !errors.Is(err, cluster.ErrPoolEmpty) {
		t.Errorf("claim with only a dirty server: got %v, want ErrPoolEmpty", err)
	}

	if _, err := db.UpdateCluster(ctx, "c-zzzzzz", cluster.Change{To: cluster.Stopped}); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Errorf("unknown cluster: got %v, want not-found", err)
	}
}

// Two requests racing to stop the same cluster: exactly one wins, the rest
// are told it is no longer running.
func TestUpdateClusterRace(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "ci", 100)
	readyServers(t, db, "local", claimFlavor, 1)
	c := newClaim(a, 1, claimFlavor)
	if _, err := db.ClaimMember(ctx, c, "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateCluster(ctx, c.ID, cluster.Change{From: []cluster.Status{cluster.Pending}, To: cluster.Running}); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = db.UpdateCluster(ctx, c.ID, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, Cause: "api"})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch cluster.ErrorCode(err) {
		case "":
			ok++
		case cluster.ECONFLICT:
		default:
			t.Errorf("got %v, want success or a conflict", err)
		}
	}
	if ok != 1 {
		t.Errorf("got %d successful stops, want exactly 1", ok)
	}
	evs, err := db.Events(ctx, string(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	stops := 0
	for _, e := range evs {
		if e.Type == string(cluster.Stopped) {
			stops++
		}
	}
	if stops != 1 {
		t.Errorf("got %d stop events, want 1", stops)
	}
}

// Another account's cluster is not found, exactly like one that does not
// exist: existence does not leak.
func TestClusterOfAnotherAccount(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	owner := claimAccount(t, db, "owner", 5)
	stranger := claimAccount(t, db, "stranger", 5)
	readyServers(t, db, "local", claimFlavor, 1)
	c := newClaim(owner, 1, claimFlavor)
	if _, err := db.ClaimMember(ctx, c, "local"); err != nil {
		t.Fatal(err)
	}

	if got, err := db.Cluster(ctx, owner.ID, c.ID); err != nil || got.ID != c.ID || got.Account != "owner" {
		t.Errorf("owner: got %+v, %v", got, err)
	}
	if got, err := db.Cluster(ctx, 0, c.ID); err != nil || got.ID != c.ID {
		t.Errorf("any account (0): got %+v, %v", got, err)
	}
	_, errOther := db.Cluster(ctx, stranger.ID, c.ID)
	_, errNone := db.Cluster(ctx, stranger.ID, "c-zzzzzz")
	for _, err := range []error{errOther, errNone} {
		if cluster.ErrorCode(err) != cluster.ENOTFOUND {
			t.Errorf("got %v, want not-found", err)
		}
	}
	if want := "no cluster " + string(c.ID); cluster.ErrorMessage(errOther) != want {
		t.Errorf("got %q, want %q: the same answer as for a cluster that does not exist", cluster.ErrorMessage(errOther), want)
	}
	if cs, err := db.Clusters(ctx, cluster.Filter{AccountID: stranger.ID}); err != nil || len(cs) != 0 {
		t.Errorf("stranger lists %d clusters (%v), want none", len(cs), err)
	}
}

// BenchmarkList10000 is GET /list's query with 10,000 live clusters in one
// account (and as many terminated ones in another). The issue asks for
// /list in 50 ms or less.
func BenchmarkList10000(b *testing.B) {
	db := openClaimDB(b)
	ctx := context.Background()
	a := claimAccount(b, db, "big", 100000)
	other := claimAccount(b, db, "other", 100000)
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster,
		minutes_to_live, notification_email, run_repository, run_id, created_at, expires_at)
		VALUES (?, ?, ?, '1.36.3', '1-mid', 0, 1, 60, 'dev@example.com', 'o/r', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	live := []cluster.Status{cluster.Running, cluster.Stopped, cluster.Pending}
	for i := range 20000 {
		acct, status := a.ID, live[i%len(live)]
		if i%2 == 1 {
			acct, status = other.ID, cluster.Terminated
		}
		created := claimT0.Add(time.Duration(i) * time.Second)
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("c-%06d", i), acct, status, i, ms(created), ms(created.Add(time.Hour))); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	f := cluster.Filter{AccountID: a.ID, Statuses: []cluster.Status{cluster.Pending, cluster.Running, cluster.Stopped}}
	b.ReportAllocs()
	for b.Loop() {
		cs, err := db.Clusters(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != 10000 {
			b.Fatalf("got %d clusters, want 10000", len(cs))
		}
	}
}

// TestServerFailureFailsItsCluster: a server that fails while serving a
// cluster (a ghost: the cloud lost it) takes the cluster with it.
func TestServerFailureFailsItsCluster(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := db.EnsureAccount(ctx, "ghosted", AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	f := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	s, err := db.CreateMember(ctx, "test", f)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, s.ID, cluster.MemberReady, nil, ""); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := cluster.Cluster{ID: "c-ghost1", AccountID: a.ID, Account: a.Name, Spec: cluster.Spec{K8sVersion: f.K8sVersion, Size: f.Size, MinutesToLive: 5},
		CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	if _, err := db.ClaimMember(ctx, c, "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, s.ID, cluster.MemberFailed, nil, "the cloud lost the server"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Cluster(ctx, 0, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != cluster.Failed {
		t.Errorf("cluster on a failed server is %s, want failed", got.Status)
	}
	evs, err := db.Events(ctx, string(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.To != "failed" || last.Cause != "reconciler" || !strings.Contains(last.Message, "lost") {
		t.Errorf("last event %+v, want failed by the reconciler with the reason", last)
	}
}
