package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/pool/policy"
)

// The GitHub App's pre-warmer raises and ends the pool's pre-warms.
var _ githubapp.PrewarmPool = (*pool.Pool)(nil)

// PoolPolicyConfig is how the warm pool's ready targets are decided.
type PoolPolicyConfig struct {
	// Name is "fixed" (Config.PoolSize and PoolSizePrivileged) or "auto";
	// empty: fixed for the local backend, auto for hetzner.
	Name string
	// Min and Max bound the auto policy per flavor; the zero Flavor
	// stands for the default flavor (baseline, default version). A flavor
	// named in either is sized; with neither the default flavor is, from
	// 0 to DefaultAutoMax. A flavor's missing min is 0, its missing max
	// the larger of its min and DefaultAutoMax.
	Min, Max map[cluster.Flavor]int
	// ServiceLevel, ReadyPrior and Schedules: policy.AutoConfig.
	ServiceLevel float64
	ReadyPrior   time.Duration
	Schedules    []policy.Schedule
}

// DefaultAutoMax is the auto policy's max of a flavor given none.
const DefaultAutoMax = 10

// PolicyName is the policy that runs on backend.
func (c PoolPolicyConfig) PolicyName(backend string) string {
	if c.Name != "" {
		return c.Name
	}
	if backend == "hetzner" {
		return "auto"
	}
	return "fixed"
}

// newPolicy builds the pool's policy; def is the default flavor, versions
// the ones the backend offers, fixed the fixed policy's sizes.
func (c PoolPolicyConfig) newPolicy(backend string, def cluster.Flavor, versions []string, fixed map[cluster.Flavor]int) (policy.Policy, error) {
	switch c.PolicyName(backend) {
	case "fixed":
		if len(c.Min) > 0 || len(c.Max) > 0 || len(c.Schedules) > 0 {
			return nil, fmt.Errorf("pool policy fixed: --pool-min, --pool-max and --pool-schedule need --pool-policy auto")
		}
		return policy.Fixed(fixed), nil
	case "auto":
	default:
		return nil, fmt.Errorf("pool policy %q: want fixed or auto", c.Name)
	}
	resolve := func(f cluster.Flavor) cluster.Flavor {
		if f == (cluster.Flavor{}) {
			return def
		}
		return f
	}
	bounds := map[cluster.Flavor]policy.Bounds{}
	maxGiven := map[cluster.Flavor]bool{}
	for f, n := range c.Min {
		b := bounds[resolve(f)]
		b.Min = n
		bounds[resolve(f)] = b
	}
	for f, n := range c.Max {
		b := bounds[resolve(f)]
		b.Max = n
		bounds[resolve(f)] = b
		maxGiven[resolve(f)] = true
	}
	if len(bounds) == 0 {
		bounds[def] = policy.Bounds{}
	}
	for f, b := range bounds {
		if !slices.Contains(versions, f.K8sVersion) {
			return nil, fmt.Errorf("pool policy auto: flavor %s: version %s is not offered (%s)", f, f.K8sVersion, strings.Join(versions, ", "))
		}
		if !maxGiven[f] {
			b.Max = max(b.Min, DefaultAutoMax)
		}
		if b.Min > b.Max {
			return nil, fmt.Errorf("pool policy auto: flavor %s: --pool-min %d is above --pool-max %d", f, b.Min, b.Max)
		}
		bounds[f] = b
	}
	a, err := policy.NewAuto(policy.AutoConfig{
		Flavors: bounds, ServiceLevel: c.ServiceLevel, ReadyPrior: c.ReadyPrior, Schedules: c.Schedules,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// paidUntil is the billing of backend's members: Hetzner bills every
// started server hour from the server's creation; the member's record is
// created just before its server (and a rebuild keeps the server), so its
// created_at stands in for the server's creation, a few seconds early: a
// retirement timed from it reaches the cloud before the hour ends. Other
// backends bill nothing by the hour.
func paidUntil(backend string) func(cluster.Member, time.Time) (time.Time, bool) {
	if backend != "hetzner" {
		return nil
	}
	return func(m cluster.Member, now time.Time) (time.Time, bool) {
		return cost.PaidHourEnd(m.CreatedAt, now), true
	}
}
