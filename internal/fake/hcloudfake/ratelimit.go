package hcloudfake

import (
	"net/http"
	"strconv"
	"time"
)

// bucket is the project's request budget: Limit requests, refilled by one
// every Refill (the documented default is 3600 per hour, one per second).
// The fake's mutex guards it.
type bucket struct {
	limit     int
	refill    time.Duration
	remaining int
	last      time.Time // time of the last refill step
}

func newBucket(limit int, refill time.Duration, now time.Time) *bucket {
	return &bucket{limit: limit, refill: refill, remaining: limit, last: now}
}

// take refills by the time passed and spends one request. It reports false
// when the budget is exhausted.
func (b *bucket) take(now time.Time) bool {
	if b.refill > 0 && now.After(b.last) {
		steps := int(now.Sub(b.last) / b.refill)
		if steps > 0 {
			b.remaining = min(b.limit, b.remaining+steps)
			b.last = b.last.Add(time.Duration(steps) * b.refill)
		}
	}
	if b.remaining >= b.limit {
		b.last = now
	}
	if b.remaining <= 0 {
		return false
	}
	b.remaining--
	return true
}

// header writes RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (the UNIX time at which the budget is full again).
func (b *bucket) header(h http.Header, now time.Time) {
	h.Set("RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(b.remaining))
	reset := now.Add(time.Duration(b.limit-b.remaining) * b.refill)
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}
