package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// HibernateInterval is how often the hibernation sweeper looks for
// clusters stopped for longer than Config.HibernateAfter.
const HibernateInterval = time.Minute

// DefaultHibernateAfter is how long a cluster stays stopped before it is
// hibernated unless the server is configured otherwise: past two hours a
// snapshot (about €0.01 per GB and month) is far cheaper than a
// powered-off server, which Hetzner bills in full.
const DefaultHibernateAfter = 2 * time.Hour

// ScheduleHibernation adds the hibernation sweeper to a scheduler, when
// hibernation is on (Config.HibernateAfter) and the backend can hibernate.
// It runs apart from the TTL sweeper: a hibernation takes minutes, and
// deadlines must not wait for it.
func (s *Service) ScheduleHibernation(sch gocron.Scheduler) error {
	if s.cfg.HibernateAfter <= 0 || !s.pool.CanHibernate() {
		return nil
	}
	_, err := sch.NewJob(gocron.DurationJob(HibernateInterval),
		gocron.NewTask(func(ctx context.Context) {
			if _, err := s.SweepHibernation(ctx); err != nil {
				s.log.Warn("hibernation sweep", logkey.Err, err)
			}
		}),
		gocron.WithName("hibernation-sweeper"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	return err
}

// SweepHibernation hibernates the clusters stopped for longer than
// Config.HibernateAfter, one after the other, and returns the ids of
// those it hibernated. A cluster that could not be hibernated stays
// stopped (its server kept) and is tried again at the next sweep.
func (s *Service) SweepHibernation(ctx context.Context) ([]cluster.ID, error) {
	if s.cfg.HibernateAfter <= 0 || !s.pool.CanHibernate() {
		return nil, nil
	}
	if err := s.recovered(ctx); err != nil {
		return nil, err
	}
	stopped, err := s.db.Clusters(ctx, cluster.Filter{Statuses: []cluster.Status{cluster.Stopped}})
	if err != nil {
		return nil, err
	}
	var done []cluster.ID
	var errs []error
	for _, c := range stopped {
		if ctx.Err() != nil {
			break
		}
		if !s.stoppedLongEnough(c) {
			continue // not yet: no lock, no reads (hibernate checks again under the lock)
		}
		ok, err := s.hibernate(ctx, c.ID)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			done = append(done, c.ID)
		}
	}
	if len(errs) > 0 {
		return done, fmt.Errorf("hibernate %d clusters: %w", len(errs), errs[0])
	}
	return done, nil
}

// stoppedLongEnough reports whether c has been stopped for HibernateAfter.
func (s *Service) stoppedLongEnough(c cluster.Cluster) bool {
	return !c.StoppedAt.IsZero() && s.cfg.Clock.Since(c.StoppedAt) >= s.cfg.HibernateAfter
}

// hibernate hibernates one cluster when it is still stopped and has been
// for HibernateAfter, under the cluster's lock (a start waits for it).
func (s *Service) hibernate(ctx context.Context, id cluster.ID) (bool, error) {
	unlock := s.lock(id)
	defer unlock()
	c, err := s.db.Cluster(ctx, 0, id) // fresh, under the lock
	if err != nil {
		return false, err
	}
	if c.Status != cluster.Stopped || !s.stoppedLongEnough(c) {
		return false, nil
	}
	ok, err := s.pool.Hibernate(ctx, c)
	if err != nil {
		s.log.Warn("hibernate cluster", logkey.Cluster, c.ID, logkey.Err, err)
		return false, fmt.Errorf("cluster %s: %w", c.ID, err)
	}
	if ok {
		msg := "hibernated: stopped for longer than " + shortDuration(s.cfg.HibernateAfter) + ", its server was snapshotted and deleted; a start restores it, which takes minutes"
		if err := s.db.RecordEvent(ctx, string(c.ID), "hibernated", "hibernation", "", msg); err != nil {
			s.log.Warn("record hibernation", logkey.Cluster, c.ID, logkey.Err, err)
		}
		s.log.Info("cluster hibernated", logkey.Cluster, c.ID)
	}
	return ok, nil
}
