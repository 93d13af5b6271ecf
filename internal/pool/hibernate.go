package pool

import (
	"context"
	"fmt"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Hibernator is implemented by backends that can keep a stopped member as
// a snapshot alone, so that nothing but the snapshot is billed while its
// cluster stays stopped:
//
//	stopped → hibernating → hibernated   Pool.Hibernate
//	hibernated → claimed                 Pool.Start restores a server
//	hibernated → dirty → deleted         the cluster ends: the release
//	                                     deletes the snapshot
type Hibernator interface {
	// Hibernate snapshots a stopped member's disk and deletes its
	// server. It returns the data to store with the hibernated member
	// (which names the snapshot) and the snapshot's size in GB. It is
	// called again for a member whose hibernation a restart interrupted,
	// so it takes up where the last call stopped (a snapshot taken, a
	// server deleted already).
	Hibernate(ctx context.Context, m cluster.Member) (data []byte, snapshotGB float64, err error)
	// Restore makes a server from a hibernated member's snapshot, with
	// the member's data (the tenant's objects and volumes) and returns
	// the data of the running member; the snapshot is kept. progress is
	// told about each slow step, for the cluster's event log.
	Restore(ctx context.Context, m cluster.Member, progress func(step string)) (data []byte, err error)
	// DeleteSnapshot deletes the snapshot a member's data names; a
	// snapshot gone already is no error.
	DeleteSnapshot(ctx context.Context, m cluster.Member) error
}

// SnapshotStore is the part of SMEK's database that records snapshots
// (sqlite.DB).
type SnapshotStore interface {
	// HibernateMember moves a hibernating member to hibernated with its
	// data and snapshot size, in one transaction.
	HibernateMember(ctx context.Context, id string, data []byte, snapshotGB float64) error
	// ForgetSnapshot records that a member's snapshot is gone.
	ForgetSnapshot(ctx context.Context, id string) error
}

// CanHibernate reports whether the backend can hibernate members.
func (p *Pool) CanHibernate() bool {
	_, ok := p.backend.(Hibernator)
	return ok
}

// Member returns one of the pool's members.
func (p *Pool) Member(ctx context.Context, id string) (cluster.Member, error) {
	return p.store.Member(ctx, id)
}

// Hibernate snapshots the stopped member of stopped cluster c and deletes
// its server (stopped → hibernating → hibernated). It reports whether it
// did: a member that is not stopped (hibernated already, started
// meanwhile) is left alone. When the backend cannot, the member goes back
// to stopped with the reason as its failure, its server kept. The caller
// holds the cluster's lock, so that no start runs meanwhile.
func (p *Pool) Hibernate(ctx context.Context, c cluster.Cluster) (bool, error) {
	h, ok := p.backend.(Hibernator)
	if !ok || c.Status != cluster.Stopped || c.MemberID == "" {
		return false, nil
	}
	if !p.take(c.MemberID) {
		return false, nil
	}
	defer p.leave(c.MemberID)
	m, err := p.store.Member(ctx, c.MemberID)
	if err != nil || m.State != cluster.MemberStopped || m.ClusterID != c.ID {
		return false, err
	}
	if err := p.store.SetMemberState(ctx, m.ID, cluster.MemberHibernating, nil, ""); err != nil {
		return false, err
	}
	m.State = cluster.MemberHibernating
	return true, p.hibernate(ctx, h, m)
}

// hibernate is the backend's part of a hibernation, for a member recorded
// hibernating.
func (p *Pool) hibernate(ctx context.Context, h Hibernator, m cluster.Member) error {
	start := p.clock.Now()
	data, gb, err := h.Hibernate(ctx, m)
	if err != nil {
		p.setState(context.WithoutCancel(ctx), m, cluster.MemberStopped, nil, "hibernate: "+err.Error())
		return fmt.Errorf("hibernate member %s: %w", m.ID, err)
	}
	if err := p.store.HibernateMember(ctx, m.ID, data, gb); err != nil {
		return fmt.Errorf("record member %s hibernated: %w", m.ID, err)
	}
	p.log.Info("member hibernated", logkey.Member, m.ID, logkey.Cluster, m.ClusterID, "snapshot-gb", gb, logkey.Took, p.clock.Since(start).Round(1e6))
	return nil
}

// restore is Start for a hibernated member: the backend makes a server
// from the snapshot (minutes; each step is recorded in c's event log),
// then ch is recorded with the new server's data and the snapshot is
// deleted. When the change is refused (the account's limit, reached
// meanwhile), the new server is destroyed and the member stays hibernated.
func (p *Pool) restore(ctx context.Context, c cluster.Cluster, m cluster.Member, ch cluster.Change) (cluster.Cluster, error) {
	h, ok := p.backend.(Hibernator)
	if !ok {
		return c, cluster.Errorf(cluster.EINTERNAL, "", "member %s is hibernated but backend %s cannot restore", m.ID, p.backend.Name())
	}
	if !p.take(m.ID) {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is being hibernated or restored; try again in a few minutes", c.ID)
	}
	defer p.leave(m.ID)
	defer p.restoring.Delete(m.ID)
	progress := func(step string) {
		p.restoring.Store(m.ID, step)
		p.log.Info("restoring member", logkey.Member, m.ID, logkey.Cluster, c.ID, "step", step)
		if err := p.store.RecordEvent(context.WithoutCancel(ctx), string(c.ID), "restoring", ch.Cause, ch.Actor, step); err != nil {
			p.log.Warn("record restore progress", logkey.Cluster, c.ID, logkey.Err, err)
		}
	}
	progress(fmt.Sprintf("restoring the cluster from its snapshot (%.1f GB); this takes minutes", m.SnapshotGB))
	start := p.clock.Now()
	data, err := h.Restore(ctx, m, progress)
	if err != nil {
		progress("the restore failed: " + err.Error())
		return c, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the cluster could not be restored from its snapshot; try again", Err: err}
	}
	ch.MemberData = data
	if ch.Message == "" {
		ch.Message = "restored from its snapshot in " + p.clock.Since(start).Round(1e9).String()
	}
	started, err := p.store.UpdateCluster(ctx, c.ID, ch)
	if err != nil {
		restored := m
		restored.Data, restored.Snapshot = data, false
		if derr := p.backend.Destroy(context.WithoutCancel(ctx), restored); derr != nil {
			p.log.Error("destroy the restored server of a refused start", logkey.Cluster, c.ID, logkey.Member, m.ID, logkey.Err, derr)
		}
		return c, err
	}
	// The start forgot the snapshot with the member's new data (one
	// transaction); one that cannot be deleted now belongs to no
	// hibernated member, and the backend's Reconcile deletes it.
	if err := h.DeleteSnapshot(context.WithoutCancel(ctx), m); err != nil {
		p.log.Warn("delete snapshot; the backend's reconcile deletes it later", logkey.Member, m.ID, logkey.Err, err)
	}
	return started, nil
}

// releaseSnapshot ends a member whose cluster ended while it was
// hibernated: it has no server, only the snapshot, which is deleted.
func (p *Pool) releaseSnapshot(ctx context.Context, m cluster.Member) {
	if h, ok := p.backend.(Hibernator); ok {
		if err := h.DeleteSnapshot(ctx, m); err != nil {
			p.log.Warn("delete the snapshot of a released member", logkey.Member, m.ID, logkey.Err, err)
			p.setState(ctx, m, cluster.MemberFailed, nil, "delete snapshot: "+err.Error())
			return
		}
	}
	if err := p.store.ForgetSnapshot(ctx, m.ID); err != nil {
		p.log.Warn("forget snapshot", logkey.Member, m.ID, logkey.Err, err)
		return
	}
	p.setState(ctx, m, cluster.MemberDeleted, nil, "released while hibernated: snapshot deleted")
	p.Nudge()
}

// RestoreStep returns the last step of the restore of member id, when
// one is under way.
func (p *Pool) RestoreStep(id string) (string, bool) {
	v, ok := p.restoring.Load(id)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// take marks member id busy unless a goroutine works on it already.
func (p *Pool) take(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[id] {
		return false
	}
	p.busy[id] = true
	return true
}

func (p *Pool) leave(id string) {
	p.mu.Lock()
	delete(p.busy, id)
	p.mu.Unlock()
}

// resumeHibernation takes up a hibernation a restart interrupted.
func (p *Pool) resumeHibernation(ctx context.Context, m cluster.Member) {
	h, ok := p.backend.(Hibernator)
	if !ok {
		p.setState(ctx, m, cluster.MemberStopped, nil, "hibernation interrupted; the backend cannot hibernate")
		return
	}
	p.log.Info("resuming a hibernation interrupted by a restart", logkey.Member, m.ID)
	if err := p.hibernate(ctx, h, m); err != nil {
		p.log.Warn("resume hibernation", logkey.Member, m.ID, logkey.Err, err)
	}
}
