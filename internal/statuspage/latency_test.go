package statuspage

import (
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

func TestPercentile(t *testing.T) {
	v := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	tests := []struct {
		p    float64
		want int64
	}{{0.5, 50}, {0.95, 100}, {0.9, 90}, {0.01, 10}, {1, 100}}
	for _, tt := range tests {
		if got := percentile(v, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %d, want 0", got)
	}
}

func TestSummarizeBuckets(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sample := func(ago time.Duration, ms int64, warm bool) sqlite.ClaimSample {
		return sqlite.ClaimSample{At: now.Add(-ago), Timings: cluster.Timings{Ready: time.Duration(ms) * time.Millisecond, Warm: warm}}
	}
	s := summarize([]sqlite.ClaimSample{
		sample(59*time.Minute, 1000, true),
		sample(58*time.Minute, 3000, false),
		sample(time.Minute, 2000, true),
	}, now)
	if s.Count != 3 || s.Warm != 2 || s.Cold != 1 || s.P50 != 2000 || s.P95 != 3000 || s.Max != 3000 {
		t.Errorf("got %+v, want 3 claims, 2 warm, p50 2000, p95 3000", s)
	}
	// Two buckets have claims: the first (p95 3000 = the top) and the last.
	if s.Line != "15.0,2.0 345.0,20.7" {
		t.Errorf("line: got %q", s.Line)
	}
	if len(s.Dots) != 3 || s.Dots[0].X < 0 || s.Dots[2].X > sparkWidth {
		t.Errorf("dots: got %+v", s.Dots)
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{30 * time.Second, "30s"}, {42 * time.Minute, "42m"}, {185 * time.Minute, "3h05m"}, {52 * time.Hour, "2d4h"}}
	for _, tt := range tests {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
