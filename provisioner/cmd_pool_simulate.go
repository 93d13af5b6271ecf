package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/pool/policy"
	"github.com/smek/action/internal/pool/sim"
	"github.com/smek/action/internal/server"
)

// simPolicy is one --policy of `pool simulate`: fixed:N or auto, with or
// without +prewarm, or the clairvoyant reference (sim.Clairvoyant).
type simPolicy struct {
	name        string // as written
	clairvoyant bool
	auto        bool
	size        int // fixed
	prewarm     bool
}

// maxSimPolicies bounds the --policy flags of one run.
const maxSimPolicies = 20

// maxFixedPool bounds fixed:N.
const maxFixedPool = 1000

// parseSimPolicy parses fixed:N, fixed:N+prewarm, auto, auto+prewarm or
// clairvoyant.
func parseSimPolicy(s string) (simPolicy, error) {
	p := simPolicy{name: s}
	base, ok := strings.CutSuffix(s, "+prewarm")
	p.prewarm = ok
	switch {
	case s == "clairvoyant":
		p.clairvoyant = true
	case base == "auto":
		p.auto = true
	case strings.HasPrefix(base, "fixed:"):
		n, err := strconv.Atoi(strings.TrimPrefix(base, "fixed:"))
		if err != nil || n < 0 || n > maxFixedPool {
			return p, fmt.Errorf("--policy %q: fixed:N wants a whole number N from 0 to %d", cluster.Truncate(s, 40), maxFixedPool)
		}
		p.size = n
	default:
		return p, fmt.Errorf("--policy %q: want fixed:N, fixed:N+prewarm, auto, auto+prewarm or clairvoyant", cluster.Truncate(s, 40))
	}
	return p, nil
}

// simPolicies is the repeatable --policy flag; one value may also list
// several, comma-separated (as SMEK_POLICY holds them).
type simPolicies []simPolicy

func (ps *simPolicies) String() string {
	names := make([]string, len(*ps))
	for i, p := range *ps {
		names[i] = p.name
	}
	return strings.Join(names, ",")
}

func (ps *simPolicies) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		p, err := parseSimPolicy(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		if len(*ps) >= maxSimPolicies {
			return fmt.Errorf("--policy: at most %d policies in one run", maxSimPolicies)
		}
		*ps = append(*ps, p)
	}
	return nil
}

// distFlag is a --create-time or --rebuild-time distribution.
type distFlag struct{ d *sim.Dist }

