package pool

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/pool/policy"
)

// Store is the part of SMEK's database the pool uses: its members, and the
// clusters they serve.
type Store interface {
	ClusterStore
	SnapshotStore
	CreateMember(ctx context.Context, backend string, f cluster.Flavor) (cluster.Member, error)
	SetMemberState(ctx context.Context, id string, state cluster.MemberState, data []byte, failure string) error
	Members(ctx context.Context, backend string) ([]cluster.Member, error)
	// RecordEvent adds to an event log: a member's, a cluster's, or the
	// pool's ("pool/FLAVOR": every target change with its reason).
	RecordEvent(ctx context.Context, subject, typ, cause, actor, message string) error
	// RecordPoolTargets keeps the current targets, which `provisioner
	// pool status` reads back.
	RecordPoolTargets(ctx context.Context, backend string, targets map[cluster.Flavor]int) error
}

// Config tunes the pool.
type Config struct {
	// Targets is how many ready members to keep per flavor when Policy
	// is nil.
	Targets map[cluster.Flavor]int
	// Policy decides the ready targets (nil: policy.Fixed(Targets)). The
	// pool tells it about creates (ObserveCreate) and how long members
	// took to become ready.
	Policy policy.Policy
	// PaidUntil returns the end of the paid hour a member's server is in
	// (nil: nothing is billed by the hour); with a ScaleDown policy a
	// surplus member is retired only within RetireWithin of that end
	// (default 5 min). See PlanInput.
	PaidUntil    func(m cluster.Member, now time.Time) (end time.Time, ok bool)
	RetireWithin time.Duration
	// MaxPerFlavor bounds the live members of one flavor, claimed ones
	// included (0: no bound).
	MaxPerFlavor int
	// Parallel bounds how many members are provisioned, resumed or
	// released at once (default 2).
	Parallel int
	// Interval is how often the pool reconciles without being nudged
	// (default 10 s).
	Interval time.Duration
	// ReconcileEvery is how often a Reconciler backend's inventory is
	// compared with the database, besides at start (default 10 min: six
	// list requests an hour on Hetzner).
	ReconcileEvery time.Duration
	// HealthEvery is how often a HealthChecker backend is asked about
	// every claimed member (default 30 s); HealthTimeout bounds one
	// check (default 10 s) and HealthParallel how many run at once
	// (default 4).
	HealthEvery, HealthTimeout time.Duration
	HealthParallel             int
	// LostAfter is how many checks in a row a claimed member must fail
	// to be reported lost (default 4: two minutes with the default
	// interval, longer than a reboot for Hetzner's host maintenance takes
	// with k3s starting at boot).
	LostAfter int
	Logger    *slog.Logger
	// Clock drives the pool's timers and measures provisions (default: the
	// real clock).
	Clock clockwork.Clock
}

// Pool keeps ready members per flavor and tells waiting creates when one
// becomes ready.
type Pool struct {
	cfg     Config
	store   Store
	backend Backend
	clock   clockwork.Clock
	log     *slog.Logger
	sem     chan struct{}
	wake    chan struct{}

	mu sync.Mutex
	// waiting counts the creates waiting per flavor: the pool provisions
	// beyond its target for them.
	waiting map[cluster.Flavor]int
	// busy holds the ids of members a goroutine is working on, so that a
	// reconcile does not start the same work twice.
	busy map[string]bool
	// provisioning counts in-flight provisions per flavor.
	provisioning map[cluster.Flavor]int
	// recovered is closed once what a previous run left has been dealt
	// with: members that serve clusters run again.
	recovered chan struct{}
	// failedChecks counts the health checks in a row each claimed member
	// failed.
	failedChecks map[string]int
	// onLost is told about members lost while claimed.
	onLost   func(ctx context.Context, m cluster.Member, reason string)
	checking sync.Mutex // held by the one health round at a time
	// restoring maps the id of a member being restored from its
	// snapshot to the restore's last step (hibernate.go).
	restoring sync.Map
	wg        sync.WaitGroup

	// readyMu guards readyCh alone: every create takes it (Ready), and
	// it must never wait for p.mu, which the pool's own work holds
	// across database reads.
	readyMu sync.Mutex
	// readyCh is closed (and replaced) whenever a member becomes ready.
	readyCh chan struct{}

	policy   policy.Policy
	prewarms policy.Prewarms
	// targets are the ready targets of the last Reconcile (the policy's
	// plus pre-warms), nil before the first; p.mu guards them.
	targets map[cluster.Flavor]policy.Target
	// prewarmHits and prewarmMisses count pre-warms whose create came,
	// and those that expired; p.mu guards them.
	prewarmHits, prewarmMisses int
}

