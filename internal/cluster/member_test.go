package cluster

import (
	"slices"
	"testing"
)

// TestMemberTransitions walks the member's state machine: every listed step
// is allowed, every other pair refused, every state reachable from
// creating, and deleted is the end.
func TestMemberTransitions(t *testing.T) {
	states := MemberStates()
	if len(memberTransitions) != len(states) {
		t.Fatalf("the table has %d states, want %d", len(memberTransitions), len(states))
	}
	for _, from := range states {
		next, ok := memberTransitions[from]
		if !ok {
			t.Errorf("state %s is missing from the table", from)
		}
		for _, to := range states {
			want := slices.Contains(next, to)
			if got := from.CanBecome(to); got != want {
				t.Errorf("%s.CanBecome(%s) = %v, want %v", from, to, got, want)
			}
			err := CheckMemberTransition("s-1", from, to)
			if want != (err == nil) {
				t.Errorf("CheckMemberTransition(%s, %s) = %v", from, to, err)
			}
			if err != nil && ErrorCode(err) != ECONFLICT {
				t.Errorf("CheckMemberTransition(%s, %s) code = %s, want %s", from, to, ErrorCode(err), ECONFLICT)
			}
		}
	}

	reached := map[MemberState]bool{MemberCreating: true}
	queue := []MemberState{MemberCreating}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range memberTransitions[s] {
			if !reached[n] {
				reached[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range states {
		if !reached[s] {
			t.Errorf("state %s cannot be reached from %s", s, MemberCreating)
		}
	}

	if n := memberTransitions[MemberDeleted]; len(n) != 0 {
		t.Errorf("deleted may become %v, want nothing", n)
	}
	for _, s := range states {
		if s != MemberDeleted && !s.CanBecome(MemberFailed) {
			t.Errorf("%s cannot fail", s)
		}
	}
	if !MemberFailed.CanBecome(MemberDeleted) {
		t.Errorf("a failed member cannot be deleted")
	}
	for _, s := range []MemberState{MemberDirty, MemberClaimed, MemberStopped} {
		if s.CanBecome(MemberReady) {
			t.Errorf("%s may become ready without a rebuild", s)
		}
	}
}
