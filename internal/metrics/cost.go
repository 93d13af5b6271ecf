package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/logkey"
)

// UsageStore is what the pool cost gauges read at every scrape.
// *sqlite.DB implements it.
type UsageStore interface {
	// PoolUsage accounts the pool's server hours per flavor and category
	// in [from, to).
	PoolUsage(ctx context.Context, from, to time.Time) ([]cost.Usage, error)
}

// CostWindow is the window the server-hours and cost gauges cover: the
// last 24 hours, like `provisioner pool status`.
const CostWindow = 24 * time.Hour

// rateWindow is the recent stretch the hourly cost rate is measured on.
const rateWindow = time.Minute

// costCollector computes the pool's server hours and their cost over the
// last CostWindow at scrape time, from the members' recorded transitions,
// so that the figures survive restarts and never drift from the database.
// The query is bounded by the window.
type costCollector struct {
	store  UsageStore
	model  cost.Model
	now    func() time.Time
	logger *slog.Logger
	hours  *prometheus.Desc
	euros  *prometheus.Desc
	rate   *prometheus.Desc
	up     *prometheus.Desc
}

func newCostCollector(store UsageStore, model cost.Model, now func() time.Time, logger *slog.Logger) *costCollector {
	return &costCollector{
		store: store, model: model, now: now, logger: logger,
		hours: prometheus.NewDesc(namespace+"_pool_server_hours", "Pool server hours over the last 24 hours by flavor and category (busy, idle, stopped, building, hibernated).",
			[]string{"flavor", "category"}, nil),
		euros: prometheus.NewDesc(namespace+"_pool_cost_euros", "What the pool's servers and snapshots cost over the last 24 hours by flavor and category, in euros without VAT, at the configured prices.",
			[]string{"flavor", "category"}, nil),
		rate: prometheus.NewDesc(namespace+"_pool_cost_rate_euros_per_hour", "What the pool costs per hour now (averaged over the last minute) by flavor, in euros without VAT.",
			[]string{"flavor"}, nil),
		up: prometheus.NewDesc(namespace+"_pool_cost_scrape_ok", "1 when the pool's usage could be read from the database.",
			nil, nil),
	}
}

func (c *costCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hours
	ch <- c.euros
	ch <- c.rate
	ch <- c.up
}

func (c *costCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	ok := 1.0
	day, err := c.store.PoolUsage(ctx, now.Add(-CostWindow), now)
	if err != nil {
		c.logger.Warn("metrics: read pool usage", logkey.Err, err)
		ok = 0
	}
	for _, u := range day {
		eur, _ := c.model.Cost(u)
		for _, cat := range cost.Categories() {
			ch <- prometheus.MustNewConstMetric(c.hours, prometheus.GaugeValue, u.Hours[cat], u.Flavor.String(), string(cat))
			ch <- prometheus.MustNewConstMetric(c.euros, prometheus.GaugeValue, eur[cat], u.Flavor.String(), string(cat))
		}
	}
	recent, err := c.store.PoolUsage(ctx, now.Add(-rateWindow), now)
	if err != nil {
		c.logger.Warn("metrics: read recent pool usage", logkey.Err, err)
		ok = 0
	}
	for _, u := range recent {
		_, total := c.model.Cost(u)
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, total*float64(time.Hour/rateWindow), u.Flavor.String())
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}

// RegisterPoolCost adds the pool cost gauges: server hours and euros per
// flavor and category over the last 24 hours, and the current hourly
// rate, read from store at every scrape and priced with model. now is the
// server's clock. A nil *Metrics ignores it.
func (m *Metrics) RegisterPoolCost(store UsageStore, model cost.Model, now func() time.Time, logger *slog.Logger) {
	if m == nil {
		return
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m.reg.MustRegister(newCostCollector(store, model, now, logger))
}