// New returns a pool; Run makes it work.
func New(store Store, backend Backend, cfg Config) *Pool {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = 10 * time.Minute
	}
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = 30 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 10 * time.Second
	}
	if cfg.HealthParallel <= 0 {
		cfg.HealthParallel = 4
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Fixed(cfg.Targets)
	}
	return &Pool{
		cfg: cfg, store: store, backend: backend, clock: cfg.Clock, policy: cfg.Policy,
		log:          cfg.Logger.With(logkey.Component, "pool", logkey.Backend, backend.Name()),
		sem:          make(chan struct{}, cfg.Parallel),
		wake:         make(chan struct{}, 1),
		waiting:      map[cluster.Flavor]int{},
		busy:         map[string]bool{},
		provisioning: map[cluster.Flavor]int{},
		readyCh:      make(chan struct{}),
		recovered:    make(chan struct{}),
		failedChecks: map[string]int{},
	}
}

// OnLost sets the function told about a claimed member whose cluster
// failed LostAfter health checks in a row (the lifecycle marks the
// cluster failed and tells its owner). Set it before Run.
func (p *Pool) OnLost(fn func(ctx context.Context, m cluster.Member, reason string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onLost = fn
}

// Recovered is closed once the pool has dealt with what a previous run of
// the provisioner left behind; until then a member that serves a cluster may
// not run yet.
func (p *Pool) Recovered() <-chan struct{} { return p.recovered }

// Backend returns the backend that runs the members.
func (p *Pool) Backend() Backend { return p.backend }

// Targets returns the current ready target per flavor: the policy's plus
// the pre-warms under way, as of the last Reconcile (before the first,
// the policy's at once).
func (p *Pool) Targets() map[cluster.Flavor]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.currentTargets()
}

// currentTargets are the targets of the last Reconcile, or the policy's
// at once before the first. p.mu must be held.
func (p *Pool) currentTargets() map[cluster.Flavor]int {
	if p.targets == nil {
		return targetCounts(p.policy.Targets(p.clock.Now()))
	}
	return targetCounts(p.targets)
}

// Policy returns the policy that decides the pool's targets.
func (p *Pool) Policy() policy.Policy { return p.policy }

func targetCounts(t map[cluster.Flavor]policy.Target) map[cluster.Flavor]int {
	out := make(map[cluster.Flavor]int, len(t))
	for f, x := range t {
		out[f] = x.Ready
	}
	return out
}

// ObserveCreate tells the pool's policy that a create of flavor f was
// served; warm is whether a ready member was there for it. A cold one
// makes the pool reconcile now: the policy may want more.
func (p *Pool) ObserveCreate(f cluster.Flavor, warm bool) {
	p.policy.ObserveArrival(f, p.clock.Now(), warm)
	if !warm {
		p.Nudge()
	}
}

// Prewarm raises flavor f's target by one until the create expected under
// key arrives (PrewarmUsed) or until passes (a miss). A key already under
// way is not added again (false).
func (p *Pool) Prewarm(key string, f cluster.Flavor, until time.Time) bool {
	if !p.prewarms.Add(key, f, until) {
		return false
	}
	p.log.Info("pre-warm", logkey.Flavor, f.String(), "key", key, "until", until)
	p.Nudge()
	return true
}

// PrewarmUsed ends key's pre-warm because the create it expected came (a
// hit); it reports whether one was under way.
func (p *Pool) PrewarmUsed(key string) bool {
	f, ok := p.prewarms.Use(key)
	if !ok {
		return false
	}
	p.mu.Lock()
	p.prewarmHits++
	p.mu.Unlock()
	p.log.Info("pre-warm hit", logkey.Flavor, f.String(), "key", key)
	return true
}

// PrewarmEnd ends key's pre-warm before its expiry because its create
// will not come (the job finished without one): a miss. It reports
// whether one was under way.
func (p *Pool) PrewarmEnd(key string) bool {
	f, ok := p.prewarms.Use(key)
	if !ok {
		return false
	}
	p.mu.Lock()
	p.prewarmMisses++
	p.mu.Unlock()
	p.log.Info("pre-warm ended unused", logkey.Flavor, f.String(), "key", key)
	p.Nudge()
	return true
}

