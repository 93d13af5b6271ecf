package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Bounds are the least and the most ready members a flavor keeps.
type Bounds struct{ Min, Max int }

// AutoConfig tunes the auto policy.
type AutoConfig struct {
	// Flavors are the flavors the policy sizes, with their bounds.
	Flavors map[cluster.Flavor]Bounds
	// ServiceLevel is the share of creates that should find a ready
	// member (default 0.99).
	ServiceLevel float64
	// ReadyPrior is how long a new member of a flavor is assumed to take
	// to become ready until one was measured (default 60 s).
	ReadyPrior time.Duration
	// Schedules raise the minimum while they are active.
	Schedules []Schedule
	// ShortWindow and LongWindow are the spans over which the arrival
	// rate is measured (default 15 min and 3 h): the policy follows the
	// higher of the two rates, so a burst raises the target at once and a
	// quiet spell lowers it slowly.
	ShortWindow, LongWindow time.Duration
}

// readySamples is how many recent measurements of the time to ready the
// policy keeps per flavor and kind.
const readySamples = 20

// readyPercentile is the share of recent creates a lead time covers.
const readyPercentile = 0.9

// Auto sizes each flavor's ready pool from its recent arrival rate λ and
// the time T a new member takes to become ready: the target is the
// smallest n such that a Poisson number of arrivals with mean λ·T is at
// most n with probability ServiceLevel, i.e. the pool has enough ready
// members for the creates that arrive while a new one boots. It is
// clamped to the flavor's Bounds and raised by active schedules and by
// cold creates. Auto is safe for concurrent use and reads no clock.
type Auto struct {
	cfg AutoConfig

	mu sync.Mutex
	// arrivals are each flavor's creates within LongWindow, oldest first;
	// cold the ones that found no ready member.
	arrivals, cold map[cluster.Flavor][]time.Time
	// creates and rebuilds are each flavor's recent times to ready.
	creates, rebuilds map[cluster.Flavor][]time.Duration
}

// NewAuto validates cfg and returns the policy.
func NewAuto(cfg AutoConfig) (*Auto, error) {
	if cfg.ServiceLevel == 0 {
		cfg.ServiceLevel = 0.99
	}
	if cfg.ReadyPrior == 0 {
		cfg.ReadyPrior = time.Minute
	}
	if cfg.ShortWindow == 0 {
		cfg.ShortWindow = 15 * time.Minute
	}
	if cfg.LongWindow == 0 {
		cfg.LongWindow = 3 * time.Hour
	}
	switch {
	case len(cfg.Flavors) == 0:
		return nil, errors.New("auto policy: no flavor to size")
	case !(cfg.ServiceLevel > 0 && cfg.ServiceLevel < 1):
		return nil, fmt.Errorf("auto policy: service level %v is not above 0 and below 1", cfg.ServiceLevel)
	case cfg.ServiceLevel > 0.9999:
		return nil, fmt.Errorf("auto policy: service level %v is above 0.9999", cfg.ServiceLevel)
	case cfg.ReadyPrior < 0:
		return nil, fmt.Errorf("auto policy: ready prior %s is negative", cfg.ReadyPrior)
	case cfg.ShortWindow < 0 || cfg.LongWindow < cfg.ShortWindow:
		return nil, fmt.Errorf("auto policy: windows %s and %s: want 0 < short <= long", cfg.ShortWindow, cfg.LongWindow)
	}
	for f, b := range cfg.Flavors {
		if b.Min < 0 || b.Max < 1 || b.Min > b.Max {
			return nil, fmt.Errorf("auto policy: flavor %s: bounds min %d, max %d: want 0 <= min <= max and max >= 1", f, b.Min, b.Max)
		}
	}
	for _, s := range cfg.Schedules {
		if s.spec == nil {
			return nil, fmt.Errorf("auto policy: schedule %q was not made by ParseSchedule", s.Name)
		}
		if s.Flavor == (cluster.Flavor{}) {
			continue
		}
		if _, ok := cfg.Flavors[s.Flavor]; !ok {
			return nil, fmt.Errorf("auto policy: schedule %s raises flavor %s, which the pool does not keep", s.Name, s.Flavor)
		}
	}
	return &Auto{
		cfg:      cfg,
		arrivals: map[cluster.Flavor][]time.Time{}, cold: map[cluster.Flavor][]time.Time{},
		creates: map[cluster.Flavor][]time.Duration{}, rebuilds: map[cluster.Flavor][]time.Duration{},
	}, nil
}

// Name implements Policy.
func (*Auto) Name() string { return "auto" }

// ScaleDown implements Policy: surplus members are retired.
func (*Auto) ScaleDown() bool { return true }

// ObserveArrival implements Policy. Creates of flavors the policy does
// not size are not kept.
func (a *Auto) ObserveArrival(f cluster.Flavor, at time.Time, warm bool) {
	if _, ok := a.cfg.Flavors[f]; !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.arrivals[f] = insertTime(a.arrivals[f], at)
	if !warm {
		a.cold[f] = insertTime(a.cold[f], at)
	}
}

