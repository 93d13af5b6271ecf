package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Store is what the state gauges read at every scrape. *sqlite.DB
// implements it.
type Store interface {
	// ClusterCounts counts clusters by status.
	ClusterCounts(ctx context.Context) (map[cluster.Status]int, error)
	// MemberCounts counts pool members by flavor and state.
	MemberCounts(ctx context.Context) (map[cluster.Flavor]map[string]int, error)
}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

// stateCollector turns the store's counts into gauges at scrape time, so
// that they are always what the database says rather than a running tally
// that drifts after a restart.
type stateCollector struct {
	store    Store
	logger   *slog.Logger
	clusters *prometheus.Desc
	servers  *prometheus.Desc
	up       *prometheus.Desc
}

func newStateCollector(store Store, logger *slog.Logger) *stateCollector {
	return &stateCollector{
		store:  store,
		logger: logger,
		clusters: prometheus.NewDesc(namespace+"_clusters", "Clusters by state.",
			[]string{"state"}, nil),
		servers: prometheus.NewDesc(namespace+"_pool_servers", "Pool members by flavor and state.",
			[]string{"flavor", "k8s_version", "size", "privileged", "state"}, nil),
		up: prometheus.NewDesc(namespace+"_state_scrape_ok", "1 when the cluster and pool counts could be read from the database.",
			nil, nil),
	}
}

// allStatuses are always exported, at 0 when empty, so that dashboards and
// alerts see every series.
var allStatuses = []cluster.Status{cluster.Pending, cluster.Running, cluster.Stopped,
	cluster.Terminating, cluster.Terminated, cluster.Failed}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.clusters
	ch <- c.servers
	ch <- c.up
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ok := 1.0
	clusters, err := c.store.ClusterCounts(ctx)
	if err != nil {
		c.logger.Warn("metrics: count clusters", logkey.Err, err)
		ok = 0
	} else {
		seen := map[cluster.Status]bool{}
		for _, s := range allStatuses {
			seen[s] = true
			ch <- prometheus.MustNewConstMetric(c.clusters, prometheus.GaugeValue, float64(clusters[s]), string(s))
		}
		for s, n := range clusters {
			if !seen[s] {
				ch <- prometheus.MustNewConstMetric(c.clusters, prometheus.GaugeValue, float64(n), string(s))
			}
		}
	}
	servers, err := c.store.MemberCounts(ctx)
	if err != nil {
		c.logger.Warn("metrics: count pool servers", logkey.Err, err)
		ok = 0
	} else {
		for f, states := range servers {
			priv := "false"
			if f.Privileged {
				priv = "true"
			}
			for state, n := range states {
				ch <- prometheus.MustNewConstMetric(c.servers, prometheus.GaugeValue, float64(n),
					f.String(), f.K8sVersion, f.Size, priv, state)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}
