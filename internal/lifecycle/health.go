package lifecycle

import (
	"context"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// memberLost is told by the pool that the cluster on a claimed member has
// not answered its health checks for a while (an unplanned reboot that
// k3s did not survive, a dead control plane). Nothing can bring it back
// for the tenant, who has no access to the machine: the cluster is marked
// failed with the reason, its member is released (wiped before anyone
// gets it again), and the owner is told. A cluster that is no longer
// running meanwhile (stopped, terminated) is left alone.
func (s *Service) memberLost(ctx context.Context, m cluster.Member, reason string) {
	if m.ClusterID == "" {
		return
	}
	unlock := s.lock(m.ClusterID)
	defer unlock()
	c, err := s.db.Cluster(ctx, 0, m.ClusterID) // fresh, under the lock
	if err != nil || c.Status != cluster.Running || c.MemberID != m.ID {
		return
	}
	why := "lost: its Kubernetes API stopped answering SMEK's health checks (" + reason + ")"
	c, err = s.pool.Release(ctx, c.ID, cluster.Change{
		From: []cluster.Status{cluster.Running}, To: cluster.Failed,
		ReleaseMember: true, MemberState: cluster.MemberDirty, Cause: "reconciler", Message: why,
	})
	if err != nil {
		s.log.Warn("mark lost cluster failed", logkey.Cluster, m.ClusterID, logkey.Err, err)
		return
	}
	s.log.Warn("cluster lost", logkey.Cluster, c.ID, logkey.Member, m.ID, logkey.Reason, reason)
	s.cfg.Metrics.ClusterOp("lost", "failed")
	s.notify(ctx, cluster.NotifyFailed, c, "reconciler", "its Kubernetes API stopped answering ("+reason+")")
}
