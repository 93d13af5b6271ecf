package hetzner

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

// The provisioner is killed at each step of a member's life and started
// again on the same database: the new run finishes or rolls back what the
// old one left, no server leaks and no member serves two clusters. The node
// steps are stubbed (the cloud side is under test); TestPoolEndToEnd runs
// the real bootstrap.

func waitFired(t *testing.T, r *run, what string) {
	t.Helper()
	select {
	case <-r.k.fired:
	case <-time.After(time.Minute):
		t.Fatalf("the provisioner was not killed %s", what)
	}
}

// waitEntered waits until a bootstrap of member id (any member for "")
// began.
func waitEntered(t *testing.T, s *stubNode, id string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case got := <-s.entered:
			if id == "" || got == id {
				return
			}
		case <-deadline:
			t.Fatalf("no bootstrap of %q began", id)
		}
	}
}

func nodeServers(w *world) []int64 {
	var ids []int64
	for _, s := range w.fake.Servers() {
		if s.Labels[LabelRole] == "node" {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// onlyMember returns the single member of a run's database.
func onlyMember(t *testing.T, r *run, state cluster.MemberState) cluster.Member {
	t.Helper()
	ms, err := r.db.Members(context.Background(), "hetzner")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].State != state {
		t.Fatalf("members: got %v, want one %s", memberStates(ms), state)
	}
	return ms[0]
}

// restartAndCheck starts a new run on the world's database and checks
// that it converges to a consistent inventory with the interrupted member
// gone (deleted) or kept, as want says.
func restartAndCheck(t *testing.T, w *world, old cluster.Member, wantOldDeleted bool) *run {
	t.Helper()
	r := w.start(runOptions{target: 1})
	ms := r.await("the pool settled after the restart", settled(1))
	r.checkInventory()
	_, kept := memberStates(ms)[old.ID]
	if kept == wantOldDeleted {
		t.Errorf("interrupted member %s: kept=%v, want kept=%v; transitions %v", old.ID, kept, !wantOldDeleted, transitions(t, r.db, old.ID))
	}
	if n := len(nodeServers(w)); n != len(ms) {
		t.Errorf("node servers: got %d for %d members", n, len(ms))
	}
	return r
}

func TestCrashBeforeCreateRequest(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1 := w.start(runOptions{target: 1, prepare: func(r *run) { r.k.before = request("POST", "/servers") }})
	waitFired(t, r1, "before the create")
	r1.kill()
	old := onlyMember(t, r1Reopen(t, w), cluster.MemberCreating)
	if ids := nodeServers(w); len(ids) != 0 {
		t.Fatalf("servers before the restart: got %v, want none", ids)
	}
	r2 := restartAndCheck(t, w, old, true)
	if got := transitions(t, r2.db, old.ID); !slices.Equal(got, []string{"→creating", "creating→deleted"}) {
		t.Errorf("interrupted member transitions: got %v", got)
	}
}

// r1Reopen opens the database the way an operator would look at it after
// the crash.
func r1Reopen(t *testing.T, w *world) *run {
	t.Helper()
	db, err := sqlite.Open(context.Background(), w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &run{w: w, db: db}
}

// TestCrashAfterCreateAnswerLost: the create reached the API, its answer
// never reached the dead process; the member's data holds no server id. The
// next run finds the server by its name and deletes it.
func TestCrashAfterCreateAnswerLost(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1 := w.start(runOptions{target: 1, prepare: func(r *run) { r.k.after = request("POST", "/servers") }})
	waitFired(t, r1, "after the create")
	r1.kill()
	old := onlyMember(t, r1Reopen(t, w), cluster.MemberCreating)
	if ids := nodeServers(w); len(ids) != 1 {
		t.Fatalf("servers before the restart: got %v, want the one created", ids)
	}
	orphan := nodeServers(w)[0]
	restartAndCheck(t, w, old, true)
	if slices.Contains(nodeServers(w), orphan) {
		t.Errorf("the server %d of the interrupted create is still there", orphan)
	}
}

// TestCrashWhileCreateActionRuns: killed with the create action still
// running (the simulated clock stands still until the kill).
func TestCrashWhileCreateActionRuns(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.clock.frozen.Store(true)
	r1 := w.start(runOptions{target: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.fake.Await(ctx, "POST /servers", 1); err != nil {
		t.Fatal(err)
	}
	// The create's action is polled but never done while the clock stands.
	if err := w.fake.Await(ctx, "GET /actions", 2); err != nil {
		t.Fatal(err)
	}
	r1.kill()
	w.clock.frozen.Store(false)
	old := onlyMember(t, r1Reopen(t, w), cluster.MemberCreating)
	restartAndCheck(t, w, old, true)
}

// TestCrashDuringBootstrap: killed while the new server is bootstrapped.
func TestCrashDuringBootstrap(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1 := w.start(runOptions{target: 1, prepare: func(r *run) { r.stub.hold.Store(true) }})
	waitEntered(t, r1.stub, "")
	r1.kill()
	old := onlyMember(t, r1Reopen(t, w), cluster.MemberCreating)
	restartAndCheck(t, w, old, true)
}

// readyRun starts a run and waits for its one ready member.
func readyRun(t *testing.T, w *world) (*run, cluster.Member) {
	t.Helper()
	r := w.start(runOptions{target: 1, max: 1})
	ms := r.await("one ready member", settled(1))
	return r, ms[0]
}

// TestCrashDuringRebuild: the released member's rebuild was sent and is
// running when the provisioner dies. The next run rebuilds it again (the
// same server, no new one for it) and only then is it ready.
func TestCrashDuringRebuild(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1, m := readyRun(t, w)
	serverID := mustData(t, m.Data).ServerID
	acct := r1.account()
	claimed, c := r1.claim(acct)
	if claimed.ID != m.ID {
		t.Fatalf("claimed %s, want %s", claimed.ID, m.ID)
	}
	r1.k.mu.Lock()
	r1.k.after = request("POST", "/servers/*/actions/rebuild")
	r1.k.mu.Unlock()
	r1.terminate(c)
	waitFired(t, r1, "after the rebuild request")
	r1.kill()
	if got := memberStates(mustServers(t, r1Reopen(t, w).db))[m.ID]; got != cluster.MemberRebuilding {
		t.Fatalf("member after the crash: got %s, want rebuilding", got)
	}
	r2 := w.start(runOptions{target: 1, max: 1})
	r2.await("the member rebuilt and ready", func(ms []cluster.Member) bool {
		return settled(1)(ms) && memberStates(ms)[m.ID] == cluster.MemberReady
	})
	owner := r2.checkInventory()
	if owner[serverID].ID != m.ID {
		t.Errorf("server %d: owned by %q, want the rebuilt member %s", serverID, owner[serverID].ID, m.ID)
	}
	if n := w.fake.ActionCounts()["rebuild_server"]; n != 2 {
		t.Errorf("rebuilds: got %d, want 2 (the interrupted one and its retry)", n)
	}
	checkNeverDirtyToReady(t, r2.db, m.ID)
	checkClaimsUnique(t, r2, acct)
}

// TestCrashDuringRebuildBootstrap: killed while the rebuilt server is
// bootstrapped; the next run rebuilds it once more.
func TestCrashDuringRebuildBootstrap(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1, m := readyRun(t, w)
	acct := r1.account()
	_, c := r1.claim(acct)
	for len(r1.stub.entered) > 0 {
		<-r1.stub.entered
	}
	r1.stub.hold.Store(true)
	r1.terminate(c)
	waitEntered(t, r1.stub, m.ID)
	r1.kill()
	r2 := w.start(runOptions{target: 1, max: 1})
	r2.await("the member rebuilt and ready", func(ms []cluster.Member) bool {
		return settled(1)(ms) && memberStates(ms)[m.ID] == cluster.MemberReady
	})
	r2.checkInventory()
	if n := w.fake.ActionCounts()["rebuild_server"]; n != 2 {
		t.Errorf("rebuilds: got %d, want 2; %v", n, transitions(t, r2.db, m.ID))
	}
	checkNeverDirtyToReady(t, r2.db, m.ID)
}

// TestCrashDuringStop: the shutdown of a claimed member was sent, the
// provisioner died before recording the stop, so the cluster is still
// running on a server going off. The next run starts it again.
func TestCrashDuringStop(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r1, _ := readyRun(t, w)
	acct := r1.account()
	m, _ := r1.claim(acct)
	r1.k.mu.Lock()
	r1.k.after = request("POST", "/servers/*/actions/shutdown")
	r1.k.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r1.backend.Stop(ctx, m); !errors.Is(err, errKilled) {
		t.Fatalf("stop: got %v, want the kill", err)
	}
	r1.kill()
	serverID := mustData(t, m.Data).ServerID
	// The shutdown only sends the ACPI request: the server goes off a
	// while later, whether anyone watches or not.
	w.clock.Advance(time.Minute)
	if st := serverStatus(w, serverID); st == string(hcloud.ServerStatusRunning) {
		t.Fatalf("server %d is %s after the shutdown", serverID, st)
	}
	r2 := w.start(runOptions{target: 1})
	<-r2.pool.Recovered()
	if st := serverStatus(w, serverID); st != string(hcloud.ServerStatusRunning) {
		t.Errorf("server %d after the restart: %s, want running", serverID, st)
	}
	if got := memberStates(mustServers(t, r2.db))[m.ID]; got != cluster.MemberClaimed {
		t.Errorf("member after the restart: %s, want claimed", got)
	}
	// The pool may already be booting a refill: count the member's own.
	if n := r2.stub.bootsOf(m.ID); n != 1 {
		t.Errorf("k3s starts of %s after the restart: got %d, want 1", m.ID, n)
	}
	r2.await("the pool settled", settled(1))
	r2.checkInventory()
	checkClaimsUnique(t, r2, acct, m.ID)
}

func serverStatus(w *world, id int64) string {
	w.fake.Settle()
	for _, s := range w.fake.Servers() {
		if s.ID == id {
			return s.Status
		}
	}
	return "gone"
}

func mustServers(t *testing.T, db *sqlite.DB) []cluster.Member {
	t.Helper()
	ms, err := db.Members(context.Background(), "hetzner")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// checkClaimsUnique claims every ready member and checks that none of them
// is one that already serves a cluster.
func checkClaimsUnique(t *testing.T, r *run, acct cluster.Account, inUse ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range inUse {
		seen[id] = true
	}
	for {
		now := time.Now()
		c := cluster.Cluster{ID: cluster.NewID(), AccountID: acct.ID, Account: acct.Name,
			Spec: cluster.Spec{K8sVersion: flavor.K8sVersion, Size: flavor.Size, MinutesToLive: 60}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		m, err := r.db.ClaimMember(context.Background(), c, "hetzner")
		if errors.Is(err, cluster.ErrPoolEmpty) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[m.ID] {
			t.Errorf("member %s claimed a second time", m.ID)
		}
		seen[m.ID] = true
	}
}
