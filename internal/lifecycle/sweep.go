package lifecycle

import (
	"context"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/smek/action/internal/cluster"
)

// SweepInterval is how often the sweeper looks for clusters past their
// deadline; with it a cluster runs at most this much past its deadline.
const SweepInterval = 15 * time.Second

// Schedule adds the sweeper to a scheduler; it also runs at once, so that
// clusters that expired while the server was down go first thing.
func (s *Service) Schedule(sch gocron.Scheduler) error {
	_, err := sch.NewJob(gocron.DurationJob(SweepInterval),
		gocron.NewTask(func(ctx context.Context) {
			if err := s.Sweep(ctx); err != nil {
				s.log.Warn("sweep", "err", err)
			}
		}),
		gocron.WithName("ttl-sweeper"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	return err
}

// Sweep ends the clusters whose deadline has passed — stopped when they
// were created with keep-cluster, terminated otherwise — and warns owners of
// clusters whose deadline is near.
func (s *Service) Sweep(ctx context.Context) error {
	if err := s.recovered(ctx); err != nil {
		return err
	}
	now := s.cfg.Now()
	due, err := s.db.DueClusters(ctx, now)
	if err != nil {
		return err
	}
	for _, c := range due {
		s.expire(ctx, c)
	}
	soon, err := s.db.ExpiringClusters(ctx, now.Add(s.cfg.ExpiryWarning))
	if err != nil {
		return err
	}
	for _, c := range soon {
		if err := s.db.MarkWarned(ctx, c.ID); err != nil {
			return err
		}
		s.notify(ctx, cluster.NotifyExpiring, c, "ttl")
	}
	return nil
}

func (s *Service) expire(ctx context.Context, c cluster.Cluster) {
	unlock := s.lock(c.ID)
	defer unlock()
	c, err := s.db.Cluster(ctx, 0, c.ID) // fresh, under the lock
	if err != nil || c.Status != cluster.Running || c.ExpiresAt.After(s.cfg.Now()) {
		return
	}
	action := "terminate"
	if c.Spec.KeepCluster {
		action = "stop"
		_, err = s.stop(ctx, c, "ttl", "")
	} else {
		_, err = s.terminate(ctx, c, "ttl", "")
	}
	if err != nil {
		s.log.Warn("expire cluster", "cluster", c.ID, "action", action, "err", err)
		return
	}
	s.cfg.Metrics.TTLExpiry(action)
}
