package jobs

import (
	"testing"
	"time"
)

func TestPrewarming(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		j    Job
		want bool
	}{
		{"queued, before its expiry", Job{State: Queued, Until: now.Add(time.Second)}, true},
		{"queued, at its expiry", Job{State: Queued, Until: now}, false},
		{"queued, no pre-warm", Job{State: Queued}, false},
		{"created", Job{State: Created, Until: now.Add(time.Minute)}, false},
		{"completed", Job{State: Completed, Until: now.Add(time.Minute)}, false},
	} {
		if got := tt.j.Prewarming(now); got != tt.want {
			t.Errorf("%s: Prewarming = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := PrewarmKey(289782451); got != "job:289782451" {
		t.Errorf("PrewarmKey = %q", got)
	}
	for s, want := range map[State]bool{Queued: true, Created: true, Completed: true, "": false, "done": false} {
		if s.Valid() != want {
			t.Errorf("State(%q).Valid() = %v, want %v", s, !want, want)
		}
	}
}
