package cluster

import "time"

// Change is a state change of a cluster and, with it, of its member: the
// store applies it in one transaction (sqlite.DB.UpdateCluster).
type Change struct {
	// From lists the statuses the change is allowed from.
	From []Status
	To   Status
	// ExpiresAt, when not zero, sets a new deadline.
	ExpiresAt time.Time
	// Keep, when set, marks the cluster kept for debugging (Cluster.KeptAt
	// becomes the change's time).
	Keep *Keep
	// APIServer, when not empty, records the cluster's API address.
	APIServer string
	// Timings, when not nil, records the create's phases.
	Timings *Timings
	// StoppedUntil, with To stopped, is the stopped cluster's deadline;
	// without one the sweeper gives it one (SetMissingStoppedDeadlines).
	StoppedUntil time.Time
	// ReleaseMember ends the link between the cluster and its member (which
	// goes dirty: MemberState says so).
	ReleaseMember bool
	// MemberState is the member's state after the change; "" keeps it. The
	// move must be one of the member's transitions
	// (MemberState.CanBecome), or the whole change is ECONFLICT. A
	// member that serves another cluster by now (it was failed, rebuilt and
	// claimed again) is left alone.
	MemberState MemberState
	// MemberData, when not nil, replaces the member's backend data (a
	// started member's new address, say).
	MemberData []byte
	// Undo takes back a change whose backend step failed (a stop that did
	// not stop): the cluster held its place before, so the account's
	// limits are not checked again.
	Undo    bool
	Cause   string // api, ttl, webhook, reconciler
	Actor   string
	Message string
}

// Keep is the mark of a cluster kept for debugging.
type Keep struct {
	// Reason is what the job said, like "job failed".
	Reason string
}
