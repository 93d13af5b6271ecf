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
)

// simPolicy is one --policy of `pool simulate`: fixed:N or auto, with or
// without +prewarm.
type simPolicy struct {
	name    string // as written
	auto    bool
	size    int // fixed
	prewarm bool
}

// maxSimPolicies bounds the --policy flags of one run.
const maxSimPolicies = 20

// maxFixedPool bounds fixed:N.
const maxFixedPool = 1000

// parseSimPolicy parses fixed:N, fixed:N+prewarm, auto or auto+prewarm.
func parseSimPolicy(s string) (simPolicy, error) {
	p := simPolicy{name: s}
	base, ok := strings.CutSuffix(s, "+prewarm")
	p.prewarm = ok
	switch {
	case base == "auto":
		p.auto = true
	case strings.HasPrefix(base, "fixed:"):
		n, err := strconv.Atoi(strings.TrimPrefix(base, "fixed:"))
		if err != nil || n < 0 || n > maxFixedPool {
			return p, fmt.Errorf("--policy %q: fixed:N wants a whole number N from 0 to %d", cluster.Truncate(s, 40), maxFixedPool)
		}
		p.size = n
	default:
		return p, fmt.Errorf("--policy %q: want fixed:N, fixed:N+prewarm, auto or auto+prewarm", cluster.Truncate(s, 40))
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

// scheduleFlags is the repeatable --pool-schedule flag.
type scheduleFlags []policy.Schedule

func (s *scheduleFlags) String() string {
	names := make([]string, len(*s))
	for i, sc := range *s {
		names[i] = sc.Name
	}
	return strings.Join(names, ";")
}

func (s *scheduleFlags) Set(v string) error {
	sc, err := policy.ParseSchedule(v)
	if err != nil {
		return fmt.Errorf("--pool-schedule: %w", err)
	}
	if len(*s) >= maxSimPolicies {
		return fmt.Errorf("--pool-schedule: at most %d schedules", maxSimPolicies)
	}
	*s = append(*s, sc)
	return nil
}

// cmdPoolSimulate replays a demand trace against the pool's policies.
func cmdPoolSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pool simulate", "Replay a demand trace (CSV: created_at, minutes[, flavor, repository, workflow, job, queued_at]) against the pool's policies on simulated time, and print per policy the warm ratio, the waits, busy and idle server-hours and the cost (docs/pool.md).", stderr)
	tracePath := fs.String("trace", "", "the demand trace, a CSV file (required)")
	var policies simPolicies
	fs.Var(&policies, "policy", "a policy to run, repeatable: fixed:N, fixed:N+prewarm, auto or auto+prewarm (default fixed:2)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	seed := fs.Uint64("seed", 1, "seed of the random durations (same seed, same result)")
	createTime, rebuildTime := sim.DefaultCreateTime, sim.DefaultRebuildTime
	fs.Var(distFlag{&createTime}, "create-time", "distribution of a new server's time to ready: const:D, uniform:D1-D2 or lognormal:median=D,p95=D")
	fs.Var(distFlag{&rebuildTime}, "rebuild-time", "distribution of a released server's rebuild to ready")
	poolMin := fs.Int("pool-min", 0, "auto: least ready clusters kept per flavor")
	poolMax := fs.Int("pool-max", 10, "auto: most ready clusters kept per flavor")
	var schedules scheduleFlags
	fs.Var(&schedules, "pool-schedule", "auto: raise the minimum while a cron schedule is active, repeatable: min=N,cron=EXPR,for=DURATION[,flavor=F][,name=NAME]")
	parallel := fs.Int("provision-parallel", 2, "how many clusters are booted or cleaned at once, as serve's")
	maxMembers := fs.Int("max-pool-members", 0, "bound on the clusters of one flavor, claimed ones included (0: none), as serve's")
	prewarmTTL := fs.Duration("prewarm-ttl", githubapp.DefaultPrewarmTTL, "how long a pre-warm waits for its job's create before it is released, as serve's")
	prewarmCap := fs.Int("prewarm-cap", githubapp.DefaultPrewarmCap, "bound on the pre-warms under way at once (a trace is one installation), as serve's")
	prices := fs.String("price", "", "server prices overriding the built-in list, TYPE=EUR_PER_HOUR, comma-separated (ccx33=0.0769)")
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
	case *poolMin < 0 || *poolMax < 1 || *poolMin > *poolMax:
		return usage("--pool-min %d, --pool-max %d: want 0 <= --pool-min <= --pool-max and --pool-max >= 1", *poolMin, *poolMax)
	case *poolMax > maxFixedPool:
		return usage("--pool-max %d is above %d", *poolMax, maxFixedPool)
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
	model := cost.Default()
	if *prices != "" {
		p, err := cost.ParsePrices(*prices)
		if err != nil {
			return usage("%v", err)
		}
		model = model.With(p, -1)
	}
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
		var pol policy.Policy
		if p.auto {
			bounds := map[cluster.Flavor]policy.Bounds{}
			for fl := range flavors {
				bounds[fl] = policy.Bounds{Min: *poolMin, Max: *poolMax}
			}
			a, err := policy.NewAuto(policy.AutoConfig{Flavors: bounds, Schedules: schedules})
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
