package pool_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

var flavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

// memBackend is a backend whose members are entries in a map; resources
// can be made to vanish (ghosts) and every call is recorded.
type memBackend struct {
	mu        sync.Mutex
	live      map[string]bool // member id → its resources exist
	calls     []string        // "provision s-1", "release s-1 rebuilding", ...
	reconcile chan struct{}   // receives at each Reconcile when not nil
	// labelled is the cluster id each member's node was labelled with
	// when it was last made ready (Provision, Release).
	labelled map[string]cluster.ID
}

func newMem() *memBackend {
	return &memBackend{live: map[string]bool{}, labelled: map[string]cluster.ID{}}
}

func (b *memBackend) label(m cluster.Member) {
	b.mu.Lock()
	b.labelled[m.ID] = m.ReservedID
	b.mu.Unlock()
}

func (b *memBackend) labelOf(id string) cluster.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.labelled[id]
}

func (b *memBackend) record(format string, a ...any) {
	b.mu.Lock()
	b.calls = append(b.calls, fmt.Sprintf(format, a...))
	b.mu.Unlock()
}

func (b *memBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *memBackend) Name() string                               { return "mem" }
func (b *memBackend) Versions(context.Context) ([]string, error) { return []string{"1.36.3"}, nil }

func (b *memBackend) Provision(_ context.Context, m cluster.Member) ([]byte, error) {
	b.record("provision %s", m.ID)
	b.label(m)
	b.mu.Lock()
	b.live[m.ID] = true
	b.mu.Unlock()
	return []byte(`{"member":"` + m.ID + `"}`), nil
}

func (b *memBackend) Claim(context.Context, cluster.Member, cluster.Cluster) (cluster.Kubeconfig, error) {
	return cluster.Kubeconfig{}, nil
}

func (b *memBackend) Credential(context.Context, cluster.Member, cluster.Cluster) (cluster.Kubeconfig, error) {
	return cluster.Kubeconfig{}, nil
}

func (b *memBackend) Stop(context.Context, cluster.Member) error { return nil }

func (b *memBackend) Start(_ context.Context, m cluster.Member) ([]byte, error) { return m.Data, nil }

func (b *memBackend) Release(_ context.Context, m cluster.Member) (bool, []byte, error) {
	b.record("release %s %s", m.ID, m.State)
	b.label(m)
	return true, []byte(`{"member":"` + m.ID + `","rebuilt":true}`), nil
}

func (b *memBackend) Destroy(_ context.Context, m cluster.Member) error {
	b.record("destroy %s", m.ID)
	b.mu.Lock()
	delete(b.live, m.ID)
	b.mu.Unlock()
	return nil
}

// Reconcile reports as ghosts the live members whose resources are gone.
func (b *memBackend) Reconcile(_ context.Context, known []cluster.Member) ([]string, error) {
	b.mu.Lock()
	var ghosts []string
	for _, m := range known {
		switch m.State {
		case cluster.MemberReady, cluster.MemberClaimed, cluster.MemberStopped, cluster.MemberDirty:
			if !b.live[m.ID] {
				ghosts = append(ghosts, m.ID)
			}
		}
	}
	ch := b.reconcile
	b.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ghosts, nil
}

// vanish removes a member's resources behind the pool's back.
func (b *memBackend) vanish(id string) {
	b.mu.Lock()
	delete(b.live, id)
	b.mu.Unlock()
}

var _ pool.Reconciler = (*memBackend)(nil)

func openDB(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runPool runs p until the test ends.
func runPool(t *testing.T, p *pool.Pool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("pool run: %v", err)
		}
	})
}

// waitMembers waits until cond holds for the members of the backend,
// checking at every ready signal and every few milliseconds.
func waitMembers(t *testing.T, p *pool.Pool, db *sqlite.DB, what string, cond func([]cluster.Member) bool) []cluster.Member {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := p.Ready()
		ms, err := db.Members(context.Background(), p.Backend().Name())
		if err != nil {
			t.Fatal(err)
		}
		if cond(ms) {
			return ms
		}
		select {
		case <-ready:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waiting for %s: members %v", what, states(ms))
		}
	}
}

func states(ms []cluster.Member) map[string]cluster.MemberState {
	out := map[string]cluster.MemberState{}
	for _, m := range ms {
		out[m.ID] = m.State
	}
	return out
}

func countState(ms []cluster.Member, s cluster.MemberState) int {
	n := 0
	for _, m := range ms {
		if m.State == s {
			n++
		}
	}
	return n
}

func readyN(n int) func([]cluster.Member) bool {
	return func(ms []cluster.Member) bool { return countState(ms, cluster.MemberReady) == n && len(ms) == n }
}

// transitions returns a member's state changes as "from→to".
func transitions(t *testing.T, db *sqlite.DB, id string) []string {
	t.Helper()
	evs, err := db.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.From+"→"+e.To)
	}
	return out
}