func (f distFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f distFlag) Set(s string) error {
	d, err := sim.ParseDist(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// cmdPoolSimulate replays a demand trace against the pool's policies.
func cmdPoolSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pool simulate", "Replay a demand trace (CSV: created_at, minutes[, flavor, repository, workflow, job, queued_at]) against the pool's policies on simulated time, and print per policy the warm ratio, the waits, busy and idle server-hours and the cost (docs/pool.md).", stderr)
	tracePath := fs.String("trace", "", "the demand trace, a CSV file (required)")
	var policies simPolicies
	fs.Var(&policies, "policy", "a policy to run, repeatable: fixed:N, fixed:N+prewarm, auto, auto+prewarm, or clairvoyant (a reference: instant servers, every create known in advance) (default fixed:2)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	seed := fs.Uint64("seed", 1, "seed of the random durations (same seed, same result)")
	createTime, rebuildTime := sim.DefaultCreateTime, sim.DefaultRebuildTime
	fs.Var(distFlag{&createTime}, "create-time", "distribution of a new server's time to ready: const:D, uniform:D1-D2 or lognormal:median=D,p95=D")
	fs.Var(distFlag{&rebuildTime}, "rebuild-time", "distribution of a released server's rebuild to ready")
	poolMin, poolMax := &flavorCounts{flag: "pool-min"}, &flavorCounts{flag: "pool-max"}
	fs.Var(poolMin, "pool-min", "auto: least ready clusters of a flavor, as serve's: `N` for every flavor of the trace or FLAVOR=N; repeatable, or comma-separated (default 0)")
	fs.Var(poolMax, "pool-max", fmt.Sprintf("auto: most ready clusters of a flavor: `N` or FLAVOR=N as for --pool-min (default the larger of its min and %d)", server.DefaultAutoMax))
	serviceLevel := fs.Float64("pool-service-level", 0.99, "auto: share of creates that should find a ready cluster, above 0 and at most 0.9999, as serve's")
	readyPrior := fs.Duration("pool-ready-prior", time.Minute, "auto: time a new cluster is assumed to take to become ready until one was measured, as serve's")
	var schedules scheduleList
	fs.Var(&schedules, "pool-schedule", "auto: raise a minimum on a schedule, as serve's: `min=N,cron=EXPR,for=DURATION[,flavor=FLAVOR][,name=NAME]`; repeatable (separate several with ; in SMEK_POOL_SCHEDULE)")
	parallel := fs.Int("provision-parallel", 2, "how many clusters are booted or cleaned at once, as serve's")
	maxMembers := fs.Int("max-pool-members", 0, "bound on the clusters of one flavor, claimed ones included (0: none), as serve's")
	prewarmTTL := fs.Duration("prewarm-ttl", githubapp.DefaultPrewarmTTL, "how long a pre-warm waits for its job's create before it is released, as serve's")
	prewarmCap := fs.Int("prewarm-cap", githubapp.DefaultPrewarmCap, "bound on the pre-warms under way at once (a trace is one installation), as serve's")
	prices := addCostFlags(fs)
	flavorFlag := fs.String("flavor", cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}.String(), "flavor of trace rows that name none")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...)) }
	if fs.NArg() > 0 {
		return usage("pool simulate takes no arguments, got %q", fs.Arg(0))
	}
	if *tracePath == "" {
		return usage("--trace is required: a CSV file of creates (see docs/pool.md)")
	}
	if len(policies) == 0 {
		policies = simPolicies{{name: "fixed:2", size: 2}}
	}
	switch {
	case !(*serviceLevel > 0 && *serviceLevel <= 0.9999):
		return usage("--pool-service-level %v: want above 0 and at most 0.9999, e.g. 0.99", *serviceLevel)
	case *readyPrior <= 0 || *readyPrior > time.Hour:
		return usage("--pool-ready-prior %s: want above 0 and at most 1h, e.g. 60s", *readyPrior)
	case *parallel < 1 || *parallel > 100:
		return usage("--provision-parallel %d: want 1 to 100", *parallel)
	case *maxMembers < 0:
		return usage("--max-pool-members %d is negative", *maxMembers)
	case *prewarmTTL <= 0 || *prewarmTTL > maxPrewarmTTL:
		return usage("--prewarm-ttl must be more than 0 and at most %s, e.g. 15m, got %s", maxPrewarmTTL, *prewarmTTL)
	case *prewarmCap < 1 || *prewarmCap > maxPrewarmCap:
		return usage("--prewarm-cap must be 1 to %d, got %d", maxPrewarmCap, *prewarmCap)
	}
	defFlavor, err := cluster.ParseFlavor(*flavorFlag)
	if err != nil {
		return usage("--flavor: %v", err)
	}
	model := prices.model(cost.Default())
	if err := model.Check(); err != nil {
		return usage("%v", err)
	}
	f, err := os.Open(*tracePath)
	if err != nil {
		return usage("--trace: %v", err)
	}
	rows, err := sim.ParseTrace(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%w: --trace %s: %w", errUsage, *tracePath, err)
	}
	flavors := map[cluster.Flavor]bool{}
	for _, r := range rows {
		if r.HasFlavor {
			flavors[r.Flavor] = true
		} else {
			flavors[defFlavor] = true
		}
	}
	var results []sim.Result
	for _, p := range policies {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.clairvoyant {
			res, err := sim.Clairvoyant(rows, sim.Config{Flavor: defFlavor, Model: model})
			if err != nil {
				return fmt.Errorf("pool simulate: %s: %w", p.name, err)
			}
			results = append(results, res)
			continue
		}
		var pol policy.Policy
		if p.auto {
			bounds, err := simBounds(flavors, poolMin.m, poolMax.m)
			if err != nil {
				return usage("%v", err)
			}
			a, err := policy.NewAuto(policy.AutoConfig{Flavors: bounds, ServiceLevel: *serviceLevel, ReadyPrior: *readyPrior, Schedules: schedules.s})
			if err != nil {
				return usage("--policy %s: %v", p.name, err)
			}
			pol = a
		} else {
			fixed := policy.Fixed{}
			for fl := range flavors {
				fixed[fl] = p.size
			}
			pol = fixed
		}
		res, err := sim.Run(rows, sim.Config{
			Name: p.name, Policy: pol, Prewarm: p.prewarm, PrewarmFor: *prewarmTTL, PrewarmCap: *prewarmCap, Flavor: defFlavor,
			CreateTime: createTime, RebuildTime: rebuildTime, Parallel: *parallel, MaxPerFlavor: *maxMembers,
			Model: model, Seed: *seed,
		})
		if err != nil {
			return fmt.Errorf("pool simulate: %s: %w", p.name, err)
		}
		results = append(results, res)
	}
	if *asJSON {
		return printJSON(stdout, struct {
			Policies []sim.Result `json:"policies"`
		}{results})
	}
	first, last := rows[0].CreatedAt, rows[0].CreatedAt
	for _, r := range rows {
		first, last = minT(first, r.CreatedAt), maxT(last, r.CreatedAt)
	}
	fmt.Fprintf(stdout, "%d creates from %s to %s; create %s, rebuild %s, seed %d, %d at once.\n",
		len(rows), first.Format(time.RFC3339), last.Format(time.RFC3339), createTime, rebuildTime, *seed, *parallel)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "POLICY\tWARM\tWAIT P50\tP95\tMAX\tBUSY H\tIDLE H\tIDLE/BUSY\tBUILD H\tPAID H\tEUR\tSERVERS\tPEAK REQ/H\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.2fs\t%.2fs\t%.1fs\t%.1f\t%.1f\t%.1f%%\t%.1f\t%.0f\t%.2f\t%d\t%d\t\n",
			r.Policy, 100*r.WarmRatio, r.WaitP50S, r.WaitP95S, r.WaitMaxS, r.BusyServerHours, r.IdleServerHours,
			100*r.IdleOverhead, r.BuildingServerHours, r.PaidServerHours, r.CostEUR, r.ServersCreated, r.PeakRequestsPerHour)
	}
	return tw.Flush()
}

