package githubapp

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"

	"github.com/smek/action/internal/fake/githubfake"
)

// When GitHub says when to come back, the next try is scheduled then, not
// after the fixed backoff: the primary limit's X-RateLimit-Reset, a
// secondary limit's Retry-After, and at least a minute for a secondary
// limit that names no time.
func TestRateLimitedTryWaitsForGitHub(t *testing.T) {
	tests := []struct {
		name  string
		limit func(h *harness)
		// wait is how long after the failed try the next one is due.
		wait time.Duration
		// realClock marks a limit go-github itself remembers on the real
		// clock (a 403's or 429's Retry-After): it refuses to call before then,
		// however far the test moves its clock, so the retry is not
		// followed here.
		realClock bool
	}{{
		name: "primary limit: X-RateLimit-Reset",
		limit: func(h *harness) {
			h.github.SetRateLimit(testInstallation, 5000, 0, h.clock.Now().Add(17*time.Minute))
		},
		wait: 17 * time.Minute,
	}, {
		name: "secondary limit, 429 with Retry-After",
		limit: func(h *harness) {
			h.github.SecondaryRateLimit(githubfake.RouteReaction, http.StatusTooManyRequests, 90*time.Second)
		},
		wait:      90 * time.Second,
		realClock: true,
	}, {
		name: "secondary limit, 403 with Retry-After",
		limit: func(h *harness) {
			h.github.SecondaryRateLimit(githubfake.RouteReaction, http.StatusForbidden, 45*time.Second)
		},
		wait:      45 * time.Second,
		realClock: true,
	}, {
		name:  "secondary limit without a time: at least a minute",
		limit: func(h *harness) { h.github.SecondaryRateLimit(githubfake.RouteReaction, http.StatusForbidden, 0) },
		wait:  time.Minute,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.limit(h)
			start := h.clock.Now()
			if status, _ := h.send(delivery{event: "issue_comment", id: "comment-1", body: commentPayload(t, "/smek list", "OWNER")}); status != http.StatusAccepted {
				t.Fatal("not accepted")
			}
			at := h.nextRetry()
			if want := start.Add(tt.wait); !at.Equal(want) {
				t.Fatalf("next try at %s (after %s), want %s (after %s)", at, at.Sub(start), want, tt.wait)
			}
			if tt.realClock {
				return
			}
			// GitHub's window rolls over as the clock reaches it.
			h.github.SetRateLimit(testInstallation, 5000, 5000, at.Add(time.Hour))
			h.clock.Advance(at.Sub(h.clock.Now()))
			if r := h.wait(); r.Err != nil || r.Attempts != 2 {
				t.Fatalf("got %+v, want the command done on its 2nd try", r)
			}
		})
	}
}

// A secondary limit that names no time again: the wait doubles from a
// minute.
func TestRepeatedSecondaryLimitBacksOff(t *testing.T) {
	h := newHarness(t)
	for range 3 {
		h.github.SecondaryRateLimit(githubfake.RouteReaction, http.StatusForbidden, 0)
	}
	if status, _ := h.send(delivery{event: "issue_comment", body: commentPayload(t, "/smek list", "OWNER")}); status != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		now := h.clock.Now()
		at := h.nextRetry()
		if got := at.Sub(now); got != want {
			t.Fatalf("wait %s, want %s", got, want)
		}
		h.clock.Advance(at.Sub(now))
	}
	if r := h.wait(); r.Err != nil || r.Attempts != 4 {
		t.Fatalf("got %+v, want done on the 4th try", r)
	}
}

// retryTime reads every form of GitHub's answer that the documentation
// describes; go-github knows only some of them.
func TestRetryTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	answer := func(status int, header map[string]string, message string) error {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Request: &http.Request{Method: "POST", URL: &url.URL{Path: "/x"}}}
		for k, v := range header {
			resp.Header.Set(k, v)
		}
		return fmt.Errorf("react: %w", &github.ErrorResponse{Response: resp, Message: message})
	}
	reset := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name      string
		err       error
		n         int
		want      time.Duration // after now
		permanent bool
	}{
		{"primary limit answered 429", answer(429, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset(20 * time.Minute)}, "API rate limit exceeded"), 1, 20 * time.Minute, false},
		{"Retry-After wins over the reset", answer(429, map[string]string{"Retry-After": "30", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset(20 * time.Minute)}, ""), 1, 30 * time.Second, false},
		{"Retry-After as an HTTP date", answer(403, map[string]string{"Retry-After": now.Add(3 * time.Minute).Format(http.TimeFormat)}, "You have exceeded a secondary rate limit."), 1, 3 * time.Minute, false},
		{"a wait over an hour is cut", answer(429, map[string]string{"Retry-After": "86400"}, ""), 1, time.Hour, false},
		{"a reset already past: the backoff", answer(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset(-time.Minute)}, ""), 3, backoff(3), false},
		{"a secondary limit known by its message", answer(403, nil, "You have exceeded a secondary rate limit. Please wait."), 2, 2 * time.Minute, false},
		{"a 429 without a time", answer(429, nil, ""), 1, time.Minute, false},
		{"the token endpoint rate limited", &ghinstallation.HTTPError{Response: &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"120"}}}}, 1, 2 * time.Minute, false},
		{"go-github's own refusal before a known reset", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: now.Add(5 * time.Minute)}},
			Response: &http.Response{StatusCode: 403, Header: http.Header{}, Request: &http.Request{Method: "POST", URL: &url.URL{Path: "/x"}}}}, 1, 5 * time.Minute, false},
		{"a forbidden call: no retry", answer(403, map[string]string{"X-RateLimit-Remaining": "4999"}, "Resource not accessible by integration"), 1, 0, true},
		{"a deleted comment: no retry", answer(404, nil, "Not Found"), 1, 0, true},
		{"GitHub down: the backoff", answer(502, nil, ""), 2, backoff(2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := githubError(tt.err, now)
			if isPermanent(err) != tt.permanent {
				t.Fatalf("permanent: got %t, want %t (%v)", isPermanent(err), tt.permanent, err)
			}
			if tt.permanent {
				return
			}
			if got := retryTime(now, tt.n, err).Sub(now); got != tt.want {
				t.Fatalf("next try after %s, want %s", got, tt.want)
			}
		})
	}
}
