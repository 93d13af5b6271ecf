package lifecycle_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/pool/policy"
	"github.com/smek/action/internal/sqlite"
)

// arrivalLog is a fixed policy of no member that records the arrivals
// the pool tells it about.
type arrivalLog struct {
	policy.Fixed
	mu   sync.Mutex
	warm []bool
}

func (a *arrivalLog) ObserveArrival(f cluster.Flavor, _ time.Time, warm bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f == testFlavor {
		a.warm = append(a.warm, warm)
	}
}

func (a *arrivalLog) got() []bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.warm)
}

// TestCreatesAreToldToThePolicy: every create the account may run is an
// arrival for the pool's policy: warm when a member was ready, cold (and
// told at once, while it waits) when none was.
func TestCreatesAreToldToThePolicy(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pol := &arrivalLog{Fixed: policy.Fixed{testFlavor: 0}}
	p := pool.New(db, &fakeBackend{}, pool.Config{Policy: pol})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	svc := lifecycle.New(db, p, []string{testFlavor.K8sVersion}, lifecycle.Config{})
	a, err := db.EnsureAccount(ctx, "team", limitsOf(5))
	if err != nil {
		t.Fatal(err)
	}
	pr := cluster.Principal{Account: a, Actor: "token:team"}
	keep := false
	create := func() bool {
		t.Helper()
		res, err := svc.Create(ctx, pr, cluster.CreateInput{KeepCluster: &keep})
		if err != nil {
			t.Fatal(err)
		}
		return res.Cluster.Timings.Warm
	}
	// The pool keeps none: the first create waits for a member.
	if create() {
		t.Fatal("first create warm with a pool of none")
	}
	// A pre-warm makes one ready for the second.
	p.Prewarm("job:1", testFlavor, time.Now().Add(time.Hour))
	for {
		ready := p.Ready()
		ms, err := db.Members(ctx, p.Backend().Name())
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ms, func(m cluster.Member) bool { return m.State == cluster.MemberReady }) {
			break
		}
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("no member became ready")
		}
	}
	if !create() {
		t.Fatal("second create cold with a member ready")
	}
	if got := pol.got(); !slices.Equal(got, []bool{false, true}) {
		t.Fatalf("arrivals told to the policy %v, want [false true]", got)
	}
}
