package pool_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/pool/policy"
	"github.com/smek/action/internal/sqlite"
)

// setPolicy is a ScaleDown policy whose target the test sets.
type setPolicy struct {
	mu     sync.Mutex
	target int
}

func (p *setPolicy) set(n int) {
	p.mu.Lock()
	p.target = n
	p.mu.Unlock()
}

func (*setPolicy) Name() string { return "set" }
func (p *setPolicy) Targets(time.Time) map[cluster.Flavor]policy.Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[cluster.Flavor]policy.Target{flavor: {Ready: p.target, Reason: "set by the test"}}
}
func (*setPolicy) ObserveArrival(cluster.Flavor, time.Time, bool)   {}
func (*setPolicy) ObserveReady(cluster.Flavor, time.Duration, bool) {}
func (*setPolicy) ScaleDown() bool                                  { return true }

var policyT0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// paidFromCreation bills members by the hour from their record's creation,
// as the Hetzner backend's wiring does.
func paidFromCreation(m cluster.Member, now time.Time) (time.Time, bool) {
	return cost.PaidHourEnd(m.CreatedAt, now), true
}

// newClockedPool is a pool on a fake clock that also stamps the database
// rows. The test drives it with Reconcile; Run is not started.
func newClockedPool(t *testing.T, pol policy.Policy) (*pool.Pool, *sqlite.DB, *memBackend, *clockwork.FakeClock) {
	t.Helper()
	clock := clockwork.NewFakeClockAt(policyT0)
	db := openDB(t, t.TempDir())
	db.Clock = clock
	b := newMem()
	p := pool.New(db, b, pool.Config{Policy: pol, PaidUntil: paidFromCreation, Clock: clock, Interval: time.Hour})
	return p, db, b, clock
}

