package hetzner

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jonboulle/clockwork"
)

// budget wraps hcloud calls with what the project's budget of 3600 requests
// per hour needs: retries of 429, 5xx and network errors with exponential
// backoff, and a slow-down when RateLimit-Remaining runs low, before the
// API answers 429.
type budget struct {
	sleep func(ctx context.Context, d time.Duration) error
	// LowWater: below this many remaining requests, calls are spaced out.
	lowWater int
	retries  int
	base     time.Duration

	mu        sync.Mutex
	remaining int // last RateLimit-Remaining seen; -1 unknown
	reset     time.Time
	requests  int
}

func newBudget(sleep func(context.Context, time.Duration) error, base time.Duration, retries, lowWater int) *budget {
	return &budget{sleep: sleep, base: base, retries: retries, lowWater: lowWater, remaining: -1}
}

// do runs call with retries. call returns the hcloud response (may be nil).
func (a *budget) do(ctx context.Context, call func() (*hcloud.Response, error)) error {
	for attempt := 0; ; attempt++ {
		if err := a.pace(ctx); err != nil {
			return err
		}
		resp, err := call()
		a.observe(resp)
		if err == nil || !retryable(resp, err) || attempt >= a.retries {
			return err
		}
		// The budget refills by one request per second, so a 429 needs a
		// short wait, not one until RateLimit-Reset (when it is full).
		d := a.base << min(attempt, 6)
		if err := a.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// pace waits a little before a request when the budget is nearly spent:
// the fewer requests remain, the longer (one refill step, 1 s, per
// request under the low-water mark).
func (a *budget) pace(ctx context.Context) error {
	a.mu.Lock()
	rem := a.remaining
	a.requests++
	a.mu.Unlock()
	if rem < 0 || rem >= a.lowWater {
		return nil
	}
	return a.sleep(ctx, time.Duration(a.lowWater-rem)*a.base)
}

func (a *budget) observe(resp *hcloud.Response) {
	if resp == nil || resp.Response == nil || resp.Header.Get("RateLimit-Remaining") == "" {
		return
	}
	a.mu.Lock()
	a.remaining = resp.Meta.Ratelimit.Remaining
	a.reset = resp.Meta.Ratelimit.Reset
	a.mu.Unlock()
}

// Remaining is the last RateLimit-Remaining seen (-1 before any).
func (a *budget) Remaining() int { a.mu.Lock(); defer a.mu.Unlock(); return a.remaining }

func retryable(resp *hcloud.Response, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded, hcloud.ErrorCodeConflict, hcloud.ErrorCodeTimeout,
		hcloud.ErrorCodeServerError, hcloud.ErrorCodeServiceError, hcloud.ErrorCode("unavailable"), hcloud.ErrorCodeLocked) {
		return true
	}
	if resp != nil && resp.Response != nil && resp.StatusCode >= 500 {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// sleepCtx waits d on clock, or until ctx is done.
func sleepCtx(ctx context.Context, clock clockwork.Clock, d time.Duration) error {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}
