package githubapp

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// memClusters is a stateful in-memory Clusters with SMEK's tenancy rules:
// an installation acts as its linked account (another account's cluster is
// ENOTFOUND, creates count against the account's limit), AsApp reaches
// every account.
type memClusters struct {
	mu       sync.Mutex
	now      func() time.Time
	accounts map[int64]string // installation → account
	limit    int
	clusters map[string]*wire.Cluster
	calls    map[string]int
	fail     map[string][]error // method → errors to return first
	seq      int
	notes    map[string][]string // cluster id → notes, by Note
}

func newMemClusters(now func() time.Time) *memClusters {
	return &memClusters{now: now, accounts: map[int64]string{}, limit: 3,
		clusters: map[string]*wire.Cluster{}, calls: map[string]int{}, fail: map[string][]error{}}
}

func (m *memClusters) link(installation int64, account string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.accounts[installation] = account
}

// add stores a cluster directly, as if made by the action.
func (m *memClusters) add(c wire.Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.ClusterStatus == "" {
		c.ClusterStatus = "running"
	}
	m.clusters[c.ClusterID] = &c
}

func (m *memClusters) get(id string) wire.Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.clusters[id]
}

func (m *memClusters) count(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

func (m *memClusters) failNext(method string, errs ...error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail[method] = append(m.fail[method], errs...)
}

// enter records a call and returns an injected error; m.mu must be held.
func (m *memClusters) enter(method string) error {
	m.calls[method]++
	if q := m.fail[method]; len(q) > 0 {
		m.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

// account returns the account installation as acts for; m.mu must be held.
func (m *memClusters) account(as int64) (string, error) {
	if as == AsApp {
		return "", nil
	}
	name, ok := m.accounts[as]
	if !ok {
		return "", cluster.Errorf(cluster.EFORBIDDEN, "", "installation %d is not linked to a SMEK account", as)
	}
	return name, nil
}

// lookup returns a cluster the caller may see; m.mu must be held.
func (m *memClusters) lookup(as int64, id string) (*wire.Cluster, error) {
	acct, err := m.account(as)
	if err != nil {
		return nil, err
	}
	c, ok := m.clusters[id]
	if !ok || (acct != "" && c.Account != acct) {
		return nil, cluster.Errorf(cluster.ENOTFOUND, "cluster-id", "no cluster %q", id)
	}
	return c, nil
}

func (m *memClusters) List(ctx context.Context, as int64, o cluster.Filter) ([]cluster.Cluster, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("List"); err != nil {
		return nil, err
	}
	acct, err := m.account(as)
	if err != nil {
		return nil, err
	}
	var out []cluster.Cluster
	for _, id := range slices.Sorted(maps.Keys(m.clusters)) {
		c := m.clusters[id]
		r := c.Run
		if r == nil {
			r = &wire.RunMetadata{}
		}
		switch {
		case acct != "" && c.Account != acct,
			len(o.Statuses) > 0 && !slices.Contains(o.Statuses, cluster.Status(c.ClusterStatus)),
			o.RepositoryID != 0 && r.RepositoryID != o.RepositoryID,
			o.RunID != 0 && r.RunID != o.RunID,
			o.RunAttempt != 0 && r.RunAttempt != o.RunAttempt,
			o.Runner != "" && r.RunnerName != o.Runner,
			o.PullRequest != 0 && r.PullRequest != o.PullRequest,
			o.InstallationID != 0 && r.InstallationID != o.InstallationID,
			o.RepositoryOwner != "" && !strings.HasPrefix(strings.ToLower(r.Repository), strings.ToLower(o.RepositoryOwner)+"/"):
			continue
		}
		out = append(out, c.Domain())
	}
	return out, nil
}

func (m *memClusters) Get(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("Get"); err != nil {
		return cluster.Cluster{}, err
	}
	c, err := m.lookup(as, id)
	if err != nil {
		return cluster.Cluster{}, err
	}
	return c.Domain(), nil
}

func (m *memClusters) Create(ctx context.Context, as int64, in cluster.CreateInput) (cluster.Cluster, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("Create"); err != nil {
		return cluster.Cluster{}, err
	}
	acct, err := m.account(as)
	if err != nil {
		return cluster.Cluster{}, err
	}
	live := 0
	for _, c := range m.clusters {
		if c.Account == acct && cluster.Status(c.ClusterStatus).Live() {
			live++
		}
	}
	if live >= m.limit {
		return cluster.Cluster{}, cluster.Errorf(cluster.ELIMIT, "", "account %q has %d clusters, its limit", acct, live)
	}
	m.seq++
	minutes := 60
	if in.MinutesToLive != nil {
		minutes = *in.MinutesToLive
	}
	c := wire.Cluster{
		ClusterID: fmt.Sprintf("c-mem%03d", m.seq), ClusterStatus: "running", Account: acct,
		K8sVersion: "1.36.3", ClusterSize: "1-mid", MinutesToLive: minutes,
		KeepCluster:      in.KeepCluster != nil && *in.KeepCluster,
		EnablePrivileged: in.Privileged != nil && *in.Privileged,
		CreatedAt:        m.now(), ExpiresAt: m.now().Add(time.Duration(minutes) * time.Minute),
	}
	if in.Run != nil {
		c.Run = wire.RunOf(*in.Run)
	}
	if in.K8sVersion != nil {
		c.K8sVersion = *in.K8sVersion
	}
	m.clusters[c.ClusterID] = &c
	return c.Domain(), nil
}

func (m *memClusters) transition(as int64, method, id string, fn func(c *wire.Cluster) error) (cluster.Cluster, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(method); err != nil {
		return cluster.Cluster{}, err
	}
	c, err := m.lookup(as, id)
	if err != nil {
		return cluster.Cluster{}, err
	}
	if err := fn(c); err != nil {
		return cluster.Cluster{}, err
	}
	return c.Domain(), nil
}

func (m *memClusters) Stop(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return m.transition(as, "Stop", id, func(c *wire.Cluster) error {
		switch {
		case c.ClusterStatus != "running":
			return cluster.Errorf(cluster.ECONFLICT, "", "cluster %s is %s", id, c.ClusterStatus)
		case c.KeepCluster:
			c.ClusterStatus = "stopped"
		default:
			c.ClusterStatus = "terminated"
		}
		return nil
	})
}

func (m *memClusters) Start(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return m.transition(as, "Start", id, func(c *wire.Cluster) error {
		if c.ClusterStatus != "stopped" {
			return cluster.Errorf(cluster.ECONFLICT, "", "cluster %s is %s", id, c.ClusterStatus)
		}
		c.ClusterStatus = "running"
		return nil
	})
}

func (m *memClusters) Extend(ctx context.Context, as int64, id string, minutes int) (cluster.Cluster, error) {
	return m.transition(as, "Extend", id, func(c *wire.Cluster) error {
		if !cluster.Status(c.ClusterStatus).Live() {
			return cluster.Errorf(cluster.ECONFLICT, "", "cluster %s is %s", id, c.ClusterStatus)
		}
		c.ExpiresAt = c.ExpiresAt.Add(time.Duration(minutes) * time.Minute)
		return nil
	})
}

func (m *memClusters) Terminate(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return m.transition(as, "Terminate", id, func(c *wire.Cluster) error {
		if c.ClusterStatus == "terminated" {
			return cluster.Errorf(cluster.ECONFLICT, "", "cluster %s is terminated", id)
		}
		c.ClusterStatus = "terminated"
		return nil
	})
}

func (m *memClusters) Note(ctx context.Context, as int64, id string, message string) error {
	_, err := m.transition(as, "Note", id, func(c *wire.Cluster) error {
		if m.notes == nil {
			m.notes = map[string][]string{}
		}
		m.notes[id] = append(m.notes[id], message)
		return nil
	})
	return err
}

var _ Clusters = (*memClusters)(nil)