// TestReleaseRebuildsBeforeReady: a released member goes dirty →
// rebuilding → ready, and the backend is asked to release a member that
// is already recorded rebuilding.
func TestReleaseRebuildsBeforeReady(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := newMem()
	// At most one member: no replacement is made while it is dirty, so the
	// pool is below its target and rebuilds it rather than deleting it.
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{flavor: 1}, MaxPerFlavor: 1})
	runPool(t, p)
	ms := waitMembers(t, p, db, "one ready member", readyN(1))
	id := ms[0].ID
	for _, s := range []cluster.MemberState{cluster.MemberClaimed, cluster.MemberDirty} {
		if err := db.SetMemberState(ctx, id, s, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	p.Nudge()
	waitMembers(t, p, db, "the member ready again", func(ms []cluster.Member) bool {
		for _, m := range ms {
			if m.ID == id {
				return m.State == cluster.MemberReady && string(m.Data) != `{"member":"`+id+`"}`
			}
		}
		return false
	})
	// The node was labelled with the id reserved at the create, and at
	// the rebuild with a fresh one: the one the next claim takes.
	first := ms[0].ReservedID
	rebuilt, err := db.Member(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || rebuilt.ReservedID == first || b.labelOf(id) != rebuilt.ReservedID {
		t.Errorf("reserved ids: %q at the create, %q after the rebuild, node labelled %q; want two different ids, the node with the second",
			first, rebuilt.ReservedID, b.labelOf(id))
	}
	got := transitions(t, db, id)
	want := []string{"→creating", "creating→ready", "ready→claimed", "claimed→dirty", "dirty→rebuilding", "rebuilding→ready"}
	if !slices.Equal(got, want) {
		t.Errorf("transitions: got %v, want %v", got, want)
	}
	if calls := b.Calls(); !slices.Contains(calls, "release "+id+" rebuilding") {
		t.Errorf("backend calls: got %v, want a release of %s in state rebuilding", calls, id)
	}
}

// TestRecoverFinishesInterruptedRebuild: a member left rebuilding by a
// previous run is released again (rebuilt), not trusted and not leaked.
func TestRecoverFinishesInterruptedRebuild(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := newMem()
	m, err := db.CreateMember(ctx, b.Name(), flavor)
	if err != nil {
		t.Fatal(err)
	}
	b.live[m.ID] = true
	for _, s := range []cluster.MemberState{cluster.MemberReady, cluster.MemberClaimed, cluster.MemberDirty, cluster.MemberRebuilding} {
		if err := db.SetMemberState(ctx, m.ID, s, []byte(`{"member":"`+m.ID+`"}`), ""); err != nil {
			t.Fatal(err)
		}
	}
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{flavor: 1}})
	runPool(t, p)
	waitMembers(t, p, db, "the interrupted member ready", func(ms []cluster.Member) bool {
		return states(ms)[m.ID] == cluster.MemberReady
	})
	var mine []string
	for _, c := range b.Calls() {
		if strings.HasSuffix(c, " "+m.ID) || strings.Contains(c, " "+m.ID+" ") {
			mine = append(mine, c)
		}
	}
	if !slices.Equal(mine, []string{"release " + m.ID + " rebuilding"}) {
		t.Errorf("backend calls for %s: got %v, want exactly one release", m.ID, mine)
	}
}

// TestGhostsAreMarkedFailedAndReplaced: a ready and a claimed member whose
// resources vanished are reported by the backend's Reconcile; the pool
// marks them failed, destroys them and provisions a replacement.
func TestGhostsAreMarkedFailedAndReplaced(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := newMem()
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{flavor: 2}})
	runPool(t, p)
	ms := waitMembers(t, p, db, "two ready members", readyN(2))
	readyGhost, claimedGhost := ms[0].ID, ms[1].ID
	if err := db.SetMemberState(ctx, claimedGhost, cluster.MemberClaimed, nil, ""); err != nil {
		t.Fatal(err)
	}
	b.vanish(readyGhost)
	b.vanish(claimedGhost)

	ghosts, err := p.ReconcileBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ghosts)
	want := []string{readyGhost, claimedGhost}
	slices.Sort(want)
	if !slices.Equal(ghosts, want) {
		t.Fatalf("ghosts: got %v, want %v", ghosts, want)
	}
	p.Nudge()
	ms = waitMembers(t, p, db, "two fresh ready members", readyN(2))
	for _, m := range ms {
		if m.ID == readyGhost || m.ID == claimedGhost {
			t.Errorf("ghost %s is still a member (%s)", m.ID, m.State)
		}
	}
	for _, g := range want {
		got := transitions(t, db, g)
		if len(got) < 2 || !strings.HasSuffix(got[len(got)-2], "→failed") || got[len(got)-1] != "failed→deleted" {
			t.Errorf("ghost %s transitions: got %v, want …→failed, failed→deleted", g, got)
		}
	}
	// A second pass finds nothing: the replacements are real.
	if ghosts, err := p.ReconcileBackend(ctx); err != nil || len(ghosts) != 0 {
		t.Errorf("second reconcile: got %v, %v; want no ghosts", ghosts, err)
	}
}

