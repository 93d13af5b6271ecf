package sqlite

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
)

// TestPoolUsage replays a crafted history on a fake clock and checks the
// hours of each category in a window that cuts through it, including a
// member created and deleted within ten minutes (billed a full hour, the
// rest of it idle), events after the window, and a hibernated member.
func TestPoolUsage(t *testing.T) {
	ctx := context.Background()
	db := openClaimDB(t)
	clock := clockwork.NewFakeClockAt(claimT0)
	db.Clock = clock
	priv := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	ids := map[string]string{}
	type step struct {
		at     time.Duration
		member string
		to     cluster.MemberState
		data   string
	}
	steps := []step{
		{0, "a", cluster.MemberCreating, ""},
		{0, "d", cluster.MemberCreating, ""},
		{0, "e", cluster.MemberCreating, ""},
		{time.Minute, "d", cluster.MemberReady, ""},
		{2 * time.Minute, "d", cluster.MemberClaimed, ""},
		{3 * time.Minute, "d", cluster.MemberStopped, ""},
		{5 * time.Minute, "e", cluster.MemberDeleted, ""},
		{10 * time.Minute, "a", cluster.MemberReady, ""},
		{20 * time.Minute, "d", cluster.MemberHibernating, ""},
		{30 * time.Minute, "d", cluster.MemberHibernated, ""}, // a snapshot of 10 GB
		// The window starts at 1h.
		{90 * time.Minute, "b", cluster.MemberCreating, ""},
		{95 * time.Minute, "b", cluster.MemberReady, ""},
		{100 * time.Minute, "b", cluster.MemberDeleted, ""},
		{2 * time.Hour, "a", cluster.MemberClaimed, ""},
		{3 * time.Hour, "a", cluster.MemberStopped, ""},
		{210 * time.Minute, "a", cluster.MemberClaimed, ""},
		{4 * time.Hour, "a", cluster.MemberDirty, ""},
		{4 * time.Hour, "a", cluster.MemberRebuilding, ""},
		{255 * time.Minute, "a", cluster.MemberReady, ""},
		{290 * time.Minute, "c", cluster.MemberCreating, ""},
		// The window ends at 5h: what follows is not counted.
		{6 * time.Hour, "c", cluster.MemberReady, ""},
		{7 * time.Hour, "a", cluster.MemberClaimed, ""},
	}
	for _, s := range steps {
		clock.Advance(claimT0.Add(s.at).Sub(clock.Now()))
		if s.to == cluster.MemberCreating {
			f := claimFlavor
			if s.member == "d" {
				f = priv
			}
			m, err := db.CreateMember(ctx, "hetzner", f)
			if err != nil {
				t.Fatal(err)
			}
			ids[s.member] = m.ID
			continue
		}
		if s.to == cluster.MemberHibernated {
			if err := db.HibernateMember(ctx, ids[s.member], nil, 10); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := db.SetMemberState(ctx, ids[s.member], s.to, nil, ""); err != nil {
			t.Fatalf("%s at %s → %s: %v", s.member, s.at, s.to, err)
		}
	}
	from, to := claimT0.Add(time.Hour), claimT0.Add(5*time.Hour)
	want := map[cluster.Flavor]map[cost.Category]float64{
		claimFlavor: {
			// a: 2h–3h, 3h30–4h
			cost.Busy: 1.5,
			// a: 1h–2h, 4h15–5h; b: 5 min ready, then 50 min of its
			// paid hour after the delete at 1h40 (paid until 2h30)
			cost.Idle: 1.75 + 55.0/60,
			// a: 3h–3h30
			cost.Stopped: 0.5,
			// a: 4h–4h15; b: 5 min creating; c: 4h50–5h
			cost.Building: 0.25 + 5.0/60 + 10.0/60,
		},
		priv: {cost.Hibernated: 4},
	}
	check := func(name string) {
		t.Helper()
		got, err := db.PoolUsage(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%s: got %d flavors (%v), want 2", name, len(got), got)
		}
		for _, u := range got {
			w, ok := want[u.Flavor]
			if !ok {
				t.Fatalf("%s: unexpected flavor %s", name, u.Flavor)
			}
			for _, c := range cost.Categories() {
				if math.Abs(u.Hours[c]-w[c]) > 1e-9 {
					t.Errorf("%s: %s %s: got %.4f h, want %.4f h", name, u.Flavor, c, u.Hours[c], w[c])
				}
			}
			wantGB := 0.0
			if u.Flavor == priv {
				wantGB = 40
			}
			if math.Abs(u.SnapshotGBHours-wantGB) > 1e-9 {
				t.Errorf("%s: %s snapshot GB-hours: got %v, want %v", name, u.Flavor, u.SnapshotGBHours, wantGB)
			}
		}
	}
	check("all events")
	// Events older than the window may be pruned: the states at its
	// start come from the from-states of the later ones, or the members'
	// current states.
	if n, err := db.PruneEvents(ctx, from); err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	check("pruned events")
}

func TestPoolUsageEmptyWindow(t *testing.T) {
	db := openClaimDB(t)
	readyServers(t, db, "local", claimFlavor, 1)
	got, err := db.PoolUsage(context.Background(), claimT0, claimT0)
	if err != nil || len(got) != 0 {
		t.Errorf("an empty window: got %v, %v", got, err)
	}
}

func TestRecordCostModel(t *testing.T) {
	ctx := context.Background()
	db := openClaimDB(t)
	if _, ok, err := db.RecordedCostModel(ctx); ok || err != nil {
		t.Fatalf("a fresh database: got ok=%v, %v", ok, err)
	}
	m := cost.Default().With(map[string]float64{"ccx33": 0.09}, 0.02)
	for _, src := range []string{"built-in list prices", "Hetzner /pricing at fsn1 + --price"} {
		if err := db.RecordCostModel(ctx, m, src); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := db.RecordedCostModel(ctx)
	if err != nil || !ok {
		t.Fatalf("got ok=%v, %v", ok, err)
	}
	if got.Source != "Hetzner /pricing at fsn1 + --price" || !got.RecordedAt.Equal(claimT0) {
		t.Errorf("got %q at %s, want the last record at %s", got.Source, got.RecordedAt, claimT0)
	}
	if got.Model.Hourly["ccx33"] != 0.09 || got.Model.Hourly["cx22"] != 0.006 || got.Model.SnapshotGBMonth != 0.02 || got.Model.ServerTypes["1-mid"] != "ccx33" {
		t.Errorf("the model did not survive the round trip: %+v", got.Model)
	}
}

// BenchmarkPoolUsage measures the scrape's query over a busy day: 500
// members, each created, made ready, claimed, released and rebuilt over
// the 24 hours, one every ~3 minutes.
func BenchmarkPoolUsage(b *testing.B) {
	ctx := context.Background()
	db := openClaimDB(b)
	clock := clockwork.NewFakeClockAt(claimT0)
	db.Clock = clock
	for range 500 {
		m, err := db.CreateMember(ctx, "hetzner", claimFlavor)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []cluster.MemberState{cluster.MemberReady, cluster.MemberClaimed, cluster.MemberDirty, cluster.MemberRebuilding, cluster.MemberReady} {
			clock.Advance(30 * time.Second)
			if err := db.SetMemberState(ctx, m.ID, s, nil, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	to := clock.Now()
	b.ResetTimer()
	for range b.N {
		u, err := db.PoolUsage(ctx, to.Add(-24*time.Hour), to)
		if err != nil || len(u) != 1 {
			b.Fatal(u, err)
		}
	}
}
