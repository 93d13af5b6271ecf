package lifecycle_test

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

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

var testFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

// fakeBackend is a pool.Backend whose members exist only in memory. Every
// start and stop is recorded; with a barrier set, starts wait until that
// many have arrived, so that they overlap for certain.
type fakeBackend struct {
	mu      sync.Mutex
	calls   []string // "start s-1", "stop s-1"
	barrier int
	arrived int
	release chan struct{}
	// failStop, when set, is what Stop answers.
	failStop error
}

func (b *fakeBackend) record(op, id string) {
	b.mu.Lock()
	b.calls = append(b.calls, op+" "+id)
	b.mu.Unlock()
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// holdStarts makes the next n starts wait for each other.
func (b *fakeBackend) holdStarts(n int) {
	b.mu.Lock()
	b.barrier, b.arrived, b.release = n, 0, make(chan struct{})
	b.mu.Unlock()
}

func (b *fakeBackend) Name() string { return "fake" }
func (b *fakeBackend) Versions(context.Context) ([]string, error) {
	return []string{testFlavor.K8sVersion}, nil
}
func (b *fakeBackend) Provision(context.Context, cluster.Member) ([]byte, error) {
	return []byte(`{}`), nil
}

func (b *fakeBackend) Claim(_ context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	return cluster.Kubeconfig{YAML: []byte("kubeconfig of " + string(c.ID)), APIServer: "https://" + m.ID, ExpiresAt: c.ExpiresAt}, nil
}

func (b *fakeBackend) Credential(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	return b.Claim(ctx, m, c)
}

func (b *fakeBackend) Stop(_ context.Context, m cluster.Member) error {
	b.record("stop", m.ID)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failStop
}

func (b *fakeBackend) Start(ctx context.Context, m cluster.Member) ([]byte, error) {
	b.record("start", m.ID)
	b.mu.Lock()
	release := b.release
	if b.barrier > 0 {
		b.arrived++
		if b.arrived == b.barrier {
			close(b.release)
			b.barrier = 0
		}
	}
	b.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Minute): // a safety net, not a timing
			return nil, errors.New("fake backend: the other starts never came")
		}
	}
	return m.Data, nil
}

func (b *fakeBackend) Release(context.Context, cluster.Member) (bool, []byte, error) {
	return false, nil, nil
}

func (b *fakeBackend) Destroy(context.Context, cluster.Member) error { return nil }

// notes records the notifications the service sends.
type notes struct {
	mu  sync.Mutex
	got []cluster.Notification
}

func (n *notes) Notify(_ context.Context, x cluster.Notification) {
	n.mu.Lock()
	n.got = append(n.got, x)
	n.mu.Unlock()
}

// kinds lists the kinds of the notifications about id, in order.
func (n *notes) kinds(id cluster.ID) []cluster.NotificationKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []cluster.NotificationKind
	for _, x := range n.got {
		if x.Cluster.ID == id {
			out = append(out, x.Kind)
		}
	}
	return out
}

type env struct {
	svc     *lifecycle.Service
	db      *sqlite.DB
	backend *fakeBackend
	clock   *clockwork.FakeClock
	notes   *notes
}

// newEnv runs the lifecycle on a database file, a pool of fake members
// and a clock that moves only when told.
func newEnv(t *testing.T, cfg lifecycle.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv with backend (wrapping the env's fake backend)
// as the pool's backend when it is not nil.
func newEnvWith(t *testing.T, cfg lifecycle.Config, backend func(*fakeBackend) pool.Backend) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, backend: &fakeBackend{}, clock: clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), notes: &notes{}}
	db.Clock = e.clock
	var b pool.Backend = e.backend
	if backend != nil {
		b = backend(e.backend)
	}
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{testFlavor: 2}})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg.Clock, cfg.Notifier = e.clock, e.notes
	e.svc = lifecycle.New(db, p, []string{testFlavor.K8sVersion}, cfg)
	return e
}

// principal returns a principal of account name with the given limits,
// read back as the server would at each request.
func (e *env) principal(t *testing.T, name string, limits sqlite.AccountLimits) cluster.Principal {
	t.Helper()
	a, err := e.db.EnsureAccount(context.Background(), name, limits)
	if err != nil {
		t.Fatal(err)
	}
	return cluster.Principal{Account: a, Actor: "token:" + name}
}

