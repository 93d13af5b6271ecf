package hetzner

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool/sim"
)

// TestRequestBudget counts, at the fake's HTTP level, the Hetzner API
// requests of the three operations the pool simulator (internal/pool/sim)
// charges against the 3,600 an hour: a provision (create from the golden
// snapshot), a release (rebuild) and a destroy; and that the golden
// snapshot list is asked at most once per operation (it is cached a
// minute, which the simulator charges as one per minute with pool work).
// The actions here take the time the backend expects, so each is mostly
// polled once, which is what the simulator charges; on a loaded machine
// the simulated clock can let a poll come early, and an action that
// outlasts its expected duration costs one more poll per backoff step,
// shared among the actions under way (docs/pool.md). So the requests
// other than polls are counted exactly, the polls as at least one.
func TestRequestBudget(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	be := w.backend(http.DefaultTransport)
	installStub(be)
	if _, err := be.ensureSSHKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := be.ensureFirewall(ctx); err != nil {
		t.Fatal(err)
	}
	// measure runs op and returns its requests, the snapshot lists apart,
	// with the action polls among them counted as one.
	measure := func(name string, op func() error) (n, images int) {
		t.Helper()
		w.fake.ResetCounts()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for route, c := range w.fake.Counts() {
			if strings.Contains(route, "/images") {
				images += c
				continue
			}
			n += c
		}
		t.Logf("%s: %d requests and %d snapshot lists: %v", name, n, images, w.fake.Counts())
		if polls := w.fake.Counts()["GET /actions"]; polls > 1 {
			n -= polls - 1
		}
		return n, images
	}
	want := sim.MeasuredRequests
	for i := range 3 {
		m := cluster.Member{ID: fmt.Sprintf("s-budget%d", i), Flavor: flavor, State: cluster.MemberCreating}
		n, images := measure("provision", func() error {
			data, err := be.Provision(ctx, m)
			m.Data = data
			return err
		})
		if n != want.Provision || images > want.ImageList {
			t.Errorf("provision %d: %d requests and %d snapshot lists, the simulator charges %d and at most %d", i, n, images, want.Provision, want.ImageList)
		}
		m.State = cluster.MemberRebuilding
		n, images = measure("rebuild", func() error {
			ok, data, err := be.Release(ctx, m)
			if err == nil && !ok {
				err = fmt.Errorf("not reusable")
			}
			m.Data = data
			return err
		})
		if n != want.Rebuild || images > want.ImageList {
			t.Errorf("rebuild %d: %d requests and %d snapshot lists, the simulator charges %d and at most %d", i, n, images, want.Rebuild, want.ImageList)
		}
		n, images = measure("destroy", func() error { return be.Destroy(ctx, m) })
		if n != want.Destroy || images != 0 {
			t.Errorf("destroy %d: %d requests and %d snapshot lists, the simulator charges %d", i, n, images, want.Destroy)
		}
	}
	n, _ := measure("inventory", func() error {
		_, err := be.Reconcile(ctx, nil)
		return err
	})
	if n != 1 {
		t.Errorf("inventory reconcile: %d requests, the simulator charges 1 per %s", n, want.InventoryEvery)
	}
}
