package lifecycle

import (
	"context"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
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
				s.log.Warn("sweep", logkey.Err, err)
			}
		}),
		gocron.WithName("ttl-sweeper"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	return err
}

// Sweep ends the clusters whose deadline has passed — stopped when they
// were created with keep-cluster, terminated otherwise — and the stopped
// clusters past the maximum stopped lifetime, and warns owners of clusters
// whose end is near.
func (s *Service) Sweep(ctx context.Context) error {
	if err := s.recovered(ctx); err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
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
		s.notify(ctx, cluster.NotifyExpiring, c, "ttl", "")
	}
	return s.sweepStopped(ctx, now)
}

// sweepStopped terminates the stopped clusters past their stopped deadline
// and warns, once, the owners of those whose end is less than
// StoppedWarning away.
func (s *Service) sweepStopped(ctx context.Context, now time.Time) error {
	// Clusters stopped before there were stopped deadlines get a full
	// lifetime from now.
	n, err := s.db.SetMissingStoppedDeadlines(ctx, now.Add(s.cfg.MaxStoppedLifetime))
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("gave stopped clusters without a stopped deadline one", "clusters", n, "lifetime", s.cfg.MaxStoppedLifetime)
	}
	due, err := s.db.DueStoppedClusters(ctx, now)
	if err != nil {
		return err
	}
	for _, c := range due {
		s.expireStopped(ctx, c)
	}
	soon, err := s.db.StoppedExpiringClusters(ctx, now.Add(s.cfg.StoppedWarning))
	if err != nil {
		return err
	}
	for _, c := range soon {
		marked, err := s.db.MarkStoppedWarned(ctx, c.ID)
		if err != nil {
			return err
		}
		if marked {
			s.notify(ctx, cluster.NotifyStoppedExpiring, c, "ttl", "")
		}
	}
	return nil
}

func (s *Service) expire(ctx context.Context, c cluster.Cluster) {
	unlock := s.lock(c.ID)
	defer unlock()
	c, err := s.db.Cluster(ctx, 0, c.ID) // fresh, under the lock
	if err != nil || c.Status != cluster.Running || c.ExpiresAt.After(s.cfg.Clock.Now()) {
		return
	}
	action := "terminate"
	if c.Spec.KeepCluster {
		action = "stop"
		_, err = s.stop(ctx, c, "ttl", "")
		if cluster.ErrorCode(err) == cluster.ELIMIT {
			// No cluster runs past its deadline, and no account keeps
			// more stopped clusters than it may: this one ends.
			action = "terminate"
			_, err = s.terminate(ctx, c, "ttl", "", "it reached its deadline while the account kept as many stopped clusters as it may (max-stopped-clusters), so it could not be stopped")
		}
	} else {
		_, err = s.terminate(ctx, c, "ttl", "", "")
	}
	if err != nil {
		s.log.Warn("expire cluster", logkey.Cluster, c.ID, "action", action, logkey.Err, err)
		return
	}
	s.cfg.Metrics.TTLExpiry(action)
}

// expireStopped terminates a stopped cluster past its stopped deadline.
func (s *Service) expireStopped(ctx context.Context, c cluster.Cluster) {
	unlock := s.lock(c.ID)
	defer unlock()
	c, err := s.db.Cluster(ctx, 0, c.ID) // fresh, under the lock
	if err != nil || c.Status != cluster.Stopped || c.StoppedExpiresAt.IsZero() || c.StoppedExpiresAt.After(s.cfg.Clock.Now()) {
		return
	}
	reason := "it was stopped for longer than the maximum stopped lifetime (" + shortDuration(s.cfg.MaxStoppedLifetime) + ")"
	if _, err := s.terminate(ctx, c, "ttl", "", reason); err != nil {
		s.log.Warn("end stopped cluster", logkey.Cluster, c.ID, logkey.Err, err)
		return
	}
	s.cfg.Metrics.TTLExpiry("terminate-stopped")
}

// shortDuration writes d without zero minutes and seconds: 168h, 1h30m.
func shortDuration(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}