// PrewarmCounts returns how many pre-warms were used by the create they
// expected (hits) and how many expired or were ended unused (misses)
// since the start.
func (p *Pool) PrewarmCounts() (hits, misses int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prewarmHits, p.prewarmMisses
}

// updateTargets asks the policy and the pre-warms for the targets at now,
// records every change (an event with its reason, and the targets row
// `pool status` shows) and returns them. p.mu must be held.
func (p *Pool) updateTargets(ctx context.Context, now time.Time) map[cluster.Flavor]int {
	next := p.policy.Targets(now)
	extra, expired := p.prewarms.Extra(now)
	for f, n := range extra {
		t := next[f]
		t.Ready += n
		if t.Reason == "" {
			t.Reason = "no policy target"
		}
		t.Reason += fmt.Sprintf(", +%d pre-warm", n)
		next[f] = t
	}
	for _, key := range expired {
		p.prewarmMisses++
		p.log.Info("pre-warm expired unused", "key", key)
		if err := p.store.RecordEvent(ctx, "pool", "prewarm-miss", "pool", "", "pre-warm "+key+" expired: its create never came"); err != nil {
			p.log.Warn("record pre-warm miss", logkey.Err, err)
		}
	}
	changed := p.targets == nil
	flavors := map[cluster.Flavor]bool{}
	for f := range next {
		flavors[f] = true
	}
	for f := range p.targets {
		flavors[f] = true
	}
	for _, f := range sortedFlavors(flavors) {
		old, was := p.targets[f]
		t, is := next[f]
		if was == is && old.Ready == t.Ready {
			continue
		}
		changed = true
		if !is {
			t.Reason = "no longer targeted"
		}
		msg := fmt.Sprintf("%d → %d: %s", old.Ready, t.Ready, t.Reason)
		p.log.Info("pool target", logkey.Flavor, f.String(), "from", old.Ready, "to", t.Ready, "reason", t.Reason)
		if err := p.store.RecordEvent(ctx, "pool/"+f.String(), "target", "pool", "", msg); err != nil {
			p.log.Warn("record target change", logkey.Flavor, f.String(), logkey.Err, err)
		}
	}
	counts := targetCounts(next)
	if changed {
		if err := p.store.RecordPoolTargets(ctx, p.backend.Name(), counts); err != nil {
			p.log.Warn("record pool targets", logkey.Err, err)
		}
	}
	p.targets = next
	return counts
}

// planInput is what Plan and ReleaseAction decide from. p.mu must be held.
func (p *Pool) planInput(now time.Time, members []cluster.Member, targets map[cluster.Flavor]int) PlanInput {
	return PlanInput{
		Now: now, Members: members, Provisioning: p.provisioning, Waiting: p.waiting,
		Targets: targets, MaxPerFlavor: p.cfg.MaxPerFlavor, ScaleDown: p.policy.ScaleDown(),
		PaidUntil: p.cfg.PaidUntil, RetireWithin: p.cfg.RetireWithin,
	}
}

// Ready returns a channel that is closed when the next member becomes ready.
func (p *Pool) Ready() <-chan struct{} {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	return p.readyCh
}

// Want registers a create waiting for a member of flavor f, so that the pool
// provisions one for it even beyond the target. Call the returned function
// when the wait is over.
func (p *Pool) Want(f cluster.Flavor) (done func()) {
	p.mu.Lock()
	p.waiting[f]++
	p.mu.Unlock()
	p.Nudge()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.waiting[f]--; p.waiting[f] <= 0 {
				delete(p.waiting, f)
			}
			p.mu.Unlock()
		})
	}
}

// Nudge makes the pool reconcile now, e.g. after a member was released.
func (p *Pool) Nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run recovers members left by a previous run, then keeps the pool at its
// targets until ctx ends, and waits for its goroutines. Every
// ReconcileEvery it also reconciles the backend's inventory
// (ReconcileBackend).
func (p *Pool) Run(ctx context.Context) error {
	defer p.wg.Wait()
	err := p.recover(ctx)
	close(p.recovered)
	if err != nil {
		return err
	}
	tick := p.clock.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	inventory := p.clock.NewTicker(p.cfg.ReconcileEvery)
	defer inventory.Stop()
	health := p.clock.NewTicker(p.cfg.HealthEvery)
	defer health.Stop()
	for {
		if err := p.Reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("reconcile", logkey.Err, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-tick.Chan():
		case <-inventory.Chan():
			if _, err := p.ReconcileBackend(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("backend reconcile", logkey.Err, err)
			}
		case <-health.Chan():
			// A slow round must not hold up the pool's other work; the
			// next tick skips while it runs.
			if p.checking.TryLock() {
				p.wg.Go(func() {
					defer p.checking.Unlock()
					if _, err := p.checkHealth(ctx); err != nil && ctx.Err() == nil {
						p.log.Warn("health check", logkey.Err, err)
					}
				})
			}
		}
	}
}

