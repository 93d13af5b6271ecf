package cluster

import "time"

// Event is a recorded change of a cluster or a pool member, or a note about
// one: the event log that GET /v1/clusters/{id}/events and the status page
// show.
type Event struct {
	Time time.Time
	// Subject is the cluster id or the member id.
	Subject string
	// Type is what happened: "created", "stopped", "note", ...
	Type     string
	From, To string
	// Cause is who started it: api, ttl, webhook, reconciler, pool.
	Cause   string
	Actor   string
	Message string
}
