package sim

import (
	"os"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool/policy"
)

func TestClairvoyantReusesServersWithinTheirPaidHour(t *testing.T) {
	rows := []Row{
		{Line: 2, CreatedAt: t0, Lifetime: 10 * time.Minute},
		{Line: 3, CreatedAt: t0.Add(5 * time.Minute), Lifetime: 10 * time.Minute},  // the first is busy: a second server
		{Line: 4, CreatedAt: t0.Add(20 * time.Minute), Lifetime: 50 * time.Minute}, // both free, each adds an hour as a new server would: the one whose paid hour ends first
		{Line: 5, CreatedAt: t0.Add(30 * time.Minute), Lifetime: 20 * time.Minute}, // the other, inside its paid hour
		{Line: 6, CreatedAt: t0.Add(3 * time.Hour), Lifetime: time.Minute},         // every paid hour is over: a new server
	}
	res, err := Clairvoyant(rows, testConfig(policy.Fixed{}))
	if err != nil {
		t.Fatal(err)
	}
	// Servers: A (t0; rows 2 and 4: until t0+70m, 2 h), B (t0+5m; rows 3
	// and 5: until t0+50m, 1 h), C (t0+3h, 1 h): 4 paid hours.
	if res.ServersCreated != 3 || res.PaidServerHours != 4 || res.WarmRatio != 1 || res.Creates != 5 {
		t.Fatalf("servers %d paid %v h warm %v creates %d: want 3 servers, 4 h, all warm, 5 creates", res.ServersCreated, res.PaidServerHours, res.WarmRatio, res.Creates)
	}
	busy := (10 + 10 + 50 + 20 + 1) * time.Minute
	if !near(res.BusyServerHours, busy.Hours()) || !near(res.IdleServerHours, 4-busy.Hours()) || res.CostEUR != 2 {
		t.Errorf("busy %v idle %v cost %v: want %v, %v, 2.00 €", res.BusyServerHours, res.IdleServerHours, res.CostEUR, busy.Hours(), 4-busy.Hours())
	}
}

// TestRunAccountsEveryPaidHour: on a whole trace, every paid server hour
// is busy, idle or building, for a fixed pool, auto and the clairvoyant
// reference alike; and no policy that waits for servers to boot pays
// less than the clairvoyant reference.
func TestRunAccountsEveryPaidHour(t *testing.T) {
	f, err := os.Open("testdata/weekday-ci.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	auto, err := policy.NewAuto(policy.AutoConfig{Flavors: map[cluster.Flavor]policy.Bounds{testFlavor: {Max: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Clairvoyant(rows, testConfig(policy.Fixed{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []policy.Policy{fixedPolicy(2), auto} {
		cfg := testConfig(p)
		cfg.CreateTime, cfg.RebuildTime = DefaultCreateTime, DefaultRebuildTime
		res, err := Run(rows, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if sum := res.BusyServerHours + res.IdleServerHours + res.BuildingServerHours; sum < res.PaidServerHours-1e-6 || sum > res.PaidServerHours+1e-6 {
			t.Errorf("%s: busy + idle + building = %v h, paid %v h", res.Policy, sum, res.PaidServerHours)
		}
		if res.PaidServerHours < ref.PaidServerHours {
			t.Errorf("%s: paid %v h, less than the clairvoyant reference's %v h", res.Policy, res.PaidServerHours, ref.PaidServerHours)
		}
	}
	if sum := ref.BusyServerHours + ref.IdleServerHours; sum < ref.PaidServerHours-1e-6 || sum > ref.PaidServerHours+1e-6 {
		t.Errorf("clairvoyant: busy + idle = %v h, paid %v h", sum, ref.PaidServerHours)
	}
}
