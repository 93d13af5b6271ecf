// Package lifecycle is what SMEK does with clusters: create (claim from the
// warm pool), stop, start, terminate, extend, mint kubeconfigs, and expire
// them at their deadline. It reads and records clusters in the database
// (the source of truth, Store) and changes a cluster's member through the
// pool (Pool), which owns the member's life.
package lifecycle

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Store is the part of SMEK's database the lifecycle reads and changes
// clusters through. A change that touches a member goes through the Pool.
type Store interface {
	Cluster(ctx context.Context, accountID int64, id cluster.ID) (cluster.Cluster, error)
	Clusters(ctx context.Context, f cluster.Filter) ([]cluster.Cluster, error)
	// ListedClusters is what /list shows an account.
	ListedClusters(ctx context.Context, accountID int64) ([]cluster.Summary, error)
	// UpdateCluster applies a change that leaves the member as it is.
	UpdateCluster(ctx context.Context, id cluster.ID, ch cluster.Change) (cluster.Cluster, error)
	AccountByName(ctx context.Context, name string) (cluster.Account, error)
	Events(ctx context.Context, subject string) ([]cluster.Event, error)
	RecordEvent(ctx context.Context, subject, typ, cause, actor, message string) error
	DueClusters(ctx context.Context, now time.Time) ([]cluster.Cluster, error)
	ExpiringClusters(ctx context.Context, horizon time.Time) ([]cluster.Cluster, error)
	MarkWarned(ctx context.Context, id cluster.ID) error
	SetMissingStoppedDeadlines(ctx context.Context, until time.Time) (int64, error)
	DueStoppedClusters(ctx context.Context, now time.Time) ([]cluster.Cluster, error)
	StoppedExpiringClusters(ctx context.Context, horizon time.Time) ([]cluster.Cluster, error)
	MarkStoppedWarned(ctx context.Context, id cluster.ID) (bool, error)
}

// Pool is what the lifecycle asks of the warm pool: the one owner of a
// member's life, which changes a member and its cluster together.
type Pool interface {
	// Ready is closed when the next member becomes ready; Want registers
	// a create waiting for one; Nudge makes the pool work now; Recovered
	// is closed once a previous run's members run again.
	Ready() <-chan struct{}
	Want(f cluster.Flavor) (done func())
	Nudge()
	Recovered() <-chan struct{}
	OnLost(fn func(ctx context.Context, m cluster.Member, reason string))
	// ObserveCreate tells the pool's policy about a create of flavor f
	// the account may run: warm when a ready member was there for it.
	ObserveCreate(f cluster.Flavor, warm bool)

	Claim(ctx context.Context, c cluster.Cluster) (cluster.Member, error)
	Prepare(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error)
	Stop(ctx context.Context, c cluster.Cluster, ch cluster.Change) (cluster.Cluster, error)
	Start(ctx context.Context, c cluster.Cluster, ch cluster.Change) (cluster.Cluster, error)
	Credential(ctx context.Context, c cluster.Cluster) (cluster.Kubeconfig, error)
	Release(ctx context.Context, id cluster.ID, ch cluster.Change) (cluster.Cluster, error)
	CanRevoke() bool
	Revoke(ctx context.Context, memberID string) error
	PhaseTimings(ctx context.Context, c cluster.Cluster, m *cluster.Member) map[string]time.Duration
	Member(ctx context.Context, id string) (cluster.Member, error)
	// RestoreStep is the last step of a restore under way of member id.
	RestoreStep(id string) (string, bool)
	// CanHibernate says whether the backend can hibernate; Hibernate
	// snapshots a stopped cluster's member and deletes its server,
	// reporting whether it did (Start restores it).
	CanHibernate() bool
	Hibernate(ctx context.Context, c cluster.Cluster) (bool, error)
	// CanLoadImages says whether the backend can import image archives
	// into a node; LoadImages does it for member id.
	CanLoadImages() bool
	LoadImages(ctx context.Context, id string, a cluster.ImageArchive) ([]cluster.Image, error)
}

// Metrics is what the lifecycle reports to the metrics registry.
type Metrics interface {
	ObserveClaim(warm bool, d time.Duration)
	ClusterOp(op, outcome string)
	PoolEmptyWait()
	TTLExpiry(action string)
}

