package policy

import (
	"testing"
	"time"
)

func TestWarnLimiter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w := &warnLimiter{now: func() time.Time { return now }, every: 5 * time.Minute}
	steps := []struct {
		after      time.Duration
		msg        string
		want       bool
		suppressed int
	}{
		{0, "webhook failed", true, 0},
		{time.Second, "webhook failed", false, 0},
		{time.Minute, "webhook failed", false, 0},
		{4 * time.Minute, "webhook failed", true, 2}, // five minutes after the first
		{time.Second, "connection refused", true, 0}, // a new failure is news
		{time.Second, "webhook failed", true, 0},     // and so is the old one again
		{time.Second, "webhook failed", false, 0},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		n, ok := w.allow(s.msg)
		if ok != s.want || (ok && n != s.suppressed) {
			t.Errorf("step %d (%q): got (%d, %t), want (%d, %t)", i, s.msg, n, ok, s.suppressed, s.want)
		}
	}
}

func TestSameRules(t *testing.T) {
	applied := CustomResourceRules(nil)
	if !sameRules(nil, applied) || !sameRules([]any{}, nil) {
		t.Error("an absent and an empty rule list differ")
	}
	a := []any{map[string]any{"apiGroups": []any{"example.com"}, "resources": []any{"widgets"}, "verbs": []any{"get"}}}
	b := []any{map[string]any{"apiGroups": []string{"example.com"}, "resources": []string{"widgets"}, "verbs": []string{"get"}}}
	if !sameRules(a, b) {
		t.Error("the same rules in other Go types differ")
	}
	c := []any{map[string]any{"apiGroups": []string{"*"}, "resources": []string{"widgets"}, "verbs": []string{"get"}}}
	if sameRules(a, c) {
		t.Error("a rewritten rule compares equal")
	}
}
