package pool

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
)

var (
	planFlavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	planT0     = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
)

// readyMember is a ready member of planFlavor created at created.
func readyMember(id string, created time.Time) cluster.Member {
	return cluster.Member{ID: id, Flavor: planFlavor, State: cluster.MemberReady, CreatedAt: created}
}

// hourly bills every member by the hour from its creation.
func hourly(m cluster.Member, now time.Time) (time.Time, bool) {
	return cost.PaidHourEnd(m.CreatedAt, now), true
}

func retiredIDs(out PlanOutput) []string {
	var ids []string
	for _, r := range out.Retire {
		ids = append(ids, r.Member.ID)
	}
	return ids
}

func TestPlanRetiresSurplusAtTheEndOfThePaidHour(t *testing.T) {
	members := []cluster.Member{
		readyMember("a", planT0),                     // paid until 09:00
		readyMember("b", planT0.Add(20*time.Minute)), // paid until 09:20
		readyMember("c", planT0.Add(40*time.Minute)), // paid until 09:40
	}
	for _, tc := range []struct {
		name      string
		now       time.Time
		target    int
		waiting   int
		scaleDown bool
		paid      func(cluster.Member, time.Time) (time.Time, bool)
		want      []string
	}{
		{"mid hour: kept, they are paid", planT0.Add(30 * time.Minute), 1, 0, true, hourly, nil},
		{"4 min before a's hour ends", planT0.Add(56 * time.Minute), 1, 0, true, hourly, []string{"a"}},
		{"5 min before a's hour ends", planT0.Add(55 * time.Minute), 1, 0, true, hourly, []string{"a"}},
		{"6 min before a's hour ends", planT0.Add(54 * time.Minute), 1, 0, true, hourly, nil},
		{"at 09:16 only b is near its hour end", planT0.Add(76 * time.Minute), 1, 0, true, hourly, []string{"b"}},
		{"target covers them", planT0.Add(56 * time.Minute), 3, 0, true, hourly, nil},
		{"waiting creates keep them", planT0.Add(56 * time.Minute), 1, 2, true, hourly, nil},
		{"fixed policy keeps surplus", planT0.Add(56 * time.Minute), 0, 0, false, hourly, nil},
		{"not billed hourly: retired at once", planT0.Add(10 * time.Minute), 1, 0, true, nil, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Plan(PlanInput{
				Now: tc.now, Members: members, Targets: map[cluster.Flavor]int{planFlavor: tc.target},
				Waiting: map[cluster.Flavor]int{planFlavor: tc.waiting}, ScaleDown: tc.scaleDown, PaidUntil: tc.paid,
			})
			got := retiredIDs(out)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("retired %v, want %v", got, tc.want)
			}
			for _, r := range out.Retire {
				if !strings.Contains(r.Reason, "surplus") {
					t.Errorf("reason %q does not say surplus", r.Reason)
				}
			}
			if len(out.Provision) != 0 {
				t.Errorf("provisions %v while retiring", out.Provision)
			}
		})
	}
}

func TestPlanCountsRebuildingTowardsSurplus(t *testing.T) {
	members := []cluster.Member{
		readyMember("a", planT0),
		{ID: "r", Flavor: planFlavor, State: cluster.MemberRebuilding, CreatedAt: planT0},
	}
	out := Plan(PlanInput{Now: planT0.Add(57 * time.Minute), Members: members,
		Targets: map[cluster.Flavor]int{planFlavor: 1}, ScaleDown: true, PaidUntil: hourly})
	if got := retiredIDs(out); len(got) != 1 || got[0] != "a" {
		t.Fatalf("retired %v, want [a]: the rebuilding member comes back for the target", got)
	}
}

func TestReleaseAction(t *testing.T) {
	dirty := cluster.Member{ID: "d", Flavor: planFlavor, State: cluster.MemberDirty, CreatedAt: planT0}
	ready := readyMember("a", planT0)
	for _, tc := range []struct {
		name      string
		now       time.Time
		members   []cluster.Member
		target    int
		waiting   int
		prov      int
		scaleDown bool
		paid      func(cluster.Member, time.Time) (time.Time, bool)
		want      bool
	}{
		{"needed for the target", planT0.Add(58 * time.Minute), []cluster.Member{dirty}, 1, 0, 0, false, nil, true},
		{"needed for a waiting create", planT0.Add(58 * time.Minute), []cluster.Member{dirty, ready}, 1, 1, 0, true, hourly, true},
		{"fixed surplus: destroyed", planT0.Add(10 * time.Minute), []cluster.Member{dirty, ready}, 1, 0, 0, false, hourly, false},
		{"provision under way covers the target", planT0.Add(58 * time.Minute), []cluster.Member{dirty}, 1, 0, 1, true, hourly, false},
		{"auto surplus, 50 min paid left: rebuilt", planT0.Add(10 * time.Minute), []cluster.Member{dirty, ready}, 1, 0, 0, true, hourly, true},
		{"auto surplus, 2 min paid left: destroyed", planT0.Add(58 * time.Minute), []cluster.Member{dirty, ready}, 1, 0, 0, true, hourly, false},
		{"auto surplus, not billed: destroyed", planT0.Add(10 * time.Minute), []cluster.Member{dirty, ready}, 1, 0, 0, true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := PlanInput{Now: tc.now, Members: tc.members, Targets: map[cluster.Flavor]int{planFlavor: tc.target},
				Waiting: map[cluster.Flavor]int{planFlavor: tc.waiting}, Provisioning: map[cluster.Flavor]int{planFlavor: tc.prov},
				ScaleDown: tc.scaleDown, PaidUntil: tc.paid}
			if got := ReleaseAction(in, dirty); got != tc.want {
				t.Fatalf("ReleaseAction = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPlanMaxPerFlavorSkipsHibernated: a hibernated member has no server,
// so it does not use up the flavor's bound on live members.
func TestPlanMaxPerFlavorSkipsHibernated(t *testing.T) {
	hib := cluster.Member{ID: "h", Flavor: planFlavor, State: cluster.MemberHibernated, CreatedAt: planT0}
	busy := cluster.Member{ID: "c", Flavor: planFlavor, State: cluster.MemberClaimed, CreatedAt: planT0}
	in := PlanInput{Now: planT0, Members: []cluster.Member{hib, busy}, Targets: map[cluster.Flavor]int{planFlavor: 1}, MaxPerFlavor: 2}
	if got := Plan(in).Provision[planFlavor]; got != 1 {
		t.Fatalf("provision %d with one hibernated and one claimed member under a bound of 2: want 1", got)
	}
	hib.State = cluster.MemberStopped // a stopped member keeps its server
	in.Members = []cluster.Member{hib, busy}
	if got := Plan(in).Provision[planFlavor]; got != 0 {
		t.Fatalf("provision %d with two live members under a bound of 2: want 0", got)
	}
}
