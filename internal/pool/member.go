package pool

import (
	"context"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// ClusterStore is the part of SMEK's database through which the pool
// changes a cluster together with its member: each method is one
// transaction that checks the member's transition and the account's limits.
type ClusterStore interface {
	// ClaimMember takes the oldest ready member of c's flavor for c
	// (cluster.ErrPoolEmpty when there is none). A c without an id gets
	// the member's reserved one; the member's ClusterID says which.
	ClaimMember(ctx context.Context, c cluster.Cluster, backend string) (cluster.Member, error)
	UpdateCluster(ctx context.Context, id cluster.ID, ch cluster.Change) (cluster.Cluster, error)
	// CheckRunLimit refuses one more pending or running cluster for an
	// account (a look before slow work; the change checks again).
	CheckRunLimit(ctx context.Context, accountID int64) error
	Member(ctx context.Context, id string) (cluster.Member, error)
}

// Claim takes a ready member for c and records c pending on it, in one
// transaction that checks the account's limit first. It returns
// cluster.ErrPoolEmpty when no member of c's flavor is ready. A c without
// an id takes the one the member reserved (its node is labelled with it
// already); the returned member's ClusterID is c's id.
func (p *Pool) Claim(ctx context.Context, c cluster.Cluster) (cluster.Member, error) {
	return p.store.ClaimMember(ctx, c, p.backend.Name())
}

// Prepare hands a claimed member to its cluster at the backend (record
// ownership, and label the node unless it carries c's id already) and
// mints the tenant's kubeconfig.
func (p *Pool) Prepare(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	return p.backend.Claim(ctx, m, c)
}

// Stop records ch (running → stopped, the member stopped) in one
// transaction that checks the account's max-stopped-clusters, then stops
// the member at the backend. When the backend cannot, the change is taken
// back: the database never says running for a member that may be stopped
// already.
func (p *Pool) Stop(ctx context.Context, c cluster.Cluster, ch cluster.Change) (cluster.Cluster, error) {
	m, err := p.store.Member(ctx, c.MemberID)
	if err != nil {
		return c, err
	}
	stopped, err := p.store.UpdateCluster(ctx, c.ID, ch)
	if err != nil {
		return c, err
	}
	if err := p.backend.Stop(ctx, m); err != nil {
		if _, uerr := p.store.UpdateCluster(context.WithoutCancel(ctx), c.ID, cluster.Change{
			From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed, Undo: true,
			Cause: ch.Cause, Actor: ch.Actor, Message: "the backend could not stop it; it keeps running",
		}); uerr != nil {
			p.log.Error("take back a failed stop", logkey.Cluster, c.ID, logkey.Err, uerr)
		}
		return c, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the cluster could not be stopped; try again", Err: err}
	}
	return stopped, nil
}

// Start brings the stopped member of c back at the backend, then records
// ch (stopped → running, the member claimed with its new data) in one
// transaction that checks the account's max-clusters. Of starts racing for
// the account's last place one wins; the others stop their member again.
// The database never says running for a member that is not started. A
// quick look at the limit first spares a doomed start the backend's work.
func (p *Pool) Start(ctx context.Context, c cluster.Cluster, ch cluster.Change) (cluster.Cluster, error) {
	if err := p.store.CheckRunLimit(ctx, c.AccountID); err != nil {
		return c, err
	}
	m, err := p.store.Member(ctx, c.MemberID)
	if err != nil {
		return c, err
	}
	switch m.State {
	case cluster.MemberHibernated:
		return p.restore(ctx, c, m, ch)
	case cluster.MemberHibernating:
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is being hibernated (snapshotted); try again in a few minutes", c.ID)
	}
	data, err := p.backend.Start(ctx, m)
	if err != nil {
		return c, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the cluster could not be started; try again", Err: err}
	}
	ch.MemberData = data
	started, err := p.store.UpdateCluster(ctx, c.ID, ch)
	if err != nil {
		if data != nil {
			m.Data = data
		}
		if serr := p.backend.Stop(context.WithoutCancel(ctx), m); serr != nil {
			p.log.Error("stop the member of a refused start", logkey.Cluster, c.ID, logkey.Member, m.ID, logkey.Err, serr)
		}
		return c, err
	}
	return started, nil
}

// Credential mints a fresh tenant kubeconfig for running cluster c.
func (p *Pool) Credential(ctx context.Context, c cluster.Cluster) (cluster.Kubeconfig, error) {
	m, err := p.store.Member(ctx, c.MemberID)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return p.backend.Credential(ctx, m, c)
}

// Release records ch, a change that ends cluster id's hold on its member
// (ReleaseMember, the member dirty), and has the pool clean the member at
// once.
func (p *Pool) Release(ctx context.Context, id cluster.ID, ch cluster.Change) (cluster.Cluster, error) {
	c, err := p.store.UpdateCluster(ctx, id, ch)
	if err == nil {
		p.Nudge()
	}
	return c, err
}

// CanRevoke reports whether the backend can take a tenant's access away
// at once (Revoker).
func (p *Pool) CanRevoke() bool {
	_, ok := p.backend.(Revoker)
	return ok
}

// Revoke takes the tenant's access to member id's cluster away at once,
// where the backend can (CanRevoke).
func (p *Pool) Revoke(ctx context.Context, id string) error {
	r, ok := p.backend.(Revoker)
	if !ok {
		return nil
	}
	m, err := p.store.Member(ctx, id)
	if err != nil {
		return err
	}
	return r.Revoke(ctx, m)
}

// PhaseTimings returns how long each phase of making c's member ready
// took, where the backend records it (PhaseTimer); m, when not nil, saves
// the lookup of the member.
func (p *Pool) PhaseTimings(ctx context.Context, c cluster.Cluster, m *cluster.Member) map[string]time.Duration {
	timer, ok := p.backend.(PhaseTimer)
	if !ok || c.MemberID == "" {
		return nil
	}
	if m == nil {
		got, err := p.store.Member(ctx, c.MemberID)
		if err != nil {
			return nil
		}
		m = &got
	}
	return timer.PhaseTimings(m.Data)
}

// CanLoadImages reports whether the backend can import image archives
// into its members' nodes (ImageLoader).
func (p *Pool) CanLoadImages() bool {
	l, ok := p.backend.(ImageLoader)
	return ok && l.CanLoadImages()
}

// LoadImages imports archive a into the node of member id, where the
// backend can (CanLoadImages).
func (p *Pool) LoadImages(ctx context.Context, id string, a cluster.ImageArchive) ([]cluster.Image, error) {
	l, ok := p.backend.(ImageLoader)
	if !ok || !l.CanLoadImages() {
		return nil, cluster.Errorf(cluster.EUNSUPPORTED, "", "this server's backend cannot load images into its clusters")
	}
	m, err := p.store.Member(ctx, id)
	if err != nil {
		return nil, err
	}
	return l.LoadImages(ctx, m, a)
}
