package api

import (
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// toWire is c as the API shows it, with the server's node kind.
func (s *Server) toWire(c cluster.Cluster) wire.Cluster {
	w := toWire(c)
	w.NodeKind = s.nodeKind()
	return w
}

// nodeKind is the configured node kind, kubelet unless said otherwise.
func (s *Server) nodeKind() string {
	if s.cfg.NodeKind == "" {
		return wire.NodeKubelet
	}
	return s.cfg.NodeKind
}

func toWire(c cluster.Cluster) wire.Cluster {
	w := wire.Cluster{
		ClusterID: string(c.ID), ClusterStatus: string(c.Status), Account: c.Account,
		K8sVersion: c.Spec.K8sVersion, ClusterSize: c.Spec.Size, MinutesToLive: c.Spec.MinutesToLive,
		KeepCluster: c.Spec.KeepCluster, EnablePrivileged: c.Spec.Privileged, NotificationEmail: c.Spec.NotificationEmail,
		APIServer: c.APIServer, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		StoppedAt: timePtr(c.StoppedAt), StoppedExpiresAt: timePtr(c.StoppedExpiresAt), TerminatedAt: timePtr(c.TerminatedAt),
		Run: wire.RunOf(c.Run), RestoreMS: c.RestoredIn.Milliseconds(),
		KeptAt: timePtr(c.KeptAt), KeptReason: c.KeptReason,
	}
	if c.Hibernated {
		// /v1 tells hibernated from stopped; the seed API's /list reads
		// the status alone and keeps saying stopped.
		w.ClusterStatus = StatusHibernated
		gb := c.SnapshotGB
		w.SnapshotSizeGB = &gb
		if c.Restoring != "" {
			w.ClusterStatus, w.RestoreStep = StatusRestoring, c.Restoring
		}
	}
	t := c.Timings
	if t.Total() > 0 || t.Warm || len(c.ServerPhases) > 0 {
		w.Timings = &wire.Timings{QueuedMS: t.Queued.Milliseconds(), ClaimedMS: t.Claimed.Milliseconds(),
			ReadyMS: t.Ready.Milliseconds(), TotalMS: t.Total().Milliseconds(), Warm: t.Warm}
		for phase, d := range c.ServerPhases {
			if w.Timings.Server == nil {
				w.Timings.Server = map[string]int64{}
			}
			w.Timings.Server[phase] = d.Milliseconds()
		}
	}
	return w
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// createInput turns a decoded create request into the lifecycle's input.
func createInput(req wire.CreateRequest, requireEmail bool) (cluster.CreateInput, error) {
	in := cluster.CreateInput{
		K8sVersion: req.K8sVersion, MinutesToLive: req.MinutesToLive, KeepCluster: req.KeepCluster,
		NotificationEmail: req.NotificationEmail, Privileged: req.EnablePrivileged, Size: req.ClusterSize,
		RequireEmail: requireEmail,
	}
	if req.Run != nil {
		r := req.Run.Domain() // lifecycle marks it unverified
		in.Run = &r
	}
	if req.Wait != nil {
		d, err := time.ParseDuration(*req.Wait)
		if err != nil {
			return in, cluster.Errorf(cluster.EINVALID, "wait", "wait must be a duration such as \"90s\" or \"5m\", got %q", short(*req.Wait))
		}
		in.Wait = &d
	}
	return in, nil
}

func toWireEvents(evs []cluster.Event) wire.EventList {
	out := wire.EventList{Events: make([]wire.Event, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, wire.Event{Time: e.Time, Subject: e.Subject, Type: e.Type, From: e.From, To: e.To,
			Cause: e.Cause, Actor: e.Actor, Message: e.Message})
	}
	return out
}

// StatusHibernated is the cluster-status /v1 shows for a stopped cluster
// whose server is kept as a snapshot alone (cluster.Cluster.Hibernated).
const StatusHibernated = "hibernated"

// StatusRestoring is the cluster-status /v1 shows for a hibernated cluster
// while a start restores it (cluster.Cluster.Restoring).
const StatusRestoring = "restoring"