// simBounds are the auto policy's bounds for every flavor of the trace:
// a flavor's own --pool-min/--pool-max, else the one without a flavor,
// else 0 and the larger of the min and server.DefaultAutoMax.
func simBounds(flavors map[cluster.Flavor]bool, mins, maxs map[cluster.Flavor]int) (map[cluster.Flavor]policy.Bounds, error) {
	for _, given := range []map[cluster.Flavor]int{mins, maxs} {
		for f := range given {
			if f != (cluster.Flavor{}) && !flavors[f] {
				return nil, fmt.Errorf("--pool-min/--pool-max name flavor %s, which the trace never asks for", f)
			}
		}
	}
	out := map[cluster.Flavor]policy.Bounds{}
	for f := range flavors {
		lo, ok := mins[f]
		if !ok {
			lo = mins[cluster.Flavor{}]
		}
		hi, ok := maxs[f]
		if !ok {
			hi, ok = maxs[cluster.Flavor{}]
		}
		if !ok {
			hi = max(lo, server.DefaultAutoMax)
		}
		if hi < 1 || lo > hi {
			return nil, fmt.Errorf("flavor %s: --pool-min %d, --pool-max %d: want --pool-min <= --pool-max and --pool-max >= 1", f, lo, hi)
		}
		out[f] = policy.Bounds{Min: lo, Max: hi}
	}
	return out, nil
}

func minT(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxT(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
