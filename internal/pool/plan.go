package pool

import (
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
	// included (0: no bound).
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
	// Retire are surplus ready members to destroy now.
	Retire []cluster.Member
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
	return out
}