// TestRecoverSkipsGhosts: at start, a ready member whose resources are gone
// is marked failed and replaced rather than resumed.
func TestRecoverSkipsGhosts(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := newMem()
	m, err := db.CreateMember(ctx, b.Name(), flavor)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberReady, []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{flavor: 1}})
	runPool(t, p)
	waitMembers(t, p, db, "a replacement", func(ms []cluster.Member) bool {
		_, ghost := states(ms)[m.ID]
		return !ghost && readyN(1)(ms)
	})
	if got := transitions(t, db, m.ID); !slices.Equal(got[len(got)-2:], []string{"ready→failed", "failed→deleted"}) {
		t.Errorf("ghost transitions: got %v", got)
	}
}

// TestBackendReconciledPeriodically: besides at start, the backend's
// inventory is reconciled every ReconcileEvery.
func TestBackendReconciledPeriodically(t *testing.T) {
	db := openDB(t, t.TempDir())
	b := newMem()
	b.reconcile = make(chan struct{}, 100)
	p := pool.New(db, b, pool.Config{ReconcileEvery: time.Millisecond, Interval: time.Hour})
	runPool(t, p)
	for i := range 3 {
		select {
		case <-b.reconcile:
		case <-time.After(30 * time.Second):
			t.Fatalf("reconcile %d did not come", i+1)
		}
	}
}

// TestReleaseAboveTargetDeletes: a member released while the pool already
// has its target of ready members is deleted, not rebuilt.
func TestReleaseAboveTargetDeletes(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := newMem()
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{flavor: 1}})
	runPool(t, p)
	ms := waitMembers(t, p, db, "one ready member", readyN(1))
	id := ms[0].ID
	// The member serves a cluster; the pool makes a replacement.
	if err := db.SetMemberState(ctx, id, cluster.MemberClaimed, nil, ""); err != nil {
		t.Fatal(err)
	}
	p.Nudge()
	waitMembers(t, p, db, "a replacement ready", func(ms []cluster.Member) bool { return countState(ms, cluster.MemberReady) == 1 })
	if err := db.SetMemberState(ctx, id, cluster.MemberDirty, nil, ""); err != nil {
		t.Fatal(err)
	}
	p.Nudge()
	waitMembers(t, p, db, "the released member gone", readyN(1))
	got := transitions(t, db, id)
	if last := got[len(got)-1]; last != "dirty→deleted" {
		t.Errorf("released member's transitions %v, want it deleted from dirty", got)
	}
}

// blockingStore holds Members, when armed, until it is released: the
// pool's Reconcile reads the members holding the pool's lock.
type blockingStore struct {
	pool.Store
	armed   chan struct{} // closed: the next Members blocks
	entered chan struct{} // closed when a Members blocks
	release chan struct{} // closed: blocked Members go on
	once    sync.Once
}

func (s *blockingStore) Members(ctx context.Context, backend string) ([]cluster.Member, error) {
	select {
	case <-s.armed:
		s.once.Do(func() { close(s.entered) })
		<-s.release
	default:
	}
	return s.Store.Members(ctx, backend)
}

// TestClaimDoesNotWaitForTheRefill: while the pool's Reconcile holds its
// lock across a database read, a create still gets the ready signal and
// claims a member: it never waits on a lock the refill holds.
func TestClaimDoesNotWaitForTheRefill(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	acct, err := db.EnsureAccount(ctx, "acme", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := db.CreateMember(ctx, "mem", flavor)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberReady, nil, ""); err != nil {
		t.Fatal(err)
	}
	store := &blockingStore{Store: db, armed: make(chan struct{}), entered: make(chan struct{}), release: make(chan struct{})}
	p := pool.New(store, newMem(), pool.Config{Targets: map[cluster.Flavor]int{flavor: 1}})
	close(store.armed)
	reconciled := make(chan error, 1)
	go func() { reconciled <- p.Reconcile(ctx) }()
	<-store.entered // Reconcile holds the pool's lock now

	claimed := make(chan error, 1)
	go func() {
		p.Ready()
		now := time.Now()
		_, err := p.Claim(ctx, cluster.Cluster{AccountID: acct.ID, Account: acct.Name, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			Spec: cluster.Spec{K8sVersion: flavor.K8sVersion, Size: flavor.Size, MinutesToLive: 60}})
		claimed <- err
	}()
	// A bound on a hang, not a speed check: a claim that waited for the
	// lock would wait here until the release below, which never comes
	// first.
	select {
	case err := <-claimed:
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the claim waited for the lock the refill holds")
	}
	close(store.release)
	if err := <-reconciled; err != nil {
		t.Fatal(err)
	}
}
