package cluster

import "time"

// MemberState is where a pool member is in its life:
//
//	creating → bootstrapping → ready → claimed ⇄ stopped → dirty →
//	rebuilding → bootstrapping → ready;  failed → deleted
//
// There is no transition from dirty to ready: a released member is rebuilt
// (or deleted) before anyone gets it again.
type MemberState string

// Member states.
const (
	MemberCreating      MemberState = "creating"
	MemberBootstrapping MemberState = "bootstrapping"
	MemberReady         MemberState = "ready"
	MemberClaimed       MemberState = "claimed"
	MemberStopped       MemberState = "stopped"
	MemberDirty         MemberState = "dirty"
	MemberRebuilding    MemberState = "rebuilding"
	MemberFailed        MemberState = "failed"
	MemberDeleted       MemberState = "deleted"
)

// Member is a pool member: a warm server (or local control plane) that
// serves at most one cluster at a time.
type Member struct {
	ID        string
	Backend   string
	Flavor    Flavor
	State     MemberState
	ClusterID ID
	// Data is the backend's own record of the server (JSON): addresses,
	// ports, cloud ids. SMEK's core does not look inside.
	Data      []byte
	Failure   string
	CreatedAt time.Time
	UpdatedAt time.Time
	ReadyAt   time.Time
}
