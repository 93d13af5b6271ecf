package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// scope returns the account whose clusters p may touch: 0 (all) for service
// credentials.
func scope(p cluster.Principal) int64 {
	if p.Service {
		return 0
	}
	return p.Account.ID
}

// Get returns one of p's clusters.
func (s *Service) Get(ctx context.Context, p cluster.Principal, id cluster.ID) (cluster.Cluster, error) {
	c, err := s.db.Cluster(ctx, scope(p), id)
	if err == nil {
		s.withMember(ctx, &c)
	}
	return c, err
}

// withMember adds what the cluster's member tells: the phase timings,
// and whether it is hibernated.
func (s *Service) withMember(ctx context.Context, c *cluster.Cluster) {
	if c.MemberID == "" {
		return
	}
	m, err := s.pool.Member(ctx, c.MemberID)
	if err != nil {
		return
	}
	if m.ClusterID == c.ID && m.State == cluster.MemberHibernated {
		c.Hibernated, c.SnapshotGB = true, m.SnapshotGB
		c.Restoring, _ = s.pool.RestoreStep(m.ID)
	}
	s.withPhases(ctx, c, &m)
}

// withPhases adds the phase timings of the cluster's member, where the
// backend records them; m saves the lookup when the caller has it.
func (s *Service) withPhases(ctx context.Context, c *cluster.Cluster, m *cluster.Member) {
	c.ServerPhases = s.pool.PhaseTimings(ctx, *c, m)
}

// maxNote bounds the length of a note in the event log.
const maxNote = 1000

// Note records a message in a cluster's event log. Only service credentials
// (the GitHub App) write notes.
func (s *Service) Note(ctx context.Context, p cluster.Principal, id cluster.ID, cause, message string) (cluster.Event, error) {
	if !p.Service {
		return cluster.Event{}, cluster.Errorf(cluster.EFORBIDDEN, "", "only a service token may add to a cluster's event log")
	}
	message = strings.TrimSpace(message)
	if message == "" || len(message) > maxNote {
		return cluster.Event{}, cluster.Errorf(cluster.EINVALID, "message", "message must be 1 to %d characters", maxNote)
	}
	if _, err := s.Get(ctx, p, id); err != nil {
		return cluster.Event{}, err
	}
	e := cluster.Event{Time: s.cfg.Clock.Now(), Subject: string(id), Type: "note", Cause: cause, Actor: p.Actor, Message: message}
	return e, s.db.RecordEvent(ctx, e.Subject, e.Type, e.Cause, e.Actor, e.Message)
}

// Stop stops a cluster, or terminates it when it was created with
// keep-cluster false or force is set — exactly as the seed API's /stop.
func (s *Service) Stop(ctx context.Context, p cluster.Principal, id cluster.ID, force bool) (cluster.Cluster, error) {
	if err := s.recovered(ctx); err != nil {
		return cluster.Cluster{}, err
	}
	unlock := s.lock(id)
	defer unlock()
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return c, err
	}
	if force || !c.Spec.KeepCluster {
		c, err = s.terminate(ctx, c, "api", p.Actor, "")
		s.cfg.Metrics.ClusterOp("terminate", outcome(err))
		return c, err
	}
	c, err = s.stop(ctx, c, "api", p.Actor)
	s.cfg.Metrics.ClusterOp("stop", outcome(err))
	return c, err
}

// Terminate ends a cluster for good, whatever its keep-cluster.
func (s *Service) Terminate(ctx context.Context, p cluster.Principal, id cluster.ID, cause string) (cluster.Cluster, error) {
	unlock := s.lock(id)
	defer unlock()
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return c, err
	}
	c, err = s.terminate(ctx, c, cause, p.Actor, "")
	s.cfg.Metrics.ClusterOp("terminate", outcome(err))
	return c, err
}

func (s *Service) stop(ctx context.Context, c cluster.Cluster, cause, actor string) (cluster.Cluster, error) {
	if c.Status != cluster.Running {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s; only a running cluster can be stopped", c.ID, c.Status)
	}
	stopped, err := s.pool.Stop(ctx, c, cluster.Change{
		From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped,
		StoppedUntil: s.cfg.Clock.Now().Add(s.cfg.MaxStoppedLifetime), Cause: cause, Actor: actor,
	})
	if err != nil {
		return c, err
	}
	s.log.Info("cluster stopped", logkey.Cluster, stopped.ID, logkey.Cause, cause)
	s.notify(ctx, cluster.NotifyStopped, stopped, cause, "")
	return stopped, nil
}

