package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

// snapBackend is a pool backend that can hibernate: each member has a
// server (with a disk: a string the tenant wrote) or a snapshot of that
// disk, or both while a hibernation is half done. Restore takes three
// minutes of the fake clock.
type snapBackend struct {
	fakeBackend
	clock *clockwork.FakeClock

	mu        sync.Mutex
	servers   map[string]string // member id → disk
	snapshots map[string]string // snapshot id → disk
	nextSnap  int
	// duringRestore, when set, runs while a restore is under way.
	duringRestore func()
}

var _ pool.Hibernator = (*snapBackend)(nil)

type snapData struct {
	Server   string `json:"server,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
}

func newSnapBackend(clock *clockwork.FakeClock) *snapBackend {
	return &snapBackend{clock: clock, servers: map[string]string{}, snapshots: map[string]string{}}
}

func (b *snapBackend) Provision(_ context.Context, m cluster.Member) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.servers[m.ID] = ""
	return json.Marshal(snapData{Server: m.ID})
}

// write is the tenant writing to its cluster's disk.
func (b *snapBackend) write(id, disk string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.servers[id] = disk
}

func (b *snapBackend) state() (servers, snapshots map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps(b.servers), maps(b.snapshots)
}

func maps(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// snapshotOf finds a snapshot of member id: a hibernation resumed after
// a restart takes up the one taken before.
func (b *snapBackend) snapshotOf(id string) string {
	for s := range b.snapshots {
		if strings.HasPrefix(s, id+"/") {
			return s
		}
	}
	return ""
}

func (b *snapBackend) Hibernate(_ context.Context, m cluster.Member) ([]byte, float64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "hibernate "+m.ID)
	snap := b.snapshotOf(m.ID)
	if snap == "" {
		disk, ok := b.servers[m.ID]
		if !ok {
			return nil, 0, fmt.Errorf("member %s has neither a server nor a snapshot", m.ID)
		}
		b.nextSnap++
		snap = fmt.Sprintf("%s/%d", m.ID, b.nextSnap)
		b.snapshots[snap] = disk
	}
	delete(b.servers, m.ID)
	d, _ := json.Marshal(snapData{Snapshot: snap})
	return d, 1.5, nil
}

func (b *snapBackend) Restore(_ context.Context, m cluster.Member, progress func(string)) ([]byte, error) {
	var d snapData
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return nil, err
	}
	b.mu.Lock()
	disk, ok := b.snapshots[d.Snapshot]
	if ok {
		b.servers[m.ID] = disk
	}
	b.calls = append(b.calls, "restore "+m.ID)
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no snapshot %q", d.Snapshot)
	}
	progress("server created from the snapshot")
	b.mu.Lock()
	during := b.duringRestore
	b.mu.Unlock()
	if during != nil {
		during()
	}
	b.clock.Advance(3 * time.Minute)
	progress("k3s is up")
	return json.Marshal(snapData{Server: m.ID})
}

func (b *snapBackend) DeleteSnapshot(_ context.Context, m cluster.Member) error {
	var d snapData
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "delete-snapshot "+m.ID)
	delete(b.snapshots, d.Snapshot)
	return nil
}

func (b *snapBackend) Destroy(_ context.Context, m cluster.Member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.servers, m.ID)
	return nil
}

type snapEnv struct {
	dir     string
	db      *sqlite.DB
	backend *snapBackend
	clock   *clockwork.FakeClock
	svc     *lifecycle.Service
	stop    func()
}

// newSnapEnv runs a pool and the lifecycle with hibernation after two
// hours on a database file in dir; stop ends the pool, as a restart of
// the provisioner would.
func newSnapEnv(t *testing.T, dir string, b *snapBackend, clock *clockwork.FakeClock) *snapEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Clock = clock
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{testFlavor: 1}, Clock: clock})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	var once sync.Once
	e := &snapEnv{dir: dir, db: db, backend: b, clock: clock}
	e.stop = func() { once.Do(func() { cancel(); <-done; db.Close() }) }
	t.Cleanup(e.stop)
	e.svc = lifecycle.New(db, p, []string{testFlavor.K8sVersion}, lifecycle.Config{Clock: clock, HibernateAfter: lifecycle.DefaultHibernateAfter})
	return e
}

func (e *snapEnv) create(t *testing.T, p cluster.Principal) cluster.Cluster {
	t.Helper()
	keep, mail, wait := true, "owner@example.com", time.Minute
	res, err := e.svc.Create(context.Background(), p, cluster.CreateInput{KeepCluster: &keep, NotificationEmail: &mail, Wait: &wait})
	if err != nil {
		t.Fatal(err)
	}
	return res.Cluster
}

func (e *snapEnv) principal(t *testing.T) cluster.Principal {
	t.Helper()
	return e.principalWith(t, sqlite.AccountLimits{})
}

func (e *snapEnv) principalWith(t *testing.T, limits sqlite.AccountLimits) cluster.Principal {
	t.Helper()
	a, err := e.db.EnsureAccount(context.Background(), "acme", limits)
	if err != nil {
		t.Fatal(err)
	}
	return cluster.Principal{Account: a, Actor: "token:acme"}
}

// waitFor waits, at most a minute, until cond holds for the member.
func (e *snapEnv) waitFor(t *testing.T, id, what string, cond func(cluster.Member) bool) cluster.Member {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := e.db.Member(context.Background(), id)
		if err == nil && cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %s: never %s (last: %+v, %v)", id, what, m, err)
		}
		time.Sleep(5 * time.Millisecond) // polls for the pool's goroutines, not a timing
	}
}

func TestHibernateAfterTwoHoursAndRestoreOnStart(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, t.TempDir(), b, clock)
	p := e.principal(t)
	c := e.create(t, p)
	b.write(c.MemberID, "configmap=kept;pvc/file=kept")
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}

	clock.Advance(2*time.Hour - time.Minute)
	got, err := e.svc.SweepHibernation(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("sweep 1 min before --hibernate-after: got %v, %v, want nothing hibernated", got, err)
	}
	clock.Advance(time.Minute)
	got, err = e.svc.SweepHibernation(ctx)
	if err != nil || !slices.Equal(got, []cluster.ID{c.ID}) {
		t.Fatalf("sweep at --hibernate-after: got %v, %v, want [%s]", got, err, c.ID)
	}
	servers, snapshots := b.state()
	if _, ok := servers[c.MemberID]; ok || len(snapshots) != 1 {
		t.Fatalf("after hibernation: servers %v, snapshots %v; want no server and one snapshot", servers, snapshots)
	}
	shown, err := e.svc.Get(ctx, p, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if shown.Status != cluster.Stopped || !shown.Hibernated || shown.SnapshotGB != 1.5 {
		t.Fatalf("hibernated cluster: status %s, hibernated %v, snapshot %g GB; want stopped, true, 1.5", shown.Status, shown.Hibernated, shown.SnapshotGB)
	}
	listed, err := e.svc.Listed(ctx, p)
	if err != nil || len(listed) != 1 || listed[0].Status != cluster.Stopped {
		t.Fatalf("seed list of a hibernated cluster: got %v, %v; want it stopped", listed, err)
	}
	// A second sweep leaves it alone.
	if got, err := e.svc.SweepHibernation(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second sweep: got %v, %v, want nothing", got, err)
	}

	var during cluster.Cluster
	b.mu.Lock()
	b.duringRestore = func() {
		var err error
		if during, err = e.svc.Get(ctx, p, c.ID); err != nil {
			t.Error(err)
		}
	}
	b.mu.Unlock()
	res, err := e.svc.Start(ctx, p, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !during.Hibernated || during.Restoring != "server created from the snapshot" {
		t.Errorf("the cluster during its restore: hibernated %v, restoring %q; want the restore's last step", during.Hibernated, during.Restoring)
	}
	if after, err := e.svc.Get(ctx, p, c.ID); err != nil || after.Hibernated || after.Restoring != "" {
		t.Errorf("the cluster after its restore: %+v, %v", after, err)
	}
	if res.Cluster.Status != cluster.Running || res.Cluster.RestoredIn != 3*time.Minute {
		t.Fatalf("start: status %s, restored in %v; want running, 3m0s", res.Cluster.Status, res.Cluster.RestoredIn)
	}
	servers, snapshots = b.state()
	if servers[c.MemberID] != "configmap=kept;pvc/file=kept" || len(snapshots) != 0 {
		t.Fatalf("after restore: servers %v, snapshots %v; want the disk back and no snapshot", servers, snapshots)
	}
	m, err := e.db.Member(ctx, c.MemberID)
	if err != nil || m.State != cluster.MemberClaimed || m.Snapshot {
		t.Fatalf("restored member: %+v, %v; want claimed without a snapshot", m, err)
	}
	events, err := e.svc.Events(ctx, p, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, ev := range events {
		if ev.Type == "restoring" || ev.Type == "hibernated" {
			steps = append(steps, ev.Type+": "+ev.Message)
		}
	}
	if len(steps) != 4 || !strings.Contains(steps[2], "server created") || !strings.Contains(steps[3], "k3s is up") {
		t.Fatalf("events: got %q; want the hibernation and three restore steps", steps)
	}
}

func TestHibernateOffWhenZero(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, t.TempDir(), b, clock)
	p := e.principal(t)
	c := e.create(t, p)
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}
	e.svc = lifecycle.New(e.db, poolOf(t, e), []string{testFlavor.K8sVersion}, lifecycle.Config{Clock: clock})
	clock.Advance(100 * time.Hour)
	if got, err := e.svc.SweepHibernation(ctx); err != nil || len(got) != 0 {
		t.Fatalf("sweep with HibernateAfter 0: got %v, %v, want nothing", got, err)
	}
}

// poolOf returns a second pool on e's database that does not run: enough
// for a lifecycle built with another configuration.
func poolOf(t *testing.T, e *snapEnv) *pool.Pool {
	t.Helper()
	p := pool.New(e.db, e.backend, pool.Config{Clock: e.clock})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Run(ctx) // recovers, then returns at once: Recovered is closed
	return p
}

func TestTerminateHibernatedDeletesSnapshot(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, t.TempDir(), b, clock)
	p := e.principal(t)
	c := e.create(t, p)
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour)
	if got, err := e.svc.SweepHibernation(ctx); err != nil || len(got) != 1 {
		t.Fatalf("sweep: got %v, %v, want one cluster hibernated", got, err)
	}
	if _, err := e.svc.Terminate(ctx, p, c.ID, "api"); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, c.MemberID, "deleted", func(m cluster.Member) bool { return m.State == cluster.MemberDeleted })
	if _, snapshots := b.state(); len(snapshots) != 0 {
		t.Fatalf("snapshots after terminate: %v, want none", snapshots)
	}
	if !slices.Contains(b.Calls(), "delete-snapshot "+c.MemberID) {
		t.Fatalf("calls %v: the snapshot was never deleted", b.Calls())
	}
}

func TestHibernationInterruptedByRestartIsResumed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, dir, b, clock)
	p := e.principal(t)
	c := e.create(t, p)
	b.write(c.MemberID, "pvc/file=kept")
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}
	// What a provisioner killed mid-hibernation leaves: the member
	// recorded hibernating, the snapshot taken, the server not deleted.
	if err := e.db.SetMemberState(ctx, c.MemberID, cluster.MemberHibernating, nil, ""); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.snapshots[c.MemberID+"/0"] = "pvc/file=kept"
	b.mu.Unlock()
	if _, err := e.svc.Start(ctx, p, c.ID); cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("start while hibernating: got %v, want a conflict", err)
	}
	e.stop()

	e = newSnapEnv(t, dir, b, clock)
	m := e.waitFor(t, c.MemberID, "hibernated", func(m cluster.Member) bool { return m.State == cluster.MemberHibernated })
	if !m.Snapshot || m.SnapshotGB != 1.5 {
		t.Fatalf("resumed hibernation: %+v, want a snapshot of 1.5 GB", m)
	}
	servers, snapshots := b.state()
	if _, ok := servers[c.MemberID]; ok || len(snapshots) != 1 {
		t.Fatalf("after the resumed hibernation: servers %v, snapshots %v; want no server, the one snapshot", servers, snapshots)
	}
	// The resumed hibernation's goroutine holds the member until it has
	// returned, a moment after the state is recorded; a start in that
	// moment is asked to try again, as a user would be.
	deadline := time.Now().Add(time.Minute)
	res, err := e.svc.Start(ctx, p, c.ID)
	for cluster.ErrorCode(err) == cluster.ECONFLICT && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polls for the pool's goroutine, not a timing
		res, err = e.svc.Start(ctx, p, c.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Cluster.Status != cluster.Running {
		t.Fatalf("start after restart: %s, want running", res.Cluster.Status)
	}
	if servers, _ := b.state(); servers[c.MemberID] != "pvc/file=kept" {
		t.Fatalf("disk after restore across a restart: %q, want the tenant's file", servers[c.MemberID])
	}
}

func TestRestoreFailureKeepsHibernated(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, t.TempDir(), b, clock)
	p := e.principal(t)
	c := e.create(t, p)
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := e.svc.SweepHibernation(ctx); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	lost := b.snapshots
	b.snapshots = map[string]string{}
	b.mu.Unlock()
	_, err := e.svc.Start(ctx, p, c.ID)
	var ce *cluster.Error
	if !errors.As(err, &ce) || ce.Code != cluster.EUNAVAILABLE {
		t.Fatalf("start without its snapshot: got %v, want unavailable", err)
	}
	shown, err := e.svc.Get(ctx, p, c.ID)
	if err != nil || shown.Status != cluster.Stopped || !shown.Hibernated {
		t.Fatalf("after a failed restore: %+v, %v; want stopped and hibernated", shown, err)
	}
	b.mu.Lock()
	b.snapshots = lost
	b.mu.Unlock()
	if _, err := e.svc.Start(ctx, p, c.ID); err != nil {
		t.Fatalf("second start: %v", err)
	}
}

// A restore that finds the account's last place taken when it is done
// (a create won the race meanwhile) is refused: the restored server is
// destroyed, the member stays hibernated with its snapshot, and a later
// start restores it.
func TestRestoreRefusedByTheLimitDestroysTheRestoredServer(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b := newSnapBackend(clock)
	e := newSnapEnv(t, t.TempDir(), b, clock)
	one := 1
	p := e.principalWith(t, sqlite.AccountLimits{MaxClusters: &one})
	c := e.create(t, p)
	if _, err := e.svc.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if got, err := e.svc.SweepHibernation(ctx); err != nil || len(got) != 1 {
		t.Fatalf("sweep: %v, %v", got, err)
	}
	var rival cluster.Cluster
	b.mu.Lock()
	b.duringRestore = func() { rival = e.create(t, p) }
	b.mu.Unlock()
	_, err := e.svc.Start(ctx, p, c.ID)
	if cluster.ErrorCode(err) != cluster.ELIMIT {
		t.Fatalf("start that lost the account's last place: got %v, want the limit", err)
	}
	servers, snapshots := b.state()
	if _, ok := servers[c.MemberID]; ok || len(snapshots) != 1 {
		t.Fatalf("after the refused restore: servers %v, snapshots %v; want the restored server destroyed, the snapshot kept", servers, snapshots)
	}
	if m, err := e.db.Member(ctx, c.MemberID); err != nil || m.State != cluster.MemberHibernated || !m.Snapshot {
		t.Fatalf("member after the refused restore: %+v, %v; want hibernated with its snapshot", m, err)
	}
	b.mu.Lock()
	b.duringRestore = nil
	b.mu.Unlock()
	if _, err := e.svc.Terminate(ctx, p, rival.ID, "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, p, c.ID); err != nil {
		t.Fatalf("start once the place is free: %v", err)
	}
}