// ReconcileBackend compares a Reconciler backend's inventory with the
// database: the backend removes what belongs to no member, and the ghosts
// it reports (members whose resources are gone) are marked failed, so that
// the next Reconcile destroys and replaces them. It returns the ghosts it
// marked. Backends that are no Reconciler have nothing to compare.
func (p *Pool) ReconcileBackend(ctx context.Context) (ghosts []string, err error) {
	r, ok := p.backend.(Reconciler)
	if !ok {
		return nil, nil
	}
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return nil, err
	}
	found, err := r.Reconcile(ctx, members)
	if len(found) > 0 {
		ghosts = p.markGhosts(ctx, found)
	}
	return ghosts, err
}

// markGhosts marks failed the members among ids that are still live and
// that no goroutine works on; the states are read again, under the lock
// that guards busy, so a member released or destroyed meanwhile is left
// alone.
func (p *Pool) markGhosts(ctx context.Context, ids []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		p.log.Warn("read members to mark ghosts", logkey.Err, err)
		return nil
	}
	byID := map[string]cluster.Member{}
	for _, m := range members {
		byID[m.ID] = m
	}
	var marked []string
	for _, id := range ids {
		m, ok := byID[id]
		if !ok || p.busy[id] {
			continue
		}
		switch m.State {
		case cluster.MemberReady, cluster.MemberClaimed, cluster.MemberStopped, cluster.MemberDirty:
		default:
			continue
		}
		p.log.Warn("ghost member: its resources are gone at the backend; replacing it", logkey.Member, m.ID, logkey.State, m.State, logkey.Cluster, m.ClusterID)
		if err := p.store.SetMemberState(ctx, m.ID, cluster.MemberFailed, nil, "ghost: gone at the backend while "+string(m.State)); err != nil {
			p.log.Warn("mark ghost failed", logkey.Member, m.ID, logkey.Err, err)
			continue
		}
		marked = append(marked, m.ID)
	}
	return marked
}

// recover deals with what a previous run left: interrupted provisions are
// destroyed (never trusted), interrupted rebuilds are left rebuilding for
// Reconcile to release again, the backend reconciles its inventory (ghosts
// are marked failed), and the other members that should run are resumed.
func (p *Pool) recover(ctx context.Context) error {
	ghosts, err := p.ReconcileBackend(ctx)
	if err != nil && ctx.Err() == nil {
		p.log.Warn("backend reconcile", logkey.Err, err)
	}
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return err
	}
	resumer, canResume := p.backend.(Resumer)
	var wg sync.WaitGroup
	for _, m := range members {
		if slices.Contains(ghosts, m.ID) {
			continue
		}
		switch m.State {
		case cluster.MemberCreating, cluster.MemberBootstrapping:
			p.log.Info("destroying member interrupted while starting", logkey.Member, m.ID, logkey.State, m.State)
			if err := p.destroy(ctx, m, "interrupted by a restart of the provisioner"); err != nil {
				return err
			}
		case cluster.MemberHibernating:
			p.mu.Lock()
			p.goWork(ctx, m, p.resumeHibernation)
			p.mu.Unlock()
		case cluster.MemberReady, cluster.MemberClaimed:
			if !canResume {
				continue
			}
			wg.Go(func() {
				p.sem <- struct{}{}
				defer func() { <-p.sem }()
				data, err := resumer.Resume(ctx, m)
				if err != nil {
					p.log.Warn("resume member", logkey.Member, m.ID, logkey.Err, err)
					if m.State == cluster.MemberReady {
						if err := p.destroy(ctx, m, "resume: "+err.Error()); err != nil {
							p.log.Warn("destroy member that did not resume", logkey.Member, m.ID, logkey.Err, err)
						}
					}
					return
				}
				if err := p.store.SetMemberState(ctx, m.ID, m.State, data, ""); err != nil {
					p.log.Warn("record resumed member", logkey.Member, m.ID, logkey.Err, err)
				}
			})
		}
	}
	wg.Wait()
	p.signalReady()
	return ctx.Err()
}

