// Package policy decides how many ready members the warm pool keeps per
// flavor. The pool, and the simulator (package pool/sim) on simulated
// time, tell a Policy what happens (creates arriving, members becoming
// ready) and ask it for targets; a policy reads no clock of its own.
package policy

import (
	"time"

	"github.com/smek/action/internal/cluster"
)

// Target is how many ready members a policy wants for a flavor, and why
// (the reason goes into the event the pool records when a target changes).
type Target struct {
	Ready  int
	Reason string
}

// Policy decides the pool's ready targets. Implementations are safe for
// concurrent use; every time comes from the caller.
type Policy interface {
	// Name is the policy as the operator wrote it ("fixed", "auto").
	Name() string
	// Targets returns the ready target of every flavor the policy knows
	// at now.
	Targets(now time.Time) map[cluster.Flavor]Target
	// ObserveArrival records a create of flavor f at time at; warm says
	// whether a ready member was there for it.
	ObserveArrival(f cluster.Flavor, at time.Time, warm bool)
	// ObserveReady records that a member of flavor f took took to become
	// ready (from its create, or from its release for a rebuild).
	ObserveReady(f cluster.Flavor, took time.Duration, rebuild bool)
	// ScaleDown reports whether ready members above the target are
	// retired (where billing is hourly, just before their paid hour
	// ends) and whether a released member above the target is kept
	// ready for the rest of its paid hour instead of being destroyed at
	// once (pool.ReleaseAction).
	ScaleDown() bool
}

// Fixed keeps a constant number of ready members per flavor: the
// operator's --pool-size, and the default for the local backend.
type Fixed map[cluster.Flavor]int

// Name implements Policy.
func (Fixed) Name() string { return "fixed" }

// Targets implements Policy.
func (p Fixed) Targets(time.Time) map[cluster.Flavor]Target {
	out := make(map[cluster.Flavor]Target, len(p))
	for f, n := range p {
		out[f] = Target{Ready: n, Reason: "fixed pool size"}
	}
	return out
}

// ObserveArrival implements Policy: a fixed pool learns nothing.
func (Fixed) ObserveArrival(cluster.Flavor, time.Time, bool) {}

// ObserveReady implements Policy.
func (Fixed) ObserveReady(cluster.Flavor, time.Duration, bool) {}

// ScaleDown implements Policy. A fixed pool's target never changes, so
// its only surplus is a released member: where servers are billed by the
// hour it serves claims for the rest of its paid hour, which costs
// nothing more, and goes shortly before that hour ends; elsewhere it is
// destroyed at once, as before.
func (Fixed) ScaleDown() bool { return true }
