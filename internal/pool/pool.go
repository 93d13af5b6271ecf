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
)

// Store is the part of SMEK's database the pool uses: its members, and the
// clusters they serve.
type Store interface {
	ClusterStore
	SnapshotStore
	CreateMember(ctx context.Context, backend string, f cluster.Flavor) (cluster.Member, error)
	SetMemberState(ctx context.Context, id string, state cluster.MemberState, data []byte, failure string) error
	Members(ctx context.Context, backend string) ([]cluster.Member, error)
}

// Config tunes the pool.
type Config struct {
	// Targets is how many ready members to keep per flavor.
	Targets map[cluster.Flavor]int
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
	return &Pool{
		cfg: cfg, store: store, backend: backend, clock: cfg.Clock,
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

// Targets returns the configured target per flavor.
func (p *Pool) Targets() map[cluster.Flavor]int { return p.cfg.Targets }

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
	plan := Plan(PlanInput{
		Now: p.clock.Now(), Members: members, Provisioning: p.provisioning, Waiting: p.waiting,
		Targets: p.cfg.Targets, MaxPerFlavor: p.cfg.MaxPerFlavor,
	})
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
	defer func() {
		p.mu.Lock()
		p.provisioning[f]--
		p.mu.Unlock()
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
	if err := p.store.SetMemberState(ctx, m.ID, cluster.MemberReady, data, ""); err != nil {
		p.log.Warn("mark member ready", logkey.Member, m.ID, logkey.Err, err)
		p.destroyLogged(context.WithoutCancel(ctx), m, "record ready: "+err.Error())
		return
	}
	p.log.Info("member ready", logkey.Member, m.ID, logkey.Flavor, f.String(), logkey.Took, p.clock.Since(start).Round(time.Millisecond))
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
	if m.State != cluster.MemberRebuilding && p.surplus(ctx, m.Flavor) {
		// The flavor has enough members without this one: a rebuild would
		// only grow the pool past its target.
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
			p.signalReady()
		}
	default:
		p.setState(ctx, m, cluster.MemberDeleted, nil, "")
	}
	p.Nudge()
}

// surplus reports whether flavor f has as many ready or coming members as
// its target and the creates waiting for it want.
func (p *Pool) surplus(ctx context.Context, f cluster.Flavor) bool {
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return false // when in doubt, keep the member
	}
	have := 0
	for _, m := range members {
		switch m.State {
		case cluster.MemberReady, cluster.MemberCreating, cluster.MemberBootstrapping, cluster.MemberRebuilding:
			if m.Flavor == f {
				have++
			}
		}
	}
	p.mu.Lock()
	want := p.cfg.Targets[f] + p.waiting[f]
	p.mu.Unlock()
	return have >= want
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
