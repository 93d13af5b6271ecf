package policy

import (
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Prewarms are the pre-warms under way: each raises its flavor's target by
// one until the create it expects arrives (Use) or it expires. A key names
// what is expected, e.g. a queued CI job ("job:289782451"). The zero
// value is ready to use and safe for concurrent use.
type Prewarms struct {
	mu sync.Mutex
	m  map[string]prewarm
}

type prewarm struct {
	f     cluster.Flavor
	until time.Time
}

// Add starts a pre-warm of flavor f for key until the given time. A key
// already under way is not added twice (added is false); its expiry is
// not moved.
func (p *Prewarms) Add(key string, f cluster.Flavor, until time.Time) (added bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[key]; ok {
		return false
	}
	if p.m == nil {
		p.m = map[string]prewarm{}
	}
	p.m[key] = prewarm{f: f, until: until}
	return true
}

// Use ends key's pre-warm because its create arrived (a hit); ok is false
// when no pre-warm for key was under way.
func (p *Prewarms) Use(key string) (f cluster.Flavor, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.m[key]
	delete(p.m, key)
	return w.f, ok
}

// Extra returns how many members the pre-warms under way add to each
// flavor's target at now. Pre-warms that expired by now are ended and
// returned (misses: their create never came).
func (p *Prewarms) Extra(now time.Time) (extra map[cluster.Flavor]int, expired []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	extra = map[cluster.Flavor]int{}
	for k, w := range p.m {
		if !now.Before(w.until) {
			delete(p.m, k)
			expired = append(expired, k)
			continue
		}
		extra[w.f]++
	}
	return extra, expired
}
