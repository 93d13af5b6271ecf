package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Created is the answer to a create: the cluster and its kubeconfig.
type Created struct {
	Cluster    cluster.Cluster
	Kubeconfig cluster.Kubeconfig
}

// Create claims a ready cluster of the requested flavor for p, waiting up to
// the request's wait budget when the pool is empty. A create that fails
// leaves nothing behind: the claimed member is released.
func (s *Service) Create(ctx context.Context, p cluster.Principal, in cluster.CreateInput) (Created, error) {
	res, err := s.create(ctx, p, in)
	s.cfg.Metrics.ClusterOp("create", outcome(err))
	return res, err
}

func (s *Service) create(ctx context.Context, p cluster.Principal, in cluster.CreateInput) (Created, error) {
	start := s.cfg.Clock.Now()
	// A suspended account is told so whatever it asks for.
	if p.Account.MaxClusters == 0 {
		return Created{}, cluster.SuspendedError(p.Account.Name)
	}
	sp, err := s.spec(p, in)
	if err != nil {
		return Created{}, err
	}
	wait, err := s.waitFor(in)
	if err != nil {
		return Created{}, err
	}
	// The cluster takes the id its member reserved (ClaimMember): the
	// node carries it already.
	c := cluster.Cluster{
		AccountID: p.Account.ID, Account: p.Account.Name, Spec: sp, Status: cluster.Pending,
		Run: runOf(p, in.Run), CreatedBy: p.Actor, Timings: cluster.Timings{Warm: true},
	}

	deadline := s.cfg.Clock.NewTimer(wait)
	defer deadline.Stop()
	var done func()
	defer func() {
		if done != nil {
			done()
		}
	}()
	var m cluster.Member
	for {
		ready := s.pool.Ready() // before the claim, so no signal is missed
		now := s.cfg.Clock.Now()
		c.CreatedAt, c.Timings.Queued = now, now.Sub(start)
		c.ExpiresAt = now.Add(time.Duration(sp.MinutesToLive) * time.Minute)
		// The claim checks the account's limit before it looks for a
		// member: a doomed request is refused before any wait.
		m, err = s.pool.Claim(ctx, c)
		if err == nil {
			if done == nil {
				s.pool.ObserveCreate(sp.Flavor(), true)
			}
			break
		}
		if !errors.Is(err, cluster.ErrPoolEmpty) {
			return Created{}, err
		}
		if done == nil {
			c.Timings.Warm = false
			s.cfg.Metrics.PoolEmptyWait()
			done = s.pool.Want(sp.Flavor())
			// Told at once, not when served: the policy raises the
			// target while this create waits.
			s.pool.ObserveCreate(sp.Flavor(), false)
			s.log.Info("pool empty, waiting", logkey.Flavor, sp.Flavor().String(), "wait", wait)
		}
		select {
		case <-ready:
		case <-deadline.Chan():
			return Created{}, cluster.Errorf(cluster.EUNAVAILABLE, "", "no %s cluster became ready within %s; try again or ask for a longer wait", sp.Flavor(), wait)
		case <-ctx.Done():
			return Created{}, ctx.Err()
		}
	}
	if done != nil {
		done()
		done = nil
	}
	c.ID, c.MemberID = m.ClusterID, m.ID
	claimed := s.cfg.Clock.Now()
	c.Timings.Claimed = claimed.Sub(start) - c.Timings.Queued

	if err := s.recovered(ctx); err != nil {
		s.fail(ctx, c.ID, "waiting for the pool to recover: "+err.Error())
		return Created{}, err
	}
	kc, err := s.pool.Prepare(ctx, m, c)
	if err != nil {
		s.log.Error("prepare claimed cluster", logkey.Cluster, c.ID, logkey.Member, m.ID, logkey.Err, err)
		s.fail(ctx, c.ID, "claim: "+err.Error())
		return Created{}, &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the cluster could not be prepared; nothing was left behind, please try again", Err: err}
	}
	c.Timings.Ready = s.cfg.Clock.Now().Sub(claimed)
	c, err = s.db.UpdateCluster(ctx, c.ID, cluster.Change{
		From: []cluster.Status{cluster.Pending}, To: cluster.Running,
		APIServer: kc.APIServer, Timings: &c.Timings, Cause: "api", Actor: p.Actor,
	})
	if err != nil {
		s.fail(ctx, c.ID, "record running: "+err.Error())
		return Created{}, err
	}
	s.withPhases(ctx, &c, &m)
	s.cfg.Metrics.ObserveClaim(c.Timings.Warm, c.Timings.Total())
	s.log.Info("cluster created", logkey.Cluster, c.ID, logkey.Account, p.Account.Name, logkey.Member, m.ID,
		"warm", c.Timings.Warm, logkey.Took, c.Timings.Total().Round(time.Millisecond))
	s.notify(ctx, cluster.NotifyStarted, c, "api", "")
	return Created{Cluster: c, Kubeconfig: kc}, nil
}

// fail marks a cluster whose create went wrong as failed and gives its
// member back to the pool to be cleaned.
func (s *Service) fail(ctx context.Context, id cluster.ID, reason string) {
	ctx = context.WithoutCancel(ctx)
	if _, err := s.pool.Release(ctx, id, cluster.Change{
		To: cluster.Failed, ReleaseMember: true, MemberState: cluster.MemberDirty, Cause: "api", Message: reason,
	}); err != nil {
		s.log.Error("mark cluster failed", logkey.Cluster, id, logkey.Err, err)
		s.pool.Nudge()
	}
}

// runOf picks the run metadata to record: verified claims of an OIDC token
// win over what the client sent.
func runOf(p cluster.Principal, sent *cluster.RunMetadata) cluster.RunMetadata {
	if p.Run != nil {
		r := *p.Run
		r.Verified = true
		if sent != nil { // what the token cannot know
			if r.Runner == "" {
				r.Runner = sent.Runner
			}
			if r.Job == "" {
				r.Job = sent.Job
			}
			if r.JobID == 0 {
				r.JobID = sent.JobID
			}
			if r.PullRequest == 0 {
				r.PullRequest = sent.PullRequest
			}
		}
		return r
	}
	if sent == nil {
		return cluster.RunMetadata{}
	}
	r := *sent
	r.Verified = false
	return r
}

// EndInterruptedCreates fails the clusters a previous run of the
// provisioner left pending: it stopped between a create's claim
// transaction and the cluster's writes (ownership record, credential) or
// the record that it runs, so no one holds a kubeconfig for them. Their
// members go back to the pool to be cleaned (a rebuild wipes the label
// and whatever was written). The claim transaction is the one truth a
// create has: nothing else tells a half-made cluster apart. Call it once
// at start, before the API serves, when no create of this run is pending.
func (s *Service) EndInterruptedCreates(ctx context.Context) (int, error) {
	pending, err := s.db.Clusters(ctx, cluster.Filter{Statuses: []cluster.Status{cluster.Pending}})
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, c := range pending {
		_, err := s.pool.Release(ctx, c.ID, cluster.Change{
			From: []cluster.Status{cluster.Pending}, To: cluster.Failed, ReleaseMember: true, MemberState: cluster.MemberDirty,
			Cause: "reconciler", Message: "the provisioner stopped while the cluster was being created; create another",
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("end interrupted create of %s: %w", c.ID, err))
			continue
		}
		s.log.Warn("ended a create the last run left unfinished", logkey.Cluster, c.ID, logkey.Account, c.Account, logkey.Member, c.MemberID)
		n++
	}
	return n, errors.Join(errs...)
}
