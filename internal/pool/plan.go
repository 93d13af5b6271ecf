package pool

import (
	"fmt"
	"sort"
	"time"

	"github.com/smek/action/internal/cluster"
)

// PlanInput is what the pool knows when it decides its next steps. Plan
// reads no clock and no database, so the simulator (package pool/sim)
// runs the very decisions the pool takes, on simulated time.
type PlanInput struct {
	Now time.Time
	// Members are the backend's members that are not deleted.
	Members []cluster.Member
	// Provisioning counts the provisions under way per flavor (their
	// member may be recorded creating already).
	Provisioning map[cluster.Flavor]int
	// Waiting counts the creates waiting per flavor: the pool provisions
	// beyond its target for them.
	Waiting map[cluster.Flavor]int
	// Targets is the policy's ready target per flavor.
	Targets map[cluster.Flavor]int
	// MaxPerFlavor bounds the live members of one flavor, claimed ones
	// included, hibernated ones (a snapshot, no server) not (0: no bound).
	MaxPerFlavor int
	// ScaleDown retires ready members above target + waiting
	// (policy.Policy.ScaleDown).
	ScaleDown bool
	// PaidUntil returns the end of the paid hour a member's server is in
	// at now; ok is false for a member not billed by the hour, which is
	// retired as soon as it is surplus. Nil: nothing is billed by the hour.
	PaidUntil func(m cluster.Member, now time.Time) (end time.Time, ok bool)
	// RetireWithin is how close to the end of its paid hour a surplus
	// member is retired (default 5 min: the delete must reach the cloud
	// before the next hour starts).
	RetireWithin time.Duration
}

// PlanOutput is what the pool does next.
type PlanOutput struct {
	// Provision is how many members to provision per flavor.
	Provision map[cluster.Flavor]int
	// Retire are surplus ready members to destroy now, each with why.
	Retire []Retirement
}

// Retirement is a surplus ready member Plan retires, and the reason the
// pool records with its deletion.
type Retirement struct {
	Member cluster.Member
	Reason string
}

// DefaultRetireWithin is PlanInput.RetireWithin when it is zero.
const DefaultRetireWithin = 5 * time.Minute

func (in PlanInput) retireWithin() time.Duration {
	if in.RetireWithin > 0 {
		return in.RetireWithin
	}
	return DefaultRetireWithin
}

// paidLeft is how long m's current paid hour lasts after in.Now; billed is
// false when m is not billed by the hour.
func (in PlanInput) paidLeft(m cluster.Member) (left time.Duration, billed bool) {
	if in.PaidUntil == nil {
		return 0, false
	}
	end, ok := in.PaidUntil(m, in.Now)
	if !ok {
		return 0, false
	}
	return end.Sub(in.Now), true
}

// supply counts a flavor's members that are ready or on their way to
// ready (rebuilding, or provisions under way), as Plan does; skip is left
// out (the member being released).
func (in PlanInput) supply(f cluster.Flavor, skip string) int {
	n := in.Provisioning[f]
	for _, m := range in.Members {
		if m.Flavor != f || m.ID == skip {
			continue
		}
		if m.State == cluster.MemberReady || m.State == cluster.MemberRebuilding {
			n++
		}
	}
	return n
}

// ReleaseAction decides what becomes of member m, released by its cluster
// (dirty, or rebuilding again after a restart): rebuild is true when its
// flavor needs it to reach target + waiting, and also when a ScaleDown
// policy finds it surplus but its paid hour has more than RetireWithin
// left: it is paid for anyway, so it waits ready for a claim, and Plan
// retires it shortly before that hour ends if it is still surplus. rebuild
// false means destroy it now. Like Plan it reads no clock: the pool and
// the simulator take the same decision.
func ReleaseAction(in PlanInput, m cluster.Member) (rebuild bool) {
	f := m.Flavor
	if in.supply(f, m.ID) < in.Targets[f]+in.Waiting[f] {
		return true
	}
	if !in.ScaleDown {
		return false // a fixed pool does not grow past its target
	}
	left, billed := in.paidLeft(m)
	return billed && left > in.retireWithin()
}

// Plan decides which members to provision and which to retire.
func Plan(in PlanInput) PlanOutput {
	type count struct{ ready, rebuilding, live int }
	counts := map[cluster.Flavor]*count{}
	get := func(f cluster.Flavor) *count {
		if counts[f] == nil {
			counts[f] = &count{}
		}
		return counts[f]
	}
	for _, m := range in.Members {
		if m.State == cluster.MemberHibernated {
			continue // only a snapshot: no server that MaxPerFlavor bounds
		}
		c := get(m.Flavor)
		c.live++
		switch m.State {
		case cluster.MemberReady:
			c.ready++
		case cluster.MemberRebuilding:
			c.rebuilding++ // on its way back: no new member for it
		}
	}
	want := map[cluster.Flavor]int{}
	for f, n := range in.Targets {
		want[f] += n
	}
	for f, n := range in.Waiting {
		want[f] += n
	}
	out := PlanOutput{Provision: map[cluster.Flavor]int{}}
	for f, w := range want {
		c := get(f)
		// Members in creating state are already in c.live; in-flight
		// provisions that have not written their row yet are not.
		have := c.ready + c.rebuilding + in.Provisioning[f]
		for n := 0; have < w; have++ {
			if in.MaxPerFlavor > 0 && c.live+in.Provisioning[f]+n >= in.MaxPerFlavor {
				break
			}
			n++
			out.Provision[f] = n
		}
	}
	if in.ScaleDown {
		out.Retire = retire(in, want)
	}
	return out
}

// retire picks the ready members above want (target + waiting) per flavor
// that may go now: those not billed by the hour, and those whose paid hour
// ends within RetireWithin, soonest first. A member whose paid hour has
// longer to run stays ready for claims until then.
func retire(in PlanInput, want map[cluster.Flavor]int) []Retirement {
	type cand struct {
		m    cluster.Member
		left time.Duration
		paid bool
	}
	byFlavor := map[cluster.Flavor][]cand{}
	for _, m := range in.Members {
		if m.State != cluster.MemberReady {
			continue
		}
		left, billed := in.paidLeft(m)
		if billed && left > in.retireWithin() {
			continue
		}
		byFlavor[m.Flavor] = append(byFlavor[m.Flavor], cand{m, left, billed})
	}
	var out []Retirement
	for _, f := range sortedFlavors(byFlavor) {
		cs := byFlavor[f]
		surplus := in.supply(f, "") - want[f]
		if surplus <= 0 {
			continue
		}
		sort.SliceStable(cs, func(i, j int) bool {
			if cs[i].paid != cs[j].paid {
				return !cs[i].paid // unbilled first: they save nothing by waiting
			}
			return cs[i].left < cs[j].left
		})
		for _, c := range cs[:min(surplus, len(cs))] {
			reason := fmt.Sprintf("surplus: %d ready or coming for a target of %d", in.supply(f, ""), want[f])
			if c.paid {
				reason += fmt.Sprintf(", paid hour ends in %s", c.left.Round(time.Second))
			}
			out = append(out, Retirement{Member: c.m, Reason: reason})
		}
	}
	return out
}

func sortedFlavors[V any](m map[cluster.Flavor]V) []cluster.Flavor {
	fs := make([]cluster.Flavor, 0, len(m))
	for f := range m {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].String() < fs[j].String() })
	return fs
}
