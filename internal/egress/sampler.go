package egress

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// sampler lets at most n events through per interval, and counts the rest,
// so that a tenant scanning ports cannot flood the log.
type sampler struct {
	clock    clockwork.Clock
	n        int
	interval time.Duration

	// mu guards the fields below.
	mu         sync.Mutex
	start      time.Time // of the current interval
	passed     int       // in the current interval
	suppressed int       // since the last event that passed
}

// allow reports whether an event may be logged, and how many were
// suppressed since the last one that was.
func (s *sampler) allow() (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if now.Sub(s.start) >= s.interval || now.Before(s.start) {
		s.start, s.passed = now, 0
	}
	if s.passed >= s.n {
		s.suppressed++
		return false, 0
	}
	s.passed++
	suppressed, s.suppressed = s.suppressed, 0
	return true, suppressed
}
