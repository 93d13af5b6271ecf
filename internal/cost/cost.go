// Package cost is what the warm pool costs: the operator's price list
// (Model), the categories a member's time falls into (busy, idle,
// stopped, building, hibernated), and Hetzner's billing rule that every
// started server hour is paid in full. The server's metrics, `provisioner
// pool status` and the simulator (package pool/sim) all account with it.
package cost

import (
	"time"

	"github.com/smek/action/internal/cluster"
)

// Category is what a member's time is spent on, for accounting.
type Category string

// Categories.
const (
	// Busy: the member serves a running (or pending) cluster.
	Busy Category = "busy"
	// Idle: the member is ready and nobody uses it: the price of warmth.
	Idle Category = "idle"
	// Stopped: the member's cluster is stopped; its server is off but
	// billed in full.
	Stopped Category = "stopped"
	// Building: the member is created, bootstrapped, cleaned or rebuilt,
	// or failed and not yet deleted.
	Building Category = "building"
	// Hibernated: only a snapshot of the member is left (billed per GB
	// and month, not per server hour).
	Hibernated Category = "hibernated"
)

// Categories lists every category, in the order reports show them.
func Categories() []Category { return []Category{Busy, Idle, Stopped, Building, Hibernated} }

// CategoryOf is where a member's time in state s is counted; ok is false
// for a deleted member, which costs nothing.
func CategoryOf(s cluster.MemberState) (c Category, ok bool) {
	switch s {
	case cluster.MemberClaimed:
		return Busy, true
	case cluster.MemberReady:
		return Idle, true
	case cluster.MemberStopped, cluster.MemberHibernating:
		return Stopped, true
	case cluster.MemberHibernated:
		return Hibernated, true
	case cluster.MemberCreating, cluster.MemberBootstrapping, cluster.MemberDirty, cluster.MemberRebuilding, cluster.MemberFailed:
		return Building, true
	}
	return "", false
}

// PaidHourEnd is the end of the paid hour that now falls into, for a
// server billed since start: Hetzner bills every started hour in full, so
// a server deleted before that time costs as much as one kept until then.
func PaidHourEnd(start, now time.Time) time.Time {
	if now.Before(start) {
		return start.Add(time.Hour)
	}
	hours := now.Sub(start)/time.Hour + 1
	return start.Add(hours * time.Hour)
}

// Model is the operator's price list, in euros without VAT.
type Model struct {
	// Hourly is the price of one server hour, per server type.
	Hourly map[string]float64 `json:"hourly"`
	// SnapshotGBMonth is the price of one GB of snapshot kept for a month.
	SnapshotGBMonth float64 `json:"snapshot-gb-month"`
	// ServerTypes maps a cluster size to the server type billed for it.
	// A size not listed is not billed (the local backend's clusters).
	ServerTypes map[string]string `json:"server-types"`
}

// HourlyPrice is what one server hour of flavor f costs; billed is false
// when the flavor's size has no server type in the model.
func (m Model) HourlyPrice(f cluster.Flavor) (eur float64, billed bool) {
	t, ok := m.ServerTypes[f.Size]
	if !ok {
		return 0, false
	}
	p, ok := m.Hourly[t]
	return p, ok
}