// Reconcile starts the work that brings every flavor to its target and
// cleans released and failed members. It does not wait for that work.
func (p *Pool) Reconcile(ctx context.Context) error {
	// The members are read under the lock that guards busy: a goroutine
	// records its member's new state before it leaves busy, so a state
	// read here is never older than the work it would start again.
	p.mu.Lock()
	defer p.mu.Unlock()
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return err
	}
	for _, m := range members {
		switch m.State {
		case cluster.MemberDirty, cluster.MemberRebuilding:
			// Rebuilding without a goroutine on it: a rebuild interrupted
			// by a restart, done again.
			p.goWork(ctx, m, p.release)
		case cluster.MemberFailed:
			p.goWork(ctx, m, func(ctx context.Context, m cluster.Member) {
				if err := p.destroy(ctx, m, m.Failure); err != nil {
					p.log.Warn("destroy failed member", logkey.Member, m.ID, logkey.Err, err)
				}
			})
		}
	}
	now := p.clock.Now()
	plan := Plan(p.planInput(now, members, p.updateTargets(ctx, now)))
	for _, r := range plan.Retire {
		p.goWork(ctx, r.Member, func(ctx context.Context, m cluster.Member) { p.retire(ctx, m, r.Reason) })
	}
	for f, n := range plan.Provision {
		for range n {
			p.provisioning[f]++
			p.wg.Go(func() { p.provision(ctx, f) })
		}
	}
	return nil
}

// goWork runs fn on m in a goroutine unless one already works on m. p.mu
// must be held.
func (p *Pool) goWork(ctx context.Context, m cluster.Member, fn func(context.Context, cluster.Member)) {
	if p.busy[m.ID] {
		return
	}
	p.busy[m.ID] = true
	p.wg.Go(func() {
		defer func() {
			p.mu.Lock()
			delete(p.busy, m.ID)
			p.mu.Unlock()
		}()
		p.sem <- struct{}{}
		defer func() { <-p.sem }()
		fn(ctx, m)
	})
}

func (p *Pool) provision(ctx context.Context, f cluster.Flavor) {
	underWay := true
	defer func() {
		if underWay {
			p.mu.Lock()
			p.provisioning[f]--
			p.mu.Unlock()
		}
	}()
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	if ctx.Err() != nil {
		return
	}
	m, err := p.store.CreateMember(ctx, p.backend.Name(), f)
	if err != nil {
		p.log.Warn("record new member", logkey.Flavor, f.String(), logkey.Err, err)
		return
	}
	start := p.clock.Now()
	data, err := p.backend.Provision(ctx, m)
	if err != nil {
		p.log.Warn("provision member", logkey.Member, m.ID, logkey.Flavor, f.String(), logkey.Err, err)
		p.destroyLogged(context.WithoutCancel(ctx), m, "provision: "+err.Error())
		return
	}
	// Recorded ready and no longer under way in one step under p.mu: a
	// Reconcile in between would count the member twice (ready, and a
	// provision under way), find a surplus and might retire a member.
	p.mu.Lock()
	err = p.store.SetMemberState(ctx, m.ID, cluster.MemberReady, data, "")
	if err == nil {
		p.provisioning[f]--
		underWay = false
	}
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("mark member ready", logkey.Member, m.ID, logkey.Err, err)
		p.destroyLogged(context.WithoutCancel(ctx), m, "record ready: "+err.Error())
		return
	}
	took := p.clock.Since(start)
	p.policy.ObserveReady(f, took, false)
	p.log.Info("member ready", logkey.Member, m.ID, logkey.Flavor, f.String(), logkey.Took, took.Round(time.Millisecond))
	p.signalReady()
}

