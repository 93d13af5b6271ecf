package cluster

import "time"

// ServerState is where a pool member is in its life:
//
//	creating → bootstrapping → ready → claimed ⇄ stopped → dirty →
//	rebuilding → bootstrapping → ready;  failed → deleted
//
// There is no transition from dirty to ready: a released server is rebuilt
// (or deleted) before anyone gets it again.
type ServerState string

// Server states.
const (
	ServerCreating      ServerState = "creating"
	ServerBootstrapping ServerState = "bootstrapping"
	ServerReady         ServerState = "ready"
	ServerClaimed       ServerState = "claimed"
	ServerStopped       ServerState = "stopped"
	ServerDirty         ServerState = "dirty"
	ServerRebuilding    ServerState = "rebuilding"
	ServerFailed        ServerState = "failed"
	ServerDeleted       ServerState = "deleted"
)

// Server is a pool member: a warm server (or local control plane) that
// serves at most one cluster at a time.
type Server struct {
	ID        string
	Backend   string
	Flavor    Flavor
	State     ServerState
	ClusterID ID
	// Data is the backend's own record of the server (JSON): addresses,
	// ports, cloud ids. SMEK's core does not look inside.
	Data      []byte
	Failure   string
	CreatedAt time.Time
	UpdatedAt time.Time
	ReadyAt   time.Time
}
