package pool

import (
	"context"
	"sync"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// CheckHealth asks a HealthChecker backend about every claimed member at
// once (at most HealthParallel at a time, each bounded by HealthTimeout).
// A member that has failed LostAfter checks in a row is reported to
// OnLost, once, and returned. Run does this every HealthEvery; tests call
// it directly.
func (p *Pool) CheckHealth(ctx context.Context) (lost []string, err error) {
	p.checking.Lock()
	defer p.checking.Unlock()
	return p.checkHealth(ctx)
}

func (p *Pool) checkHealth(ctx context.Context) (lost []string, err error) {
	hc, ok := p.backend.(HealthChecker)
	if !ok {
		return nil, nil
	}
	members, err := p.store.Members(ctx, p.backend.Name())
	if err != nil {
		return nil, err
	}
	var claimed []cluster.Member
	for _, m := range members {
		if m.State == cluster.MemberClaimed {
			claimed = append(claimed, m)
		}
	}
	results := make([]error, len(claimed))
	sem := make(chan struct{}, p.cfg.HealthParallel)
	var wg sync.WaitGroup
	for i, m := range claimed {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, p.cfg.HealthTimeout)
			defer cancel()
			results[i] = hc.Healthy(cctx, m)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	p.mu.Lock()
	seen := map[string]bool{}
	var report []cluster.Member
	var reasons []string
	for i, m := range claimed {
		seen[m.ID] = true
		if results[i] == nil {
			delete(p.failedChecks, m.ID)
			continue
		}
		p.failedChecks[m.ID]++
		n := p.failedChecks[m.ID]
		p.log.Warn("claimed member unhealthy", logkey.Member, m.ID, logkey.Cluster, m.ClusterID, "failed_checks", n, logkey.Err, results[i])
		if n == p.cfg.LostAfter {
			report = append(report, m)
			reasons = append(reasons, results[i].Error())
		}
	}
	for id := range p.failedChecks {
		if !seen[id] {
			delete(p.failedChecks, id) // no longer claimed
		}
	}
	onLost := p.onLost
	p.mu.Unlock()

	for i, m := range report {
		lost = append(lost, m.ID)
		if onLost != nil {
			onLost(ctx, m, reasons[i])
		}
	}
	return lost, nil
}
