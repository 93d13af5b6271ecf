package server

import (
	"context"
	"slices"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/logkey"
)

// prewarmPool makes the pre-warmer of the embedded GitHub App when it is
// on (for the flavors of versions), and returns the pool the lifecycle
// claims through: one that tells the pre-warmer of every claim.
func (s *Server) prewarmPool(versions []string) (lifecycle.Pool, error) {
	cfg := s.cfg
	if cfg.GitHubWebhookSecret == "" || !cfg.GitHubPrewarm {
		return s.Pool, nil
	}
	pw, err := githubapp.NewPrewarmer(githubapp.PrewarmConfig{Pool: s.Pool, Store: s.DB, TTL: cfg.PrewarmTTL, Cap: cfg.PrewarmCap,
		Clock: cfg.Clock, Logger: cfg.Logger, OnLearned: cfg.PrewarmOnLearned, Metrics: s.Metrics.NewPrewarms(),
		Offered: func(f cluster.Flavor) bool {
			return slices.Contains(versions, f.K8sVersion) && slices.Contains(cluster.Sizes, f.Size)
		}})
	if err != nil {
		return nil, err
	}
	s.prewarm = pw
	return claimWatch{Pool: s.Pool, claimed: pw.Claimed}, nil
}

// resumePrewarms raises the pre-warms the last run left under way.
func (s *Server) resumePrewarms(ctx context.Context) error {
	if s.prewarm == nil {
		return nil
	}
	n, err := s.prewarm.Resume(ctx)
	if err != nil {
		return err
	}
	s.log.Info("pre-warming from queued workflow jobs on", logkey.Count, n)
	return nil
}

// claimWatch is the pool with every successful claim told to claimed.
type claimWatch struct {
	lifecycle.Pool
	claimed func(cluster.Cluster)
}

func (w claimWatch) Claim(ctx context.Context, c cluster.Cluster) (cluster.Member, error) {
	m, err := w.Pool.Claim(ctx, c)
	if err == nil {
		c.ID, c.MemberID = m.ClusterID, m.ID
		w.claimed(c)
	}
	return m, err
}
