package metrics

import "github.com/prometheus/client_golang/prometheus"

// PrewarmOutcomes are the outcomes smek_prewarms_total counts: a pre-warm
// started, used by its job's create (hit), released because the job
// completed without one (miss) or after its TTL (expired), not started
// because the installation held its cap (capped) or the account may not
// have the flavor (refused), and creates that taught a job's flavor
// (learned).
var PrewarmOutcomes = []string{"started", "hit", "miss", "expired", "capped", "refused", "learned"}

// Prewarms counts pre-warms from queued CI jobs by outcome.
type Prewarms struct{ c *prometheus.CounterVec }

// NewPrewarms registers smek_prewarms_total on m's registry, every outcome
// at zero. Call it once per Metrics.
func (m *Metrics) NewPrewarms() *Prewarms {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "prewarms_total",
		Help: "Pre-warms from queued CI jobs by outcome (started, hit, miss, expired, capped, refused, learned).",
	}, []string{"outcome"})
	m.reg.MustRegister(c)
	for _, o := range PrewarmOutcomes {
		c.WithLabelValues(o)
	}
	return &Prewarms{c: c}
}

// Prewarm counts one outcome.
func (p *Prewarms) Prewarm(outcome string) { p.c.WithLabelValues(outcome).Inc() }