// release rebuilds a member that served a cluster (or lets the backend
// delete it). The member is marked rebuilding first, so the record shows
// that no member goes from dirty to ready without a rebuild.
func (p *Pool) release(ctx context.Context, m cluster.Member) {
	if m.Snapshot {
		p.releaseSnapshot(ctx, m) // released while hibernated: no server
		return
	}
	start := p.clock.Now()
	if m.State != cluster.MemberRebuilding && !p.rebuild(ctx, m) {
		// The flavor has enough members without this one, and keeping it
		// saves nothing: a rebuild would only grow the pool past its
		// target.
		p.destroyLogged(ctx, m, "released above the pool's target")
		p.Nudge()
		return
	}
	if m.State != cluster.MemberRebuilding {
		if err := p.store.SetMemberState(ctx, m.ID, cluster.MemberRebuilding, nil, ""); err != nil {
			p.log.Warn("mark member rebuilding", logkey.Member, m.ID, logkey.Err, err)
			return
		}
		// Read back: the move reserved the next cluster's id, which
		// the rebuild labels the node with.
		got, err := p.store.Member(ctx, m.ID)
		if err != nil {
			p.log.Warn("read member marked rebuilding", logkey.Member, m.ID, logkey.Err, err)
			return
		}
		m = got
	}
	reusable, data, err := p.backend.Release(ctx, m)
	switch {
	case err != nil:
		p.log.Warn("release member", logkey.Member, m.ID, logkey.Err, err)
		p.setState(ctx, m, cluster.MemberFailed, nil, "release: "+err.Error())
	case reusable:
		if p.setState(ctx, m, cluster.MemberReady, data, "") {
			p.policy.ObserveReady(m.Flavor, p.clock.Since(start), true)
			p.signalReady()
		}
	default:
		p.setState(ctx, m, cluster.MemberDeleted, nil, "")
	}
	p.Nudge()
}

// rebuild decides what becomes of released member m (ReleaseAction) from
// the members, the provisions and waits under way, and the last targets.
func (p *Pool) rebuild(ctx context.Context, m cluster.Member) bool {
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return true // when in doubt, keep the member
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return ReleaseAction(p.planInput(p.clock.Now(), members, p.currentTargets()), m)
}

// retire destroys a surplus ready member (Plan.Retire). It is recorded
// deleted first, a step the store refuses once a claim took it: a member
// is never destroyed under a cluster. Should the backend then fail to
// destroy it, its resources belong to no live member, and the backend's
// inventory reconcile (Reconciler) removes them.
func (p *Pool) retire(ctx context.Context, m cluster.Member, reason string) {
	if err := p.store.SetMemberState(ctx, m.ID, cluster.MemberDeleted, nil, "retired: "+reason); err != nil {
		p.log.Info("surplus member not retired", logkey.Member, m.ID, logkey.Err, err)
		return
	}
	p.log.Info("retire surplus member", logkey.Member, m.ID, logkey.Flavor, m.Flavor.String(), "reason", reason)
	if err := p.backend.Destroy(ctx, m); err != nil {
		p.log.Warn("destroy retired member; the backend reconcile removes it", logkey.Member, m.ID, logkey.Err, err)
	}
}

// destroy removes a member at the backend and records it deleted; when the
// backend cannot, the member is recorded failed, to be destroyed again.
func (p *Pool) destroy(ctx context.Context, m cluster.Member, reason string) error {
	if h, ok := p.backend.(Hibernator); ok && m.Snapshot {
		if err := h.DeleteSnapshot(ctx, m); err != nil {
			p.setState(ctx, m, cluster.MemberFailed, nil, reason+"; delete snapshot: "+err.Error())
			return fmt.Errorf("destroy %s: delete snapshot: %w", m.ID, err)
		}
	}
	if err := p.backend.Destroy(ctx, m); err != nil {
		p.setState(ctx, m, cluster.MemberFailed, nil, reason+"; destroy: "+err.Error())
		return fmt.Errorf("destroy %s: %w", m.ID, err)
	}
	return p.store.SetMemberState(ctx, m.ID, cluster.MemberDeleted, nil, reason)
}

// destroyLogged is destroy for callers that go on whatever happens: the
// error is logged.
func (p *Pool) destroyLogged(ctx context.Context, m cluster.Member, reason string) {
	if err := p.destroy(ctx, m, reason); err != nil {
		p.log.Warn("destroy member", logkey.Member, m.ID, logkey.Err, err)
	}
}

// setState records a member's new state and reports whether it could; an
// error (a refused transition, a database that fails) is logged, and the
// next Reconcile works from what the database holds.
func (p *Pool) setState(ctx context.Context, m cluster.Member, state cluster.MemberState, data []byte, failure string) bool {
	if err := p.store.SetMemberState(ctx, m.ID, state, data, failure); err != nil {
		p.log.Warn("record member state", logkey.Member, m.ID, "from", m.State, "to", state, logkey.Err, err)
		return false
	}
	return true
}

func (p *Pool) signalReady() {
	p.readyMu.Lock()
	close(p.readyCh)
	p.readyCh = make(chan struct{})
	p.readyMu.Unlock()
}
