package sim

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/pool/policy"
)

var testFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

func fixedPolicy(n int) policy.Fixed { return policy.Fixed{testFlavor: n} }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testConfig: creates take exactly a minute, rebuilds 30 s, a server
// hour costs 0.5 €.
func testConfig(p policy.Policy) Config {
	return Config{
		Policy: p, Flavor: testFlavor, CreateTime: Const(time.Minute), RebuildTime: Const(30 * time.Second),
		Model: cost.Model{Hourly: map[string]float64{"ccx33": 0.5}, ServerTypes: map[string]string{cluster.SizeMid: "ccx33"}},
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRunOneWarmCreate(t *testing.T) {
	rows := []Row{{Line: 2, CreatedAt: t0, Lifetime: 10 * time.Minute}}
	res, err := Run(rows, testConfig(fixedPolicy(1)))
	if err != nil {
		t.Fatal(err)
	}
	// The pool starts 15 min early and has its member ready after a
	// minute; the create claims it (50 ms) and lives 10 min. The claim
	// leaves no member ready: a second is created at once. The released
	// member is above the target, but its paid hour has 35 min to run: it
	// is rebuilt (30 s) and kept ready until Plan retires it 5 min before
	// that hour ends; the simulation ends then.
	if res.Creates != 1 || res.WarmRatio != 1 || res.WaitMaxS != 0.05 || res.WaitP50S != 0.05 {
		t.Errorf("creates %d warm %v wait p50 %v max %v, want 1 warm create waiting 0.05 s", res.Creates, res.WarmRatio, res.WaitP50S, res.WaitMaxS)
	}
	busy := (10*time.Minute + 50*time.Millisecond).Hours()
	building := (2*time.Minute + 30*time.Second).Hours()
	// Idle: the ready time, and the unused rest of the two paid hours.
	idle := 2 - busy - building
	if !near(res.BusyServerHours, busy) || !near(res.IdleServerHours, idle) || !near(res.BuildingServerHours, building) {
		t.Errorf("busy %v idle %v building %v, want %v %v %v", res.BusyServerHours, res.IdleServerHours, res.BuildingServerHours, busy, idle, building)
	}
	if !near(res.IdleOverhead, idle/busy) {
		t.Errorf("idle overhead %v, want %v", res.IdleOverhead, idle/busy)
	}
	if res.ServersCreated != 2 || res.Rebuilds != 1 || res.PaidServerHours != 2 || res.CostEUR != 1 {
		t.Errorf("servers %d rebuilds %d paid %v h cost %v, want 2 servers, 1 rebuild, 2 h paid, 1.00 €", res.ServersCreated, res.Rebuilds, res.PaidServerHours, res.CostEUR)
	}
	// Two provisions (2 + image list 1 each, 15 min apart), a rebuild
	// (3 + 1), two destroys, inventory lists every 10 min.
	if res.PeakRequestsPerHour != 15 {
		t.Errorf("peak requests per hour %d, want 15", res.PeakRequestsPerHour)
	}
	if want := t0.Add(-15 * time.Minute); !res.Start.Equal(want) {
		t.Errorf("start %v, want %v", res.Start, want)
	}
}

func TestRunRebuildsTheReleasedMember(t *testing.T) {
	rows := []Row{{Line: 2, CreatedAt: t0, Lifetime: 10 * time.Minute}}
	cfg := testConfig(fixedPolicy(1))
	cfg.MaxPerFlavor = 1 // no second member while the first is claimed
	res, err := Run(rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ServersCreated != 1 || res.Rebuilds != 1 || res.WarmRatio != 1 {
		t.Errorf("servers %d rebuilds %d warm %v, want one server rebuilt once", res.ServersCreated, res.Rebuilds, res.WarmRatio)
	}
	building := (90 * time.Second).Hours() // create 60 s, rebuild 30 s
	// Idle: 14 min ready before the claim, and the rest of the paid hour.
	busy := (10*time.Minute + 50*time.Millisecond).Hours()
	if !near(res.BuildingServerHours, building) || !near(res.IdleServerHours, 1-busy-building) {
		t.Errorf("building %v idle %v", res.BuildingServerHours, res.IdleServerHours)
	}
	if want := t0.Add(10*time.Minute + 50*time.Millisecond + 30*time.Second); !res.End.Equal(want) {
		t.Errorf("end %v, want %v (the rebuild's end)", res.End, want)
	}
	// provision 2 + 1, rebuild 3 + 1, destroy 1, inventory 3.
	if res.PaidServerHours != 1 || res.PeakRequestsPerHour != 11 {
		t.Errorf("paid %v h, peak requests %d; want 1 h, 11", res.PaidServerHours, res.PeakRequestsPerHour)
	}
}

func TestRunColdCreateWaitsForTheCreate(t *testing.T) {
	rows := []Row{{Line: 2, CreatedAt: t0, Lifetime: 10 * time.Minute}}
	res, err := Run(rows, testConfig(fixedPolicy(0)))
	if err != nil {
		t.Fatal(err)
	}
	if res.WarmRatio != 0 || res.WaitMaxS != 60.05 {
		t.Errorf("warm %v wait %v s, want a cold create waiting the create's 60 s and the claim", res.WarmRatio, res.WaitMaxS)
	}
	// Released above the target of 0 with most of its paid hour left:
	// rebuilt and kept ready until shortly before that hour ends. What
	// is not busy or building of the paid hour is idle.
	if res.ServersCreated != 1 || res.Rebuilds != 1 || !near(res.IdleServerHours, 1-res.BusyServerHours-res.BuildingServerHours) || res.PaidServerHours != 1 {
		t.Errorf("servers %d rebuilds %d idle %v paid %v", res.ServersCreated, res.Rebuilds, res.IdleServerHours, res.PaidServerHours)
	}
}

func TestRunBillsEveryStartedHour(t *testing.T) {
	rows := []Row{{Line: 2, CreatedAt: t0, Lifetime: 61 * time.Minute}}
	res, err := Run(rows, testConfig(fixedPolicy(0)))
	if err != nil {
		t.Fatal(err)
	}
	// Created at t0, deleted at t0 + 1 min + 50 ms + 61 min: 2 started hours.
	if res.PaidServerHours != 2 || res.CostEUR != 1 {
		t.Errorf("paid %v h, %v €; want 2 h, 1.00 €", res.PaidServerHours, res.CostEUR)
	}
	if !near(res.BusyServerHours, (61*time.Minute + 50*time.Millisecond).Hours()) {
		t.Errorf("busy %v h", res.BusyServerHours)
	}
}

func TestRunParallelBoundsProvisions(t *testing.T) {
	rows := []Row{
		{Line: 2, CreatedAt: t0, Lifetime: 10 * time.Minute},
		{Line: 3, CreatedAt: t0, Lifetime: 10 * time.Minute},
		{Line: 4, CreatedAt: t0, Lifetime: 10 * time.Minute},
	}
	res, err := Run(rows, testConfig(fixedPolicy(0)))
	if err != nil {
		t.Fatal(err)
	}
	// Two provisions at once: the third create waits for a second minute.
	if res.WaitP50S != 60.05 || res.WaitMaxS != 120.05 || res.ServersCreated != 3 {
		t.Errorf("wait p50 %v max %v servers %d, want 60.05, 120.05, 3", res.WaitP50S, res.WaitMaxS, res.ServersCreated)
	}
}

func TestRunPrewarm(t *testing.T) {
	job := func(line int, queued, created time.Time) Row {
		return Row{Line: line, CreatedAt: created, QueuedAt: queued, Lifetime: 5 * time.Minute, Repository: "acme/shop", Workflow: "ci", Job: "e2e"}
	}
	rows := []Row{
		job(2, t0.Add(-time.Minute), t0),                                      // first time: nothing learned yet, cold
		job(3, t0.Add(90*time.Minute), t0.Add(91*time.Minute+30*time.Second)), // pre-warmed: hit, warm
		job(4, t0.Add(180*time.Minute), t0.Add(195*time.Minute)),              // pre-warm expires after 10 min: miss
		{Line: 5, CreatedAt: t0.Add(300 * time.Minute), QueuedAt: t0.Add(299 * time.Minute), Lifetime: time.Minute, Repository: "acme/shop", Workflow: "ci", Job: "lint"}, // never seen: not pre-warmed
	}
	cfg := testConfig(fixedPolicy(0))
	cfg.Prewarm, cfg.PrewarmFor = true, 10*time.Minute
	res, err := Run(rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.PrewarmHits != 1 || res.PrewarmMisses != 1 {
		t.Errorf("pre-warm hits %d misses %d, want 1 and 1", res.PrewarmHits, res.PrewarmMisses)
	}
	// Row 3 warm; row 4 finds the missed pre-warm's member still ready
	// (surplus, but kept until its paid hour ends) and is warm too; rows
	// 2 and 5 cold: the rows are more than an hour apart, so no server
	// of an earlier row is left for them.
	if res.WarmRatio != 0.5 {
		t.Errorf("warm ratio %v, want 0.5", res.WarmRatio)
	}
	cfg = testConfig(fixedPolicy(0))
	off, err := Run(rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if off.WarmRatio != 0 || off.PrewarmHits != 0 {
		t.Errorf("without pre-warming: warm ratio %v hits %d, want 0 and 0", off.WarmRatio, off.PrewarmHits)
	}
}

func TestRunIsDeterministic(t *testing.T) {
	f, err := os.Open("testdata/weekday-ci.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) Result {
		cfg := testConfig(fixedPolicy(2))
		cfg.CreateTime, cfg.RebuildTime, cfg.Seed = DefaultCreateTime, DefaultRebuildTime, seed
		res, err := Run(rows, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b, c := run(1), run(1), run(2)
	if a != b {
		t.Errorf("two runs with seed 1 differ:\n%+v\n%+v", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 gave the same result %+v", a)
	}
	if a.Creates != len(rows) {
		t.Errorf("%d creates, want %d", a.Creates, len(rows))
	}
}

func TestRunRefuses(t *testing.T) {
	if _, err := Run([]Row{{CreatedAt: t0, Lifetime: time.Minute}}, Config{}); err == nil {
		t.Error("no policy: no error")
	}
	if _, err := Run(nil, testConfig(fixedPolicy(1))); err == nil {
		t.Error("no rows: no error")
	}
}

func TestRunAutoScalesDownLazily(t *testing.T) {
	var rows []Row
	for i := range 3 {
		rows = append(rows, Row{Line: 2 + i, CreatedAt: t0, Lifetime: 5 * time.Minute})
	}
	rows = append(rows, Row{Line: 5, CreatedAt: t0.Add(5 * time.Hour), Lifetime: 5 * time.Minute})
	auto, err := policy.NewAuto(policy.AutoConfig{Flavors: map[cluster.Flavor]policy.Bounds{testFlavor: {Min: 0, Max: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(rows, testConfig(auto))
	if err != nil {
		t.Fatal(err)
	}
	// The burst finds the pool empty: its 3 cold creates make the target
	// 3, and pool.Plan provisions target + waiting = 6 servers, two at a
	// time (t0, t0+1m, t0+2m). Released after 5 min the 3 claimed ones
	// are surplus, but their paid hour has 50 min to run: they are
	// rebuilt and kept ready, not deleted. 5 min before that hour ends 5
	// of the 6 are retired (1 h each); the rate of the last 3 h keeps a
	// target of 1 until t0+3h, when the last one (created at t0+2m) is 2
	// min from the end of its 3rd hour and goes (3 h). The create at
	// t0+5h is cold: its target 1 + waiting 1 make 2 servers (1 h each).
	if res.ServersCreated != 8 || res.Rebuilds != 4 || res.Retired != 6 || res.PaidServerHours != 10 {
		t.Errorf("servers %d rebuilds %d retired %d paid %v h; want 8, 4, 6, 10", res.ServersCreated, res.Rebuilds, res.Retired, res.PaidServerHours)
	}
	if res.WarmRatio != 0 {
		t.Errorf("warm ratio %v, want 0: every create came to an empty pool", res.WarmRatio)
	}
	// A fixed pool of 0 also keeps each released server ready for the
	// rest of its paid hour, but builds nothing ahead: 4 servers, each
	// rebuilt once, 4 paid hours.
	fixed, err := Run(rows, testConfig(fixedPolicy(0)))
	if err != nil {
		t.Fatal(err)
	}
	if fixed.ServersCreated != 4 || fixed.Rebuilds != 4 || fixed.PaidServerHours != 4 || !near(fixed.IdleServerHours, 4-fixed.BusyServerHours-fixed.BuildingServerHours) {
		t.Errorf("fixed:0: servers %d rebuilds %d paid %v idle %v; want 4, 4, 4, paid - busy - building", fixed.ServersCreated, fixed.Rebuilds, fixed.PaidServerHours, fixed.IdleServerHours)
	}
}

func TestRunCapsPrewarms(t *testing.T) {
	// A job learned at t0, then queued 12 times at once.
	rows := []Row{{Line: 2, CreatedAt: t0, Lifetime: time.Minute, Repository: "acme/shop", Workflow: "ci", Job: "e2e"}}
	for i := range 12 {
		q := t0.Add(time.Hour)
		rows = append(rows, Row{Line: 3 + i, QueuedAt: q, CreatedAt: q.Add(2 * time.Minute), Lifetime: time.Minute, Repository: "acme/shop", Workflow: "ci", Job: "e2e"})
	}
	cfg := testConfig(fixedPolicy(0))
	cfg.Prewarm, cfg.PrewarmCap = true, 10
	res, err := Run(rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.PrewarmHits != 10 || res.PrewarmCapped != 2 || res.PrewarmMisses != 0 {
		t.Errorf("hits %d capped %d misses %d, want 10, 2, 0", res.PrewarmHits, res.PrewarmCapped, res.PrewarmMisses)
	}
}