func reconcile(t *testing.T, p *pool.Pool) {
	t.Helper()
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func memberState(ms []cluster.Member, id string) cluster.MemberState {
	for _, m := range ms {
		if m.ID == id {
			return m.State
		}
	}
	return cluster.MemberDeleted // Members leaves deleted ones out
}

func targetEvents(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	evs, err := db.Events(context.Background(), "pool/"+flavor.String())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Type == "target" {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestSurplusRetiredAtTheEndOfItsPaidHour: when the target drops, a
// surplus member stays ready until shortly before its paid hour ends, and
// a member released mid-hour is rebuilt rather than deleted (it is paid
// anyway); every target change is an event and the recorded targets
// follow.
func TestSurplusRetiredAtTheEndOfItsPaidHour(t *testing.T) {
	ctx := context.Background()
	pol := &setPolicy{target: 1}
	p, db, b, clock := newClockedPool(t, pol)
	reconcile(t, p)
	ms := waitMembers(t, p, db, "a ready", readyN(1))
	a := ms[0].ID
	clock.Advance(20 * time.Minute) // 08:20
	pol.set(2)
	reconcile(t, p)
	ms = waitMembers(t, p, db, "a and b ready", readyN(2))
	var bID string
	for _, m := range ms {
		if m.ID != a {
			bID = m.ID
		}
	}
	// b serves a cluster and is released at 08:30, when nothing is wanted
	// any more: paid until 09:20, it is rebuilt, not deleted.
	for _, s := range []cluster.MemberState{cluster.MemberClaimed, cluster.MemberDirty} {
		if err := db.SetMemberState(ctx, bID, s, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(10 * time.Minute) // 08:30
	pol.set(0)
	reconcile(t, p)
	waitMembers(t, p, db, "b rebuilt", func(ms []cluster.Member) bool { return memberState(ms, bID) == cluster.MemberReady })
	if got := transitions(t, db, bID); !slices.Contains(got, "rebuilding→ready") {
		t.Fatalf("b: transitions %v, want a rebuild", got)
	}
	clock.Advance(24 * time.Minute) // 08:54: a's hour ends in 6 min, b's in 26
	reconcile(t, p)
	clock.Advance(2 * time.Minute) // 08:56: a's ends in 4 min
	reconcile(t, p)
	waitMembers(t, p, db, "a retired, b ready", func(ms []cluster.Member) bool {
		return memberState(ms, a) == cluster.MemberDeleted && memberState(ms, bID) == cluster.MemberReady
	})
	clock.Advance(20 * time.Minute) // 09:16: b's ends in 4 min
	reconcile(t, p)
	waitMembers(t, p, db, "b retired", func(ms []cluster.Member) bool { return len(ms) == 0 })
	calls := b.Calls()
	if i, j := slices.Index(calls, "destroy "+a), slices.Index(calls, "destroy "+bID); i < 0 || j < i {
		t.Errorf("backend calls %v: want a destroyed, then b", calls)
	}
	evs, err := db.Events(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.From+"→"+last.To != "ready→deleted" || !strings.Contains(last.Message, "retired: surplus") || !strings.Contains(last.Message, "paid hour ends in 4m0s") {
		t.Errorf("a's last event %+v: want ready→deleted, retired near the end of its paid hour", last)
	}
	want := []string{"0 → 1: set by the test", "1 → 2: set by the test", "2 → 0: set by the test"}
	if got := targetEvents(t, db); !slices.Equal(got, want) {
		t.Errorf("target events %q, want %q", got, want)
	}
	rec, ok, err := db.RecordedPoolTargets(ctx)
	if err != nil || !ok || rec.Targets[flavor] != 0 || len(rec.Targets) != 1 {
		t.Errorf("recorded targets %+v, %v, %v: want %s at 0", rec, ok, err, flavor)
	}
	if got := p.Targets(); got[flavor] != 0 {
		t.Errorf("Targets() = %v", got)
	}
}

// TestAutoScalesUpOnColdCreates: the pool follows the auto policy: cold
// creates raise the target at once, provisions are measured into the
// policy's lead time.
func TestAutoScalesUpOnColdCreates(t *testing.T) {
	auto, err := policy.NewAuto(policy.AutoConfig{Flavors: map[cluster.Flavor]policy.Bounds{flavor: {Min: 0, Max: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	p, db, _, _ := newClockedPool(t, auto)
	reconcile(t, p)
	if got := p.Targets()[flavor]; got != 0 {
		t.Fatalf("quiet target %d, want 0", got)
	}
	for range 3 {
		p.ObserveCreate(flavor, false)
	}
	reconcile(t, p)
	if got := p.Targets()[flavor]; got != 3 {
		t.Fatalf("after 3 cold creates: target %d, want 3", got)
	}
	waitMembers(t, p, db, "3 ready", readyN(3))
	if _, measured := auto.LeadTime(flavor); !measured {
		t.Error("the provisions were not measured into the policy")
	}
	evs := targetEvents(t, db)
	if len(evs) != 2 || !strings.HasPrefix(evs[1], "0 → 3: 3 cold creates") {
		t.Errorf("target events %q", evs)
	}
}

// TestPrewarmHitAndMiss: a pre-warm raises the target until its create
// comes (a hit) or it expires (a miss).
func TestPrewarmHitAndMiss(t *testing.T) {
	ctx := context.Background()
	p, db, _, clock := newClockedPool(t, policy.Fixed{flavor: 0})
	if !p.Prewarm("job:1", flavor, policyT0.Add(10*time.Minute)) || p.Prewarm("job:1", flavor, policyT0.Add(time.Hour)) {
		t.Fatal("Prewarm: want the first added and the same key refused")
	}
	p.Prewarm("job:2", flavor, policyT0.Add(5*time.Minute))
	reconcile(t, p)
	if got := p.Targets()[flavor]; got != 2 {
		t.Fatalf("target with two pre-warms %d, want 2", got)
	}
	waitMembers(t, p, db, "2 ready", readyN(2))
	if !p.PrewarmUsed("job:1") || p.PrewarmUsed("job:1") || p.PrewarmUsed("job:9") {
		t.Fatal("PrewarmUsed: want job:1 used once, job:9 unknown")
	}
	clock.Advance(6 * time.Minute)
	reconcile(t, p)
	if hits, misses := p.PrewarmCounts(); hits != 1 || misses != 1 {
		t.Fatalf("hits %d, misses %d, want 1 and 1", hits, misses)
	}
	// A job that finished without a create ends its pre-warm early.
	p.Prewarm("job:3", flavor, clock.Now().Add(time.Hour))
	if !p.PrewarmEnd("job:3") || p.PrewarmEnd("job:3") || p.PrewarmUsed("job:3") {
		t.Fatal("PrewarmEnd: want job:3 ended once, then unknown")
	}
	if hits, misses := p.PrewarmCounts(); hits != 1 || misses != 2 {
		t.Fatalf("after an early end: hits %d, misses %d, want 1 and 2", hits, misses)
	}
	if got := p.Targets()[flavor]; got != 0 {
		t.Fatalf("target after both ended %d, want 0", got)
	}
	evs := targetEvents(t, db)
	if len(evs) < 2 || evs[0] != "0 → 2: fixed pool size, +2 pre-warm" || evs[len(evs)-1] != "2 → 0: fixed pool size" {
		t.Errorf("target events %q", evs)
	}
	misses, err := db.Events(ctx, "pool")
	if err != nil {
		t.Fatal(err)
	}
	if len(misses) != 1 || misses[0].Type != "prewarm-miss" || !strings.Contains(misses[0].Message, "job:2") {
		t.Errorf("pool events %+v: want one miss of job:2", misses)
	}
}
