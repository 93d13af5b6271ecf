package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/metrics"
	"github.com/smek/action/internal/sqlite"
)

var costFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

var costModel = cost.Model{Hourly: map[string]float64{"ccx33": 0.125}, SnapshotGBMonth: 7.3,
	ServerTypes: map[string]string{cluster.SizeMid: "ccx33"}}

// usageStore answers from a fixed table per window length and records the
// windows it was asked for.
type usageStore struct {
	byLength map[time.Duration][]cost.Usage
	asked    [][2]time.Time
	err      error
}

func (s *usageStore) PoolUsage(_ context.Context, from, to time.Time) ([]cost.Usage, error) {
	s.asked = append(s.asked, [2]time.Time{from, to})
	return s.byLength[to.Sub(from)], s.err
}

func TestPoolCostGauges(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	store := &usageStore{byLength: map[time.Duration][]cost.Usage{
		24 * time.Hour: {{Flavor: costFlavor, SnapshotGBHours: 20,
			Hours: map[cost.Category]float64{cost.Busy: 10, cost.Idle: 2.5, cost.Building: 0.5, cost.Hibernated: 4}}},
		// Three servers busy and one idle over the last minute.
		time.Minute: {{Flavor: costFlavor, Hours: map[cost.Category]float64{cost.Busy: 3.0 / 60, cost.Idle: 1.0 / 60}}},
	}}
	m := metrics.New(metrics.Options{})
	m.RegisterPoolCost(store, costModel, func() time.Time { return now }, nil)
	want := `
# HELP smek_pool_cost_euros What the pool's servers and snapshots cost over the last 24 hours by flavor and category, in euros without VAT, at the configured prices.
# TYPE smek_pool_cost_euros gauge
smek_pool_cost_euros{category="building",flavor="1.36.3/1-mid/baseline"} 0.0625
smek_pool_cost_euros{category="busy",flavor="1.36.3/1-mid/baseline"} 1.25
smek_pool_cost_euros{category="hibernated",flavor="1.36.3/1-mid/baseline"} 0.2
smek_pool_cost_euros{category="idle",flavor="1.36.3/1-mid/baseline"} 0.3125
smek_pool_cost_euros{category="stopped",flavor="1.36.3/1-mid/baseline"} 0
# HELP smek_pool_cost_rate_euros_per_hour What the pool costs per hour now (averaged over the last minute) by flavor, in euros without VAT.
# TYPE smek_pool_cost_rate_euros_per_hour gauge
smek_pool_cost_rate_euros_per_hour{flavor="1.36.3/1-mid/baseline"} 0.5
# HELP smek_pool_cost_scrape_ok 1 when the pool's usage could be read from the database.
# TYPE smek_pool_cost_scrape_ok gauge
smek_pool_cost_scrape_ok 1
# HELP smek_pool_server_hours Pool server hours over the last 24 hours by flavor and category (busy, idle, stopped, building, hibernated).
# TYPE smek_pool_server_hours gauge
smek_pool_server_hours{category="building",flavor="1.36.3/1-mid/baseline"} 0.5
smek_pool_server_hours{category="busy",flavor="1.36.3/1-mid/baseline"} 10
smek_pool_server_hours{category="hibernated",flavor="1.36.3/1-mid/baseline"} 4
smek_pool_server_hours{category="idle",flavor="1.36.3/1-mid/baseline"} 2.5
smek_pool_server_hours{category="stopped",flavor="1.36.3/1-mid/baseline"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "smek_pool_cost_euros", "smek_pool_cost_rate_euros_per_hour",
		"smek_pool_cost_scrape_ok", "smek_pool_server_hours"); err != nil {
		t.Error(err)
	}
	if len(store.asked) != 2 || !store.asked[0][1].Equal(now) || !store.asked[0][0].Equal(now.Add(-24*time.Hour)) {
		t.Errorf("asked for windows %v, want the 24 hours and the minute before %s", store.asked, now)
	}
}

func TestPoolCostGaugesReportStoreFailure(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.RegisterPoolCost(&usageStore{err: errors.New("database is locked")}, costModel, time.Now, nil)
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_pool_cost_scrape_ok 1 when the pool's usage could be read from the database.
# TYPE smek_pool_cost_scrape_ok gauge
smek_pool_cost_scrape_ok 0
`), "smek_pool_cost_scrape_ok", "smek_pool_server_hours"); err != nil {
		t.Error(err)
	}
}

// TestPoolCostGaugesFromSQLite scrapes the gauges over a real database: a
// member ready for two hours, then busy for one.
func TestPoolCostGaugesFromSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	db.Clock = clock
	mem, err := db.CreateMember(ctx, "hetzner", costFlavor)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after time.Duration
		to    cluster.MemberState
	}{{0, cluster.MemberReady}, {2 * time.Hour, cluster.MemberClaimed}} {
		clock.Advance(step.after)
		if err := db.SetMemberState(ctx, mem.ID, step.to, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	m := metrics.New(metrics.Options{})
	m.RegisterPoolCost(db, costModel, clock.Now, nil)
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP smek_pool_cost_rate_euros_per_hour What the pool costs per hour now (averaged over the last minute) by flavor, in euros without VAT.
# TYPE smek_pool_cost_rate_euros_per_hour gauge
smek_pool_cost_rate_euros_per_hour{flavor="1.36.3/1-mid/baseline"} 0.125
# HELP smek_pool_server_hours Pool server hours over the last 24 hours by flavor and category (busy, idle, stopped, building, hibernated).
# TYPE smek_pool_server_hours gauge
smek_pool_server_hours{category="building",flavor="1.36.3/1-mid/baseline"} 0
smek_pool_server_hours{category="busy",flavor="1.36.3/1-mid/baseline"} 1
smek_pool_server_hours{category="hibernated",flavor="1.36.3/1-mid/baseline"} 0
smek_pool_server_hours{category="idle",flavor="1.36.3/1-mid/baseline"} 2
smek_pool_server_hours{category="stopped",flavor="1.36.3/1-mid/baseline"} 0
`), "smek_pool_server_hours", "smek_pool_cost_rate_euros_per_hour"); err != nil {
		t.Error(err)
	}
}