// insertTime adds at to ts, kept in order (callers may report a little out
// of order).
func insertTime(ts []time.Time, at time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(at) })
	return slices.Insert(ts, i, at)
}

// ObserveReady implements Policy.
func (a *Auto) ObserveReady(f cluster.Flavor, took time.Duration, rebuild bool) {
	if _, ok := a.cfg.Flavors[f]; !ok || took < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.creates
	if rebuild {
		m = a.rebuilds
	}
	m[f] = append(m[f], took)
	if len(m[f]) > readySamples {
		m[f] = m[f][len(m[f])-readySamples:]
	}
}

// LeadTime is how long a new member of flavor f takes to become ready, as
// the policy sizes with it: the 90th percentile of the recent measured
// creates, or ReadyPrior before the first; measured is false then.
func (a *Auto) LeadTime(f cluster.Flavor) (d time.Duration, measured bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leadTime(f)
}

func (a *Auto) leadTime(f cluster.Flavor) (time.Duration, bool) {
	xs := a.creates[f]
	if len(xs) == 0 {
		return a.cfg.ReadyPrior, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	// Nearest rank.
	i := int(math.Ceil(readyPercentile*float64(len(s)))) - 1
	return s[max(i, 0)], true
}

// Targets implements Policy.
func (a *Auto) Targets(now time.Time) map[cluster.Flavor]Target {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[cluster.Flavor]Target, len(a.cfg.Flavors))
	for f, b := range a.cfg.Flavors {
		a.prune(f, now)
		out[f] = a.target(f, b, now)
	}
	return out
}

// prune forgets f's arrivals older than LongWindow. a.mu must be held.
func (a *Auto) prune(f cluster.Flavor, now time.Time) {
	cut := now.Add(-a.cfg.LongWindow)
	drop := func(ts []time.Time) []time.Time {
		i := sort.Search(len(ts), func(i int) bool { return ts[i].After(cut) })
		return ts[i:]
	}
	a.arrivals[f] = drop(a.arrivals[f])
	a.cold[f] = drop(a.cold[f])
}

// countIn counts the times in (from, to].
func countIn(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if t.After(from) && !t.After(to) {
			n++
		}
	}
	return n
}

func (a *Auto) target(f cluster.Flavor, b Bounds, now time.Time) Target {
	short := float64(countIn(a.arrivals[f], now.Add(-a.cfg.ShortWindow), now)) / a.cfg.ShortWindow.Hours()
	long := float64(countIn(a.arrivals[f], now.Add(-a.cfg.LongWindow), now)) / a.cfg.LongWindow.Hours()
	perHour := max(short, long)
	lead, measured := a.leadTime(f)
	n := PoissonQuantile(perHour*lead.Hours(), a.cfg.ServiceLevel)
	leadWord := "ready in"
	if !measured {
		leadWord = "ready assumed in"
	}
	t := Target{Ready: n, Reason: fmt.Sprintf("arrivals %s/h, %s %s: poisson p%s → %d",
		trimFloat(perHour), leadWord, lead.Round(time.Second), trimFloat(a.cfg.ServiceLevel*100), n)}
	// A create that found the pool empty: as many as came cold within
	// one lead time are wanted ready at once (they are waiting now, or
	// their like will soon be).
	if c := countIn(a.cold[f], now.Add(-lead), now); c > t.Ready {
		t = Target{Ready: c, Reason: fmt.Sprintf("%d cold creates in the last %s", c, lead.Round(time.Second))}
	}
	if t.Ready < b.Min {
		t = Target{Ready: b.Min, Reason: fmt.Sprintf("min %d", b.Min)}
	}
	for _, s := range a.cfg.Schedules {
		if s.Flavor != (cluster.Flavor{}) && s.Flavor != f {
			continue
		}
		if s.Min > t.Ready && s.Active(now) {
			t = Target{Ready: s.Min, Reason: fmt.Sprintf("schedule %s min %d", s.Name, s.Min)}
		}
	}
	if t.Ready > b.Max {
		t = Target{Ready: b.Max, Reason: fmt.Sprintf("max %d (%s)", b.Max, t.Reason)}
	}
	return t
}

func trimFloat(x float64) string {
	return fmt.Sprintf("%.4g", x)
}

// PoissonQuantile is the smallest n with P(X <= n) >= p for X Poisson
// with the given mean.
func PoissonQuantile(mean, p float64) int {
	if mean <= 0 {
		return 0
	}
	// Terms in log space: exp(-mean) underflows for a mean above ~745.
	// Beyond mean + 50 standard deviations the tail is nothing a pool
	// sizes for.
	limit := int(mean+50*math.Sqrt(mean)) + 50
	logMean := math.Log(mean)
	cdf := 0.0
	for n := 0; n < limit; n++ {
		lg, _ := math.Lgamma(float64(n + 1))
		cdf += math.Exp(-mean + float64(n)*logMean - lg)
		if cdf >= p {
			return n
		}
	}
	return limit
}