func (e *env) create(t *testing.T, p cluster.Principal, keep bool) cluster.Cluster {
	t.Helper()
	mail := "owner@example.com"
	res, err := e.svc.Create(context.Background(), p, cluster.CreateInput{KeepCluster: &keep, NotificationEmail: &mail})
	if err != nil {
		t.Fatal(err)
	}
	return res.Cluster
}

func (e *env) stop(t *testing.T, p cluster.Principal, id cluster.ID) {
	t.Helper()
	if _, err := e.svc.Stop(context.Background(), p, id, false); err != nil {
		t.Fatal(err)
	}
}

func (e *env) status(t *testing.T, id cluster.ID) cluster.Status {
	t.Helper()
	c, err := e.db.Cluster(context.Background(), 0, id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

func (e *env) sweep(t *testing.T) {
	t.Helper()
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func limitsOf(maxClusters int) sqlite.AccountLimits {
	return sqlite.AccountLimits{MaxClusters: &maxClusters}
}

// Issue 12: create and stop three times with max-clusters 1, then start all
// three at once: one starts, the other two are refused with the limit, and
// their members are stopped again.
func TestConcurrentStartsHonourTheLimit(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	p := e.principal(t, "one", limitsOf(1))
	// Changes to one cluster are serialised by a striped lock: three
	// clusters on distinct stripes, so that all three starts reach the
	// backend together (a cluster on a taken stripe is terminated).
	var ids []cluster.ID
	stripes := map[int]bool{}
	for len(ids) < 3 {
		c := e.create(t, p, true)
		if stripes[lifecycle.LockStripe(c.ID)] {
			if _, err := e.svc.Stop(context.Background(), p, c.ID, true); err != nil {
				t.Fatalf("terminate %s: %v", c.ID, err)
			}
			continue
		}
		stripes[lifecycle.LockStripe(c.ID)] = true
		e.stop(t, p, c.ID)
		ids = append(ids, c.ID)
	}

	e.backend.holdStarts(3)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = e.svc.Start(context.Background(), p, id) })
	}
	wg.Wait()

	started := 0
	var refused []cluster.ID
	for i, err := range errs {
		switch cluster.ErrorCode(err) {
		case "":
			started++
			if got := e.status(t, ids[i]); got != cluster.Running {
				t.Errorf("started %s is %s", ids[i], got)
			}
		case cluster.ELIMIT:
			refused = append(refused, ids[i])
			if got := e.status(t, ids[i]); got != cluster.Stopped {
				t.Errorf("refused %s is %s, want stopped", ids[i], got)
			}
		default:
			t.Errorf("start of %s: got %v, want success or the limit", ids[i], err)
		}
	}
	if started != 1 || len(refused) != 2 {
		t.Fatalf("got %d started and %d refused, want 1 and 2", started, len(refused))
	}
	// The members of the refused starts were started at the backend and
	// must be stopped again: the database says stopped.
	calls := e.backend.Calls()
	for _, id := range refused {
		c, err := e.db.Cluster(context.Background(), 0, id)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.Index(calls, "start "+c.MemberID)
		if i < 0 || !slices.Contains(calls[i:], "stop "+c.MemberID) {
			t.Errorf("member %s of refused %s: calls %q, want a stop after its start", c.MemberID, id, calls)
		}
	}
}

// max-clusters 0 suspends an account: creates and starts are refused with
// a problem of their own (403), not the full limit's 429; stopping and
// terminating still work.
func TestSuspendedAccountMayNotCreateOrStart(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	p := e.principal(t, "paused", limitsOf(3))
	stopped := e.create(t, p, true)
	e.stop(t, p, stopped.ID)
	running := e.create(t, p, true)
	p = e.principal(t, "paused", limitsOf(0))

	check := func(what string, err error) {
		t.Helper()
		if cluster.ErrorCode(err) != "suspended" || cluster.HTTPStatus(cluster.ErrorCode(err)) != 403 {
			t.Errorf("%s: got %v (%s), want suspended, 403", what, err, cluster.ErrorCode(err))
			return
		}
		if msg := cluster.ErrorMessage(err); !strings.Contains(msg, "paused") || !strings.Contains(msg, "max-clusters") {
			t.Errorf("%s: message %q does not name the account and its max-clusters", what, msg)
		}
	}
	_, err := e.svc.Create(context.Background(), p, cluster.CreateInput{})
	check("create", err)
	_, err = e.svc.Start(context.Background(), p, stopped.ID)
	check("start", err)
	if _, err := e.svc.Stop(context.Background(), p, running.ID, false); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := e.svc.Stop(context.Background(), p, stopped.ID, true); err != nil {
		t.Errorf("force-terminate: %v", err)
	}
}