// terminate ends a cluster for good; reason, when set, says why in the
// event log and the mail.
func (s *Service) terminate(ctx context.Context, c cluster.Cluster, cause, actor, reason string) (cluster.Cluster, error) {
	if c.Status == cluster.Terminated || c.Status == cluster.Terminating {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is already %s", c.ID, c.Status)
	}
	if c.Status == cluster.Pending {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is still being created; try again in a moment", c.ID)
	}
	was := c
	// The pool releases the member (destroys or rebuilds it) at once.
	c, err := s.pool.Release(ctx, c.ID, cluster.Change{
		From: []cluster.Status{cluster.Running, cluster.Stopped, cluster.Failed}, To: cluster.Terminated,
		ReleaseMember: true, MemberState: cluster.MemberDirty, Cause: cause, Actor: actor, Message: reason,
	})
	if err != nil {
		return c, err
	}
	if was.Status == cluster.Running && was.MemberID != "" {
		s.revoke(ctx, c, was.MemberID, cause, actor)
	}
	s.log.Info("cluster terminated", logkey.Cluster, c.ID, logkey.Cause, cause, logkey.Reason, reason)
	s.notify(ctx, cluster.NotifyTerminated, c, cause, reason)
	return c, nil
}

// Start starts a stopped cluster with a fresh deadline and returns a fresh
// kubeconfig.
func (s *Service) Start(ctx context.Context, p cluster.Principal, id cluster.ID) (Created, error) {
	res, err := s.start(ctx, p, id)
	s.cfg.Metrics.ClusterOp("start", outcome(err))
	return res, err
}

func (s *Service) start(ctx context.Context, p cluster.Principal, id cluster.ID) (Created, error) {
	if err := s.recovered(ctx); err != nil {
		return Created{}, err
	}
	unlock := s.lock(id)
	defer unlock()
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return Created{}, err
	}
	if c.Status != cluster.Stopped {
		return Created{}, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s; only a stopped cluster can be started", c.ID, c.Status)
	}
	hibernated, restoreStart := c.Hibernated, s.cfg.Clock.Now()
	if hibernated {
		s.log.Info("restoring hibernated cluster", logkey.Cluster, c.ID, "snapshot-gb", c.SnapshotGB)
	}
	started, err := s.pool.Start(ctx, c, cluster.Change{
		From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed,
		ExpiresAt: s.cfg.Clock.Now().Add(time.Duration(c.Spec.MinutesToLive) * time.Minute), Cause: "api", Actor: p.Actor,
	})
	if err != nil {
		return Created{}, err
	}
	c = started
	if hibernated {
		c.RestoredIn = s.cfg.Clock.Since(restoreStart)
	}
	kc, err := s.pool.Credential(ctx, c)
	if err != nil {
		return Created{}, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the cluster started but its kubeconfig could not be minted; ask for it again", Err: err}
	}
	s.log.Info("cluster started", logkey.Cluster, c.ID)
	s.notify(ctx, cluster.NotifyStarted, c, "api", "")
	return Created{Cluster: c, Kubeconfig: kc}, nil
}

// Kubeconfig mints a fresh kubeconfig for one of p's running clusters.
func (s *Service) Kubeconfig(ctx context.Context, p cluster.Principal, id cluster.ID) (Created, error) {
	if err := s.recovered(ctx); err != nil {
		return Created{}, err
	}
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return Created{}, err
	}
	if c.Status != cluster.Running {
		return Created{}, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s; a kubeconfig is minted for running clusters only", c.ID, c.Status)
	}
	kc, err := s.pool.Credential(ctx, c)
	if err != nil {
		if cluster.ErrorCode(err) == cluster.ENOTFOUND {
			return Created{}, err
		}
		return Created{}, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the kubeconfig could not be minted; try again", Err: err}
	}
	return Created{Cluster: c, Kubeconfig: kc}, nil
}

// Extend moves a cluster's deadline minutes later. The new deadline may be
// at most the account's max-minutes-to-live away.
func (s *Service) Extend(ctx context.Context, p cluster.Principal, id cluster.ID, minutes int) (cluster.Cluster, error) {
	unlock := s.lock(id)
	defer unlock()
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return c, err
	}
	max, err := s.maxMinutes(ctx, p, c)
	if err != nil {
		return c, err
	}
	if minutes < 1 || minutes > max {
		return c, cluster.Errorf(cluster.EINVALID, "minutes", "minutes must be between 1 and %d, got %d", max, minutes)
	}
	now := s.cfg.Clock.Now()
	base := c.ExpiresAt
	if base.Before(now) {
		base = now
	}
	next := base.Add(time.Duration(minutes) * time.Minute)
	if next.Sub(now) > time.Duration(max)*time.Minute {
		return c, cluster.Errorf(cluster.EINVALID, "minutes", "extending by %d minutes would put the deadline %d minutes away; the account allows at most %d", minutes, int(next.Sub(now).Minutes()), max)
	}
	c, err = s.db.UpdateCluster(ctx, c.ID, cluster.Change{
		From: []cluster.Status{cluster.Running, cluster.Stopped}, To: c.Status, ExpiresAt: next,
		Cause: "api", Actor: p.Actor, Message: "deadline extended",
	})
	s.cfg.Metrics.ClusterOp("extend", outcome(err))
	return c, err
}

