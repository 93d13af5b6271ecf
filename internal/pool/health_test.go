package pool_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
)

// sickBackend answers health checks from a table: a member listed fails.
type sickBackend struct {
	*memBackend
	mu      sync.Mutex
	sick    map[string]bool
	checked []string
}

func (b *sickBackend) Healthy(_ context.Context, m cluster.Member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checked = append(b.checked, m.ID)
	if b.sick[m.ID] {
		return errors.New("readyz: connection refused")
	}
	return nil
}

func (b *sickBackend) setSick(id string, sick bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sick[id] = sick
}

var _ pool.HealthChecker = (*sickBackend)(nil)

// TestLostAfterConsecutiveFailedChecks: a claimed member is reported lost
// after LostAfter failed checks in a row, once; a success in between
// starts the count again. A ready member that fails as often is marked
// failed, to be replaced, and is not reported lost: no cluster is on it.
func TestLostAfterConsecutiveFailedChecks(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	b := &sickBackend{memBackend: newMem(), sick: map[string]bool{}}
	p := pool.New(db, b, pool.Config{LostAfter: 2})
	var mu sync.Mutex
	var lost []string
	p.OnLost(func(_ context.Context, m cluster.Member, reason string) {
		mu.Lock()
		defer mu.Unlock()
		lost = append(lost, m.ID+": "+reason)
	})
	ids := map[string]string{}
	for _, name := range []string{"healthy", "flaky", "dead", "ready"} {
		m, err := db.CreateMember(ctx, "mem", flavor)
		if err != nil {
			t.Fatal(err)
		}
		states := []cluster.MemberState{cluster.MemberReady, cluster.MemberClaimed}
		if name == "ready" {
			states = states[:1]
		}
		for _, state := range states {
			if err := db.SetMemberState(ctx, m.ID, state, []byte("{}"), ""); err != nil {
				t.Fatal(err)
			}
		}
		ids[name] = m.ID
	}
	b.setSick(ids["dead"], true)
	b.setSick(ids["ready"], true)
	round := func(wantLost ...string) {
		t.Helper()
		got, err := p.CheckHealth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range wantLost {
			want = append(want, ids[n])
		}
		if !slices.Equal(got, want) {
			t.Errorf("lost: got %v, want %v", got, want)
		}
	}
	b.setSick(ids["flaky"], true)
	round()
	b.setSick(ids["flaky"], false)
	round("dead")
	b.setSick(ids["flaky"], true)
	round() // dead is reported once; flaky failed once since its success
	b.setSick(ids["flaky"], false)
	round()
	mu.Lock()
	defer mu.Unlock()
	if len(lost) != 1 || lost[0] != ids["dead"]+": readyz: connection refused" {
		t.Errorf("OnLost calls: got %q, want one for %s with the check's error", lost, ids["dead"])
	}
	if !slices.Contains(b.checked, ids["ready"]) {
		t.Errorf("the ready member was not health-checked")
	}
	if m, err := db.Member(ctx, ids["ready"]); err != nil || m.State != cluster.MemberFailed || !strings.Contains(m.Failure, "unhealthy while ready") {
		t.Errorf("ready member after failed checks: %+v, %v; want failed, unhealthy while ready", m, err)
	}
}
