package cluster

import (
	"errors"
	"time"
)

// MemberState is where a pool member is in its life. The transitions a
// member may take are listed once, in memberTransitions; the store refuses
// every other one (CanBecome).
type MemberState string

// Member states.
const (
	MemberCreating      MemberState = "creating"
	MemberBootstrapping MemberState = "bootstrapping"
	MemberReady         MemberState = "ready"
	MemberClaimed       MemberState = "claimed"
	MemberStopped       MemberState = "stopped"
	// MemberHibernating: a stopped member's disk is being snapshotted and
	// its server deleted; MemberHibernated: only the snapshot is left
	// (no server is billed), and a start restores a server from it.
	MemberHibernating MemberState = "hibernating"
	MemberHibernated  MemberState = "hibernated"
	MemberDirty       MemberState = "dirty"
	MemberRebuilding  MemberState = "rebuilding"
	MemberFailed      MemberState = "failed"
	MemberDeleted     MemberState = "deleted"
)

// memberTransitions is the member's state machine: the states each state
// may become. Who takes each step:
//
//	creating → ready            the pool's provision (the backend boots and
//	                            bootstraps in one call; bootstrapping is the
//	                            step's name for backends that record it)
//	ready → claimed             a create's claim (sqlite.ClaimMember)
//	ready → ready,
//	claimed → claimed           a resume after a restart records new data
//	claimed → stopped           a stop
//	stopped → claimed           a start, or a stop taken back
//	stopped → hibernating       a member stopped for long: snapshot, then
//	  → hibernated              the server is deleted
//	hibernating → stopped       a hibernation that could not finish (the
//	                            server is kept)
//	hibernated → claimed        a start restored a server from the snapshot
//	claimed, stopped,           the cluster ends (terminate, failed create,
//	hibernated → dirty          lost): the member goes back to the pool (a
//	                            hibernated one has no server: its release
//	                            deletes the snapshot and ends it)
//	dirty → rebuilding → ready  the pool's release (reusable member)
//	rebuilding → rebuilding     a rebuild interrupted by a restart, again
//	→ failed                    from every live state: a ghost (gone at the
//	                            backend), a failed release, resume or
//	                            destroy; failed → failed records a new
//	                            reason when a destroy fails again
//	→ deleted                   destroyed (or released for good); a member
//	                            that serves a cluster fails first, which
//	                            fails its cluster (the store does both in
//	                            one transaction)
//
// There is no step from dirty (or claimed) to ready: a member that served a
// cluster is rebuilt before anyone gets it again. deleted is the end.
var memberTransitions = map[MemberState][]MemberState{
	MemberCreating:      {MemberBootstrapping, MemberReady, MemberFailed, MemberDeleted},
	MemberBootstrapping: {MemberReady, MemberFailed, MemberDeleted},
	MemberReady:         {MemberReady, MemberClaimed, MemberFailed, MemberDeleted},
	MemberClaimed:       {MemberClaimed, MemberStopped, MemberDirty, MemberFailed},
	MemberStopped:       {MemberClaimed, MemberDirty, MemberFailed, MemberHibernating},
	MemberHibernating:   {MemberHibernated, MemberStopped, MemberFailed},
	MemberHibernated:    {MemberClaimed, MemberDirty, MemberFailed},
	MemberDirty:         {MemberRebuilding, MemberFailed, MemberDeleted},
	MemberRebuilding:    {MemberRebuilding, MemberBootstrapping, MemberReady, MemberFailed, MemberDeleted},
	MemberFailed:        {MemberFailed, MemberDeleted},
	MemberDeleted:       nil,
}

// MemberStates lists every member state, in the order of a member's life.
func MemberStates() []MemberState {
	return []MemberState{MemberCreating, MemberBootstrapping, MemberReady, MemberClaimed, MemberStopped,
		MemberHibernating, MemberHibernated, MemberDirty, MemberRebuilding, MemberFailed, MemberDeleted}
}

// CanBecome reports whether a member in state s may move to state t.
func (s MemberState) CanBecome(t MemberState) bool {
	for _, next := range memberTransitions[s] {
		if next == t {
			return true
		}
	}
	return false
}

// CheckMemberTransition returns nil when member id may move from one state
// to another, and otherwise an ECONFLICT error that names both states.
func CheckMemberTransition(id string, from, to MemberState) error {
	if from.CanBecome(to) {
		return nil
	}
	return Errorf(ECONFLICT, "", "member %s cannot go from %s to %s", id, from, to)
}

// ErrPoolEmpty means no ready member of the wanted flavor was there to claim.
var ErrPoolEmpty = errors.New("no ready server")

// Member is a pool member: a warm server (or local control plane) that
// serves at most one cluster at a time.
type Member struct {
	ID        string
	Backend   string
	Flavor    Flavor
	State     MemberState
	ClusterID ID
	// ReservedID is the id the next cluster to claim the member gets,
	// drawn when the member is created or rebuilt, so that the backend
	// labels the node with it while it makes the member ready, not while a
	// create waits. It is never shown before the claim, and a member
	// destroyed unclaimed takes it along: ids are never reused. Empty for
	// members made before ids were reserved.
	ReservedID ID
	// Data is the backend's own record of the member (JSON): addresses,
	// ports, cloud ids. SMEK's core does not look inside.
	Data    []byte
	Failure string
	// Snapshot says the member has a snapshot at the backend (it is
	// hibernated, or it was when its cluster ended and the release has
	// yet to delete the snapshot); SnapshotGB is the snapshot's size.
	Snapshot   bool
	SnapshotGB float64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ReadyAt    time.Time
}