// maxMinutes is the longest a deadline of c may be away: its account's
// max-minutes-to-live (the App's service credential acts for every
// account, so the cluster's own account is read then).
func (s *Service) maxMinutes(ctx context.Context, p cluster.Principal, c cluster.Cluster) (int, error) {
	if !p.Service {
		return p.Account.MaxMinutesToLive, nil
	}
	a, err := s.db.AccountByName(ctx, c.Account)
	if err != nil {
		return 0, err
	}
	return a.MaxMinutesToLive, nil
}

// MaxKeepReason bounds the reason a kept cluster carries.
const MaxKeepReason = 200

// Keep keeps a running cluster for debugging after its CI job failed:
// instead of ending it, the job's cleanup moves its deadline to minutes
// from now (at most the account's max-minutes-to-live: a longer ask is
// shortened to it, and the answer's deadline says so) and marks it kept,
// so that the GitHub App leaves it alone when the run completes. The
// deadline ends it as any other; keeping again moves the deadline again.
func (s *Service) Keep(ctx context.Context, p cluster.Principal, id cluster.ID, minutes int, reason string) (cluster.Cluster, error) {
	if minutes < 1 {
		return cluster.Cluster{}, cluster.Errorf(cluster.EINVALID, "minutes", "minutes must be at least 1, got %d", minutes)
	}
	if len(reason) > MaxKeepReason || !utf8.ValidString(reason) || strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return cluster.Cluster{}, cluster.Errorf(cluster.EINVALID, "reason", "reason must be one line of at most %d bytes of text", MaxKeepReason)
	}
	unlock := s.lock(id)
	defer unlock()
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return c, err
	}
	if c.Status != cluster.Running {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s; only a running cluster can be kept for debugging", c.ID, c.Status)
	}
	max, err := s.maxMinutes(ctx, p, c)
	if err != nil {
		return c, err
	}
	msg := fmt.Sprintf("kept for debugging for %d minutes", min(minutes, max))
	if minutes > max {
		msg += fmt.Sprintf(" (asked %d; the account allows at most %d)", minutes, max)
	}
	if reason != "" {
		msg += ": " + reason
	}
	c, err = s.db.UpdateCluster(ctx, c.ID, cluster.Change{
		From: []cluster.Status{cluster.Running}, To: cluster.Running,
		ExpiresAt: s.cfg.Clock.Now().Add(time.Duration(min(minutes, max)) * time.Minute),
		Keep:      &cluster.Keep{Reason: reason},
		Cause:     "api", Actor: p.Actor, Message: msg,
	})
	s.cfg.Metrics.ClusterOp("keep", outcome(err))
	return c, err
}

// revokeTimeout bounds how long a terminate waits for the tenant's
// access to be taken away.
const revokeTimeout = 15 * time.Second

// revoke takes the tenant's access to a terminated cluster away before
// the terminate is answered, so that its kubeconfigs are refused from the
// answer on, not only once the pool has wiped the member. It runs after
// the terminate is recorded: the member is dirty then, so it is never
// handed out again before the pool's release wipes it, whatever happens
// here. When the revoke fails (the cluster does not answer), the
// terminate stands; the event log says that access ends with the release.
// A stopped cluster needs none: its server is off (hetzner) or its
// control plane stopped (local) until the release wipes it.
func (s *Service) revoke(ctx context.Context, c cluster.Cluster, memberID, cause, actor string) {
	if !s.pool.CanRevoke() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	err := s.pool.Revoke(ctx, memberID)
	if err == nil {
		return
	}
	s.log.Warn("revoke the tenant's access of a terminated cluster", logkey.Cluster, c.ID, logkey.Member, memberID, logkey.Err, err)
	msg := "the tenant's access could not be revoked at once (" + err.Error() + "); it ends when SMEK wipes the server, which happens before the server serves anyone else"
	if err := s.db.RecordEvent(ctx, string(c.ID), "note", cause, actor, msg); err != nil {
		s.log.Warn("record a failed revoke", logkey.Cluster, c.ID, logkey.Err, err)
	}
}
