package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Store is the part of SMEK's database the pool uses.
type Store interface {
	CreateServer(ctx context.Context, backend string, f cluster.Flavor) (cluster.Server, error)
	SetServerState(ctx context.Context, id string, state cluster.ServerState, data []byte, failure string) error
	Servers(ctx context.Context, backend string) ([]cluster.Server, error)
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
	Logger   *slog.Logger
}

// Pool keeps ready members per flavor and tells waiting creates when one
// becomes ready.
type Pool struct {
	cfg     Config
	store   Store
	backend Backend
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
	// readyCh is closed (and replaced) whenever a member becomes ready.
	readyCh chan struct{}
	// recovered is closed once what a previous run left has been dealt
	// with: members that serve clusters run again.
	recovered chan struct{}
	wg        sync.WaitGroup
}

// New returns a pool; Run makes it work.
func New(store Store, backend Backend, cfg Config) *Pool {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{
		cfg: cfg, store: store, backend: backend,
		log:          cfg.Logger.With("component", "pool", "backend", backend.Name()),
		sem:          make(chan struct{}, cfg.Parallel),
		wake:         make(chan struct{}, 1),
		waiting:      map[cluster.Flavor]int{},
		busy:         map[string]bool{},
		provisioning: map[cluster.Flavor]int{},
		readyCh:      make(chan struct{}),
		recovered:    make(chan struct{}),
	}
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
	p.mu.Lock()
	defer p.mu.Unlock()
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
// targets until ctx ends, and waits for its goroutines.
func (p *Pool) Run(ctx context.Context) error {
	defer p.wg.Wait()
	err := p.recover(ctx)
	close(p.recovered)
	if err != nil {
		return err
	}
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		if err := p.Reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-tick.C:
		}
	}
}

// recover deals with what a previous run left: interrupted provisions are
// destroyed (never trusted), members that should run are resumed, and the
// backend may reconcile its own inventory.
func (p *Pool) recover(ctx context.Context) error {
	members, err := p.store.Servers(ctx, p.backend.Name())
	if err != nil {
		return err
	}
	if r, ok := p.backend.(Reconciler); ok {
		if err := r.Reconcile(ctx, members); err != nil {
			p.log.Warn("backend reconcile", "err", err)
		}
	}
	resumer, canResume := p.backend.(Resumer)
	var wg sync.WaitGroup
	for _, m := range members {
		switch m.State {
		case cluster.ServerCreating, cluster.ServerBootstrapping, cluster.ServerRebuilding:
			p.log.Info("destroying member interrupted while starting", "server", m.ID, "state", m.State)
			if err := p.destroy(ctx, m, "interrupted by a restart of the provisioner"); err != nil {
				return err
			}
		case cluster.ServerReady, cluster.ServerClaimed:
			if !canResume {
				continue
			}
			wg.Go(func() {
				p.sem <- struct{}{}
				defer func() { <-p.sem }()
				data, err := resumer.Resume(ctx, m)
				if err != nil {
					p.log.Warn("resume member", "server", m.ID, "err", err)
					if m.State == cluster.ServerReady {
						p.destroy(ctx, m, "resume: "+err.Error())
					}
					return
				}
				p.store.SetServerState(ctx, m.ID, m.State, data, "")
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
	members, err := p.store.Servers(ctx, p.backend.Name())
	if err != nil {
		return err
	}
	type count struct{ ready, live int }
	counts := map[cluster.Flavor]*count{}
	get := func(f cluster.Flavor) *count {
		if counts[f] == nil {
			counts[f] = &count{}
		}
		return counts[f]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range members {
		c := get(m.Flavor)
		c.live++
		switch m.State {
		case cluster.ServerReady:
			c.ready++
		case cluster.ServerDirty:
			p.goWork(ctx, m, p.release)
		case cluster.ServerFailed:
			p.goWork(ctx, m, func(ctx context.Context, m Member) { p.destroy(ctx, m, m.Failure) })
		}
	}
	flavors := map[cluster.Flavor]int{}
	for f, n := range p.cfg.Targets {
		flavors[f] += n
	}
	for f, n := range p.waiting {
		flavors[f] += n
	}
	for f, want := range flavors {
		c := get(f)
		// Members in creating state are already in c.live; in-flight
		// provisions that have not written their row yet are not.
		have := c.ready + p.provisioning[f]
		for ; have < want; have++ {
			if p.cfg.MaxPerFlavor > 0 && c.live+p.provisioning[f] >= p.cfg.MaxPerFlavor {
				break
			}
			p.provisioning[f]++
			p.wg.Go(func() { p.provision(ctx, f) })
		}
	}
	return nil
}

// goWork runs fn on m in a goroutine unless one already works on m. p.mu
// must be held.
func (p *Pool) goWork(ctx context.Context, m Member, fn func(context.Context, Member)) {
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
	m, err := p.store.CreateServer(ctx, p.backend.Name(), f)
	if err != nil {
		p.log.Warn("record new member", "flavor", f.String(), "err", err)
		return
	}
	start := time.Now()
	data, err := p.backend.Provision(ctx, m)
	if err != nil {
		p.log.Warn("provision member", "server", m.ID, "flavor", f.String(), "err", err)
		p.destroy(context.WithoutCancel(ctx), m, "provision: "+err.Error())
		return
	}
	if err := p.store.SetServerState(ctx, m.ID, cluster.ServerReady, data, ""); err != nil {
		p.log.Warn("mark member ready", "server", m.ID, "err", err)
		p.destroy(context.WithoutCancel(ctx), m, "record ready: "+err.Error())
		return
	}
	p.log.Info("member ready", "server", m.ID, "flavor", f.String(), "took", time.Since(start).Round(time.Millisecond))
	p.signalReady()
}

func (p *Pool) release(ctx context.Context, m Member) {
	reusable, data, err := p.backend.Release(ctx, m)
	switch {
	case err != nil:
		p.log.Warn("release member", "server", m.ID, "err", err)
		p.store.SetServerState(ctx, m.ID, cluster.ServerFailed, nil, "release: "+err.Error())
	case reusable:
		p.store.SetServerState(ctx, m.ID, cluster.ServerReady, data, "")
		p.signalReady()
	default:
		p.store.SetServerState(ctx, m.ID, cluster.ServerDeleted, nil, "")
	}
	p.Nudge()
}

func (p *Pool) destroy(ctx context.Context, m Member, reason string) error {
	if err := p.backend.Destroy(ctx, m); err != nil {
		p.store.SetServerState(ctx, m.ID, cluster.ServerFailed, nil, reason+"; destroy: "+err.Error())
		return fmt.Errorf("destroy %s: %w", m.ID, err)
	}
	return p.store.SetServerState(ctx, m.ID, cluster.ServerDeleted, nil, reason)
}

func (p *Pool) signalReady() {
	p.mu.Lock()
	close(p.readyCh)
	p.readyCh = make(chan struct{})
	p.mu.Unlock()
}

var errClosed = errors.New("pool closed")