// Config tunes the service.
type Config struct {
	// DefaultK8sVersion is used when a create names none; default: the
	// backend's newest.
	DefaultK8sVersion string
	// DefaultWait bounds how long a create waits for a ready cluster when
	// the request sets no wait (default 5 min); MaxWait bounds what a
	// request may ask for (default 30 min).
	DefaultWait, MaxWait time.Duration
	// ExpiryWarning is how long before its deadline the owner is warned
	// (default 10 min).
	ExpiryWarning time.Duration
	// MaxStoppedLifetime is how long a cluster stays stopped before the
	// sweeper terminates it (default 168 h); a start gives it a fresh one.
	MaxStoppedLifetime time.Duration
	// StoppedWarning is how long before that the owner is warned (default
	// 24 h; at once when the lifetime is shorter).
	StoppedWarning time.Duration
	// HibernateAfter is how long a cluster stays stopped before its
	// member is hibernated: snapshotted and its server deleted, where the
	// backend can (0: never).
	HibernateAfter time.Duration
	Notifier       cluster.Notifier
	Metrics        Metrics
	Logger         *slog.Logger
	// Clock is the clock of deadlines, timings and waits (default: the real
	// clock).
	Clock clockwork.Clock
}

// DefaultMaxStoppedLifetime is how long a cluster stays stopped unless the
// server is configured otherwise: a week.
const DefaultMaxStoppedLifetime = 7 * 24 * time.Hour

// Service runs the cluster life cycle.
type Service struct {
	cfg      Config
	db       Store
	pool     Pool
	versions []string
	log      *slog.Logger
	// locks serialise changes to one cluster (stop racing terminate, say);
	// the database still checks every transition.
	locks [64]sync.Mutex
	// loadsMu guards loads: a channel per cluster an image load runs
	// into, closed when it ends.
	loadsMu sync.Mutex
	loads   map[cluster.ID]chan struct{}
}

// New returns the service. versions are the Kubernetes versions the backend
// runs, newest first.
func New(db Store, p Pool, versions []string, cfg Config) *Service {
	if cfg.DefaultWait <= 0 {
		cfg.DefaultWait = 5 * time.Minute
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Minute
	}
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = 10 * time.Minute
	}
	if cfg.MaxStoppedLifetime <= 0 {
		cfg.MaxStoppedLifetime = DefaultMaxStoppedLifetime
	}
	if cfg.StoppedWarning <= 0 {
		cfg.StoppedWarning = 24 * time.Hour
	}
	if cfg.DefaultK8sVersion == "" && len(versions) > 0 {
		cfg.DefaultK8sVersion = versions[0]
	}
	if cfg.Notifier == nil {
		cfg.Notifier = nopNotifier{}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	s := &Service{cfg: cfg, db: db, pool: p, versions: versions, log: cfg.Logger.With(logkey.Component, "lifecycle"), loads: map[cluster.ID]chan struct{}{}}
	p.OnLost(s.memberLost)
	return s
}

// Versions lists the Kubernetes versions that can be requested, newest first.
func (s *Service) Versions() []string { return s.versions }

// DefaultK8sVersion is the version a create gets when it names none.
func (s *Service) DefaultK8sVersion() string { return s.cfg.DefaultK8sVersion }

// recovered waits until the pool has resumed the members a previous run
// left, so that a cluster's control plane runs before anything is asked of
// it.
func (s *Service) recovered(ctx context.Context) error {
	select {
	case <-s.pool.Recovered():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) lock(id cluster.ID) func() {
	m := &s.locks[stripe(id, len(s.locks))]
	m.Lock()
	return m.Unlock
}

// stripe is the index of id's lock among n.
func stripe(id cluster.ID, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

func (s *Service) notify(ctx context.Context, kind cluster.NotificationKind, c cluster.Cluster, cause, reason string) {
	if c.Spec.NotificationEmail == "" {
		return
	}
	s.cfg.Notifier.Notify(context.WithoutCancel(ctx), cluster.Notification{Kind: kind, Cluster: c, Cause: cause, Reason: reason, At: s.cfg.Clock.Now()})
}

type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, cluster.Notification) {}

type nopMetrics struct{}

func (nopMetrics) ObserveClaim(bool, time.Duration) {}
func (nopMetrics) ClusterOp(string, string)         {}
func (nopMetrics) PoolEmptyWait()                   {}
func (nopMetrics) TTLExpiry(string)                 {}

// outcome names an error for the metrics.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return string(cluster.ErrorCode(err))
}