// A keep-cluster cluster that reaches its deadline while the account
// keeps as many stopped clusters as it may is terminated, not stopped past
// the limit (nor left running past its deadline), and the event says why.
func TestExpiryTerminatesWhenStoppedLimitIsReached(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	p := e.principal(t, "keeper", limitsOf(6))
	for range 5 { // 5: the default limit of stopped clusters
		c := e.create(t, p, true)
		e.stop(t, p, c.ID)
	}
	last := e.create(t, p, true)
	e.clock.Advance(61 * time.Minute)
	e.sweep(t)
	if got := e.status(t, last.ID); got != cluster.Terminated {
		t.Fatalf("at its deadline with 5 stopped clusters: %s, want terminated", got)
	}
	evs, err := e.db.Events(context.Background(), string(last.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[len(evs)-1]; ev.Cause != "ttl" || !strings.Contains(ev.Message, "stopped clusters") {
		t.Errorf("last event %+v, want ttl with the stopped limit as the reason", ev)
	}
}

// A stopped cluster does not live forever: it is terminated once it has
// been stopped for the maximum stopped lifetime (168 h by default), its
// owner warned once a day before. A start gives it a fresh lifetime.
func TestStoppedClusterLifetime(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	p := e.principal(t, "keeper", limitsOf(5))
	c := e.create(t, p, true)
	e.stop(t, p, c.ID)
	other := e.create(t, p, true)
	e.stop(t, p, other.ID)

	e.clock.Advance(100 * time.Hour)
	// other is started and stopped again: a fresh stopped lifetime.
	if _, err := e.svc.Start(context.Background(), p, other.ID); err != nil {
		t.Fatal(err)
	}
	e.stop(t, p, other.ID)

	e.clock.Advance(43 * time.Hour) // c stopped 143 h ago: not warned yet
	e.sweep(t)
	if got := e.notes.kinds(c.ID); len(got) != 2 {
		t.Errorf("143 h after the stop: notifications %q, want started and stopped only", got)
	}
	e.clock.Advance(2 * time.Hour) // 145 h: less than a day left
	for range 2 {                  // a second sweep does not warn again
		e.sweep(t)
	}
	if got := e.notes.kinds(c.ID); len(got) != 3 || got[2] != "stopped-expiring" {
		t.Errorf("145 h after the stop: notifications %q, want one stopped-expiring warning", got)
	}
	e.clock.Advance(24 * time.Hour) // 169 h: past the stopped lifetime
	e.sweep(t)
	if got := e.status(t, c.ID); got != cluster.Terminated {
		t.Fatalf("169 h after the stop: %s, want terminated", got)
	}
	if got := e.notes.kinds(c.ID); len(got) != 4 || got[3] != cluster.NotifyTerminated {
		t.Errorf("notifications %q, want the warning followed by terminated", got)
	}
	evs, err := e.db.Events(context.Background(), string(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[len(evs)-1]; ev.To != string(cluster.Terminated) || ev.Cause != "ttl" || !strings.Contains(ev.Message, "stopped for") {
		t.Errorf("last event %+v, want terminated by ttl with the reason", ev)
	}
	// Started again at 100 h, other has 69 h of its fresh lifetime spent.
	if got := e.status(t, other.ID); got != cluster.Stopped {
		t.Errorf("the cluster stopped again at 100 h is %s at 169 h, want stopped", got)
	}
	if got := fmt.Sprint(e.notes.kinds(other.ID)); strings.Contains(got, "stopped-expiring") {
		t.Errorf("the cluster stopped again at 100 h was warned: %s", got)
	}
}

// A stop over max-stopped-clusters is refused with the limit before the
// backend stops anything; force-terminate still works. With the limit at
// 0 no stop is allowed at all.
func TestStopHonoursTheStoppedLimit(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	one := 1
	p := e.principal(t, "keeper", sqlite.AccountLimits{MaxStoppedClusters: &one})
	kept := e.create(t, p, true)
	e.stop(t, p, kept.ID)
	c := e.create(t, p, true)
	_, err := e.svc.Stop(context.Background(), p, c.ID, false)
	if cluster.ErrorCode(err) != cluster.ELIMIT || cluster.HTTPStatus(cluster.ErrorCode(err)) != 429 ||
		!strings.Contains(cluster.ErrorMessage(err), "max-stopped-clusters") {
		t.Fatalf("second stop with max-stopped-clusters 1: got %v, want a 429 naming max-stopped-clusters", err)
	}
	if got := e.status(t, c.ID); got != cluster.Running {
		t.Errorf("refused stop: %s, want running", got)
	}
	if slices.Contains(e.backend.Calls(), "stop "+c.MemberID) {
		t.Errorf("refused stop stopped the member at the backend: %q", e.backend.Calls())
	}
	if got, err := e.svc.Stop(context.Background(), p, c.ID, true); err != nil || got.Status != cluster.Terminated {
		t.Errorf("force-terminate: %s, %v", got.Status, err)
	}

	zero := 0
	p = e.principal(t, "keeper", sqlite.AccountLimits{MaxStoppedClusters: &zero})
	if _, err := e.svc.Terminate(context.Background(), p, kept.ID, "api"); err != nil {
		t.Fatal(err)
	}
	c = e.create(t, p, true)
	_, err = e.svc.Stop(context.Background(), p, c.ID, false)
	if cluster.ErrorCode(err) != cluster.ELIMIT || !strings.Contains(cluster.ErrorMessage(err), "may not keep stopped clusters") {
		t.Errorf("stop with max-stopped-clusters 0: got %v, want the limit", err)
	}
}

// A stop the backend cannot carry out is taken back: the cluster runs on,
// its place among the stopped clusters is free again.
func TestFailedStopIsTakenBack(t *testing.T) {
	e := newEnv(t, lifecycle.Config{})
	p := e.principal(t, "keeper", limitsOf(5))
	c := e.create(t, p, true)
	e.backend.mu.Lock()
	e.backend.failStop = errors.New("power button stuck")
	e.backend.mu.Unlock()
	_, err := e.svc.Stop(context.Background(), p, c.ID, false)
	if cluster.ErrorCode(err) != cluster.EUNAVAILABLE {
		t.Fatalf("stop that fails at the backend: got %v, want unavailable", err)
	}
	got, err := e.db.Cluster(context.Background(), 0, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e.db.Member(context.Background(), got.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != cluster.Running || srv.State != cluster.MemberClaimed || !got.StoppedExpiresAt.IsZero() {
		t.Errorf("after a failed stop: cluster %s (stopped-expires-at %v), member %s; want running and claimed", got.Status, got.StoppedExpiresAt, srv.State)
	}
	if kinds := e.notes.kinds(c.ID); slices.Contains(kinds, cluster.NotifyStopped) {
		t.Errorf("a failed stop was announced: %q", kinds)
	}
}

// A stop records the stopped deadline, MaxStoppedLifetime after it.
func TestStopRecordsTheStoppedDeadline(t *testing.T) {
	e := newEnv(t, lifecycle.Config{MaxStoppedLifetime: 48 * time.Hour})
	p := e.principal(t, "keeper", limitsOf(5))
	c := e.create(t, p, true)
	got, err := e.svc.Stop(context.Background(), p, c.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(48 * time.Hour); !got.StoppedExpiresAt.Equal(want) {
		t.Errorf("stopped-expires-at %v, want %v", got.StoppedExpiresAt, want)
	}
	e.clock.Advance(47 * time.Hour)
	e.sweep(t)
	if kinds := e.notes.kinds(c.ID); len(kinds) != 3 || kinds[2] != cluster.NotifyStoppedExpiring {
		t.Errorf("an hour before the end: notifications %q, want the warning", kinds)
	}
	e.clock.Advance(time.Hour)
	e.sweep(t)
	if got := e.status(t, c.ID); got != cluster.Terminated {
		t.Errorf("48 h after the stop: %s, want terminated", got)
	}
	evs, err := e.db.Events(context.Background(), string(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[len(evs)-1]; !strings.Contains(ev.Message, "(48h)") {
		t.Errorf("last event %+v, want the lifetime 48h named", ev)
	}
}
