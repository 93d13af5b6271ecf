package pool

import (
	"context"
	"fmt"
	"sync"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// CheckHealth asks a HealthChecker backend about every claimed and every
// ready member at once (at most HealthParallel at a time, each bounded by
// HealthTimeout). A claimed member that has failed LostAfter checks in a
// row is reported to OnLost, once, and returned. A ready member that has
// is marked failed, so that it is replaced rather than handed out. The
// checks of ready members also keep the backend's connection to them
// open (kube-apiserver closes one idle for 90 s), so that a claim does
// not wait for a TCP and TLS handshake. Run does this every HealthEvery;
// tests call it directly.
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
	var checked []cluster.Member
	for _, m := range members {
		if m.State == cluster.MemberClaimed || m.State == cluster.MemberReady {
			checked = append(checked, m)
		}
	}
	results := make([]error, len(checked))
	sem := make(chan struct{}, p.cfg.HealthParallel)
	var wg sync.WaitGroup
	for i, m := range checked {
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
	var report, replace []cluster.Member
	var reasons []string
	for i, m := range checked {
		seen[m.ID] = true
		if results[i] == nil {
			delete(p.failedChecks, m.ID)
			continue
		}
		p.failedChecks[m.ID]++
		n := p.failedChecks[m.ID]
		p.log.Warn(string(m.State)+" member unhealthy", logkey.Member, m.ID, logkey.Cluster, m.ClusterID, "failed_checks", n, logkey.Err, results[i])
		if n != p.cfg.LostAfter {
			continue
		}
		if m.State == cluster.MemberReady {
			if !p.busy[m.ID] {
				replace = append(replace, m)
			}
			continue
		}
		report = append(report, m)
		reasons = append(reasons, results[i].Error())
	}
	for id := range p.failedChecks {
		if !seen[id] {
			delete(p.failedChecks, id) // no longer claimed or ready
		}
	}
	// Under p.mu, as markGhosts: no goroutine starts work on them meanwhile.
	for _, m := range replace {
		p.setState(ctx, m, cluster.MemberFailed, nil, fmt.Sprintf("unhealthy while ready: %d checks in a row failed", p.cfg.LostAfter))
	}
	onLost := p.onLost
	p.mu.Unlock()
	if len(replace) > 0 {
		p.Nudge()
	}

	for i, m := range report {
		lost = append(lost, m.ID)
		if onLost != nil {
			onLost(ctx, m, reasons[i])
		}
	}
	return lost, nil
}
