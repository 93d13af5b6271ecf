package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool/policy"
	"github.com/smek/action/internal/server"
)

// poolPolicyFlags are serve's flags of the pool's policy.
type poolPolicyFlags struct {
	policy       string
	min, max     flavorCounts
	serviceLevel float64
	readyPrior   time.Duration
	schedules    scheduleList
}

func (pf *poolPolicyFlags) register(fs *flag.FlagSet) {
	pf.min.flag, pf.max.flag = "pool-min", "pool-max"
	fs.StringVar(&pf.policy, "pool-policy", "", "how the warm pool is sized: fixed (--pool-size) or auto (from the arrival rate and the measured time to ready); default fixed for the local backend, auto for hetzner")
	fs.Var(&pf.min, "pool-min", "auto: least ready clusters of a flavor: `N` for the default flavor or FLAVOR=N (e.g. 1.36.3/1-mid/privileged=1); repeatable, or comma-separated (default 0)")
	fs.Var(&pf.max, "pool-max", fmt.Sprintf("auto: most ready clusters of a flavor: `N` or FLAVOR=N as for --pool-min (default the larger of its min and %d)", server.DefaultAutoMax))
	fs.Float64Var(&pf.serviceLevel, "pool-service-level", 0.99, "auto: share of creates that should find a ready cluster, above 0 and at most 0.9999")
	fs.DurationVar(&pf.readyPrior, "pool-ready-prior", time.Minute, "auto: time a new cluster is assumed to take to become ready until one was measured")
	fs.Var(&pf.schedules, "pool-schedule", "auto: raise a minimum on a schedule: `min=N,cron=EXPR,for=DURATION[,flavor=FLAVOR][,name=NAME]`, e.g. min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h; repeatable (separate several with ; in SMEK_POOL_SCHEDULE)")
}

// config validates the flags; given says which flags were set (on the
// command line or in the environment).
func (pf *poolPolicyFlags) config(backend string, given map[string]bool) (server.PoolPolicyConfig, error) {
	c := server.PoolPolicyConfig{
		Name: pf.policy, Min: pf.min.m, Max: pf.max.m,
		ServiceLevel: pf.serviceLevel, ReadyPrior: pf.readyPrior, Schedules: pf.schedules.s,
	}
	switch pf.policy {
	case "", "fixed", "auto":
	default:
		return c, fmt.Errorf("%w: --pool-policy %q: want fixed or auto", errUsage, pf.policy)
	}
	name := c.PolicyName(backend)
	if name == "fixed" {
		for _, f := range []string{"pool-min", "pool-max", "pool-schedule", "pool-service-level", "pool-ready-prior"} {
			if given[f] {
				return c, fmt.Errorf("%w: --%s sizes the auto policy; the pool's policy is fixed (--pool-policy auto to use it)", errUsage, f)
			}
		}
	} else {
		for _, f := range []string{"pool-size", "pool-size-privileged"} {
			if given[f] {
				return c, fmt.Errorf("%w: --%s sizes the fixed policy; the pool's policy is auto (use --pool-min and --pool-max, or --pool-policy fixed)", errUsage, f)
			}
		}
	}
	if !(pf.serviceLevel > 0 && pf.serviceLevel <= 0.9999) {
		return c, fmt.Errorf("%w: --pool-service-level %v: want above 0 and at most 0.9999, e.g. 0.99", errUsage, pf.serviceLevel)
	}
	if pf.readyPrior <= 0 || pf.readyPrior > time.Hour {
		return c, fmt.Errorf("%w: --pool-ready-prior %s: want above 0 and at most 1h, e.g. 60s", errUsage, pf.readyPrior)
	}
	for f, n := range pf.max.m {
		if n < 1 {
			return c, fmt.Errorf("%w: --pool-max %s=%d: want at least 1", errUsage, flavorName(f), n)
		}
		if lo, ok := pf.min.m[f]; ok && lo > n {
			return c, fmt.Errorf("%w: --pool-min %s=%d is above --pool-max %d", errUsage, flavorName(f), lo, n)
		}
	}
	return c, nil
}

func flavorName(f cluster.Flavor) string {
	if f == (cluster.Flavor{}) {
		return "(default flavor)"
	}
	return f.String()
}

// maxPoolCount bounds --pool-min and --pool-max: a typo, not a pool.
const maxPoolCount = 1000

// flavorCounts is a repeatable flag of counts per flavor: "N" for the
// default flavor (the zero Flavor), "FLAVOR=N", or several separated by
// commas.
type flavorCounts struct {
	flag string
	m    map[cluster.Flavor]int
}

func (c *flavorCounts) String() string {
	if c == nil || len(c.m) == 0 {
		return ""
	}
	var parts []string
	for f, n := range c.m {
		if f == (cluster.Flavor{}) {
			parts = append(parts, strconv.Itoa(n))
		} else {
			parts = append(parts, f.String()+"="+strconv.Itoa(n))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (c *flavorCounts) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		var f cluster.Flavor
		num := part
		if name, n, ok := strings.Cut(part, "="); ok {
			var err error
			if f, err = cluster.ParseFlavor(name); err != nil {
				return fmt.Errorf("--%s %q: %w", c.flag, part, err)
			}
			num = n
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > maxPoolCount {
			return fmt.Errorf("--%s %q: want N or FLAVOR=N with N from 0 to %d", c.flag, part, maxPoolCount)
		}
		if _, dup := c.m[f]; dup {
			return fmt.Errorf("--%s: %s given twice", c.flag, flavorName(f))
		}
		if c.m == nil {
			c.m = map[cluster.Flavor]int{}
		}
		c.m[f] = n
	}
	return nil
}

// scheduleList is the repeatable --pool-schedule; one value may hold
// several schedules separated by ";" (the environment's only way).
type scheduleList struct{ s []policy.Schedule }

func (l *scheduleList) String() string {
	if l == nil {
		return ""
	}
	var parts []string
	for _, s := range l.s {
		parts = append(parts, s.Name)
	}
	return strings.Join(parts, ";")
}

func (l *scheduleList) Set(v string) error {
	for _, spec := range strings.Split(v, ";") {
		sc, err := policy.ParseSchedule(strings.TrimSpace(spec))
		if err != nil {
			return fmt.Errorf("--pool-schedule: %w", err)
		}
		l.s = append(l.s, sc)
	}
	return nil
}
