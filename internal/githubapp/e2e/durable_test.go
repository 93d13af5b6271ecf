package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/sqlite"
	"github.com/smek/action/internal/wire"
)

// smekFront is the fake SMEK API behind a switch: while down, every call
// is a 503, and each listing is reported on lists.
type smekFront struct {
	*clienttest.Server
	url   string
	down  atomic.Bool
	lists chan struct{}
}

func newSMEKFront(t *testing.T) *smekFront {
	t.Helper()
	f := &smekFront{Server: clienttest.NewServer("smek_service"), lists: make(chan struct{}, 64)}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/clusters" {
			defer func() { f.lists <- struct{}{} }()
		}
		if f.down.Load() {
			w.Header().Set("Content-Type", wire.MediaProblem)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"type":"urn:smek:problem:unavailable","title":"Service Unavailable","status":503,"code":"unavailable","detail":"down for the test"}`)
			return
		}
		f.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	f.url = front.URL
	return f
}

// runCluster makes a cluster of a workflow run in the fake, as the action
// would, and returns the run's workflow_run completed payload.
func (f *smekFront) runCluster(t *testing.T, runID int64) (string, []byte) {
	t.Helper()
	c, err := client.New(f.Server.URL, "smek_service")
	if err != nil {
		t.Fatal(err)
	}
	email, keep := "ci@example.com", false
	run := wire.RunMetadata{RepositoryID: 300029405, RunID: runID, RunAttempt: 1}
	cl, err := c.Create(t.Context(), wire.CreateRequest{NotificationEmail: &email, KeepCluster: &keep, Run: &run})
	if err != nil {
		t.Fatal(err)
	}
	return cl.ClusterID, variant(t, "workflow_run.completed.json", func(m map[string]any) {
		m["workflow_run"].(map[string]any)["id"] = runID
	})
}

func (f *smekFront) status(t *testing.T, id string) string {
	t.Helper()
	c, ok := f.Cluster(id)
	if !ok {
		t.Fatalf("no cluster %s", id)
	}
	return c.ClusterStatus
}

// waitResults returns the next n finished deliveries by id. The timeout
// only guards against a hung test.
func waitResults(t *testing.T, a *app, n int) map[string]githubapp.Result {
	t.Helper()
	out := map[string]githubapp.Result{}
	for range n {
		select {
		case r := <-a.results:
			out[r.Delivery] = r
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d deliveries finished", len(out), n)
		}
	}
	return out
}

// stores are the two ways an App keeps its deliveries: the embedded one
// in the provisioner's SQLite file, the standalone one through the
// provisioner's API (over the same file). open returns the store of a
// process and how to close it.
var stores = []struct {
	name string
	open func(t *testing.T, path string) (githubapp.Deliveries, func())
}{{
	name: "embedded",
	open: func(t *testing.T, path string) (githubapp.Deliveries, func()) {
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return db, func() { db.Close() }
	},
}, {
	name: "standalone",
	open: func(t *testing.T, path string) (githubapp.Deliveries, func()) {
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		authorize := func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer smek_service" {
				return cluster.Errorf(cluster.EUNAUTHORIZED, "", "not the service token")
			}
			return nil
		}
		h := githubapp.DeliveriesHandler(db, authorize, nil)
		mux := http.NewServeMux()
		mux.Handle(githubapp.DeliveriesPath, h)
		mux.Handle(githubapp.DeliveriesPath+"/", h)
		provisioner := httptest.NewServer(mux)
		c, err := githubapp.NewDeliveryClient(provisioner.URL, "smek_service", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { provisioner.Close(); db.Close() }
	},
}}

// TestPendingWorkSurvivesARestart: deliveries whose work could not be
// done yet (the SMEK API is down) are not lost when the App stops; a new
// App on the same store resumes them and ends the clusters.
func TestPendingWorkSurvivesARestart(t *testing.T) {
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) { pendingWorkSurvivesARestart(t, store.open) })
	}
}

func pendingWorkSurvivesARestart(t *testing.T, open func(*testing.T, string) (githubapp.Deliveries, func())) {
	smek := newSMEKFront(t)
	smek.down.Store(true)
	clusters, err := githubapp.NewAPIClusters(smek.url, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "smek.db")
	deliveries, closeStore := open(t, path)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx, stop := context.WithCancel(context.Background())
	a := startAppCtx(t, ctx, githubapp.Config{Clusters: clusters, Deliveries: deliveries, Clock: clockwork.NewFakeClockAt(start)})
	ids := map[string]string{} // delivery → cluster
	for i := range 3 {
		cl, body := smek.runCluster(t, int64(5_000_000+i))
		id := fmt.Sprintf("pending-%d", i)
		if status, answer := a.send(t, "workflow_run", id, body); status != http.StatusAccepted {
			t.Fatalf("delivery %s: got %d %s, want 202", id, status, answer)
		}
		ids[id] = cl
	}
	for range 3 {
		<-smek.lists // each delivery's first try failed
	}
	// The App stops with the work pending.
	stop()
	a.wait()
	closeStore()

	smek.down.Store(false)
	deliveries, closeStore = open(t, path)
	defer closeStore()
	// An hour later: every retry is due.
	a2 := startApp(t, githubapp.Config{Clusters: clusters, Deliveries: deliveries, Clock: clockwork.NewFakeClockAt(start.Add(time.Hour))})
	for id, r := range waitResults(t, a2, 3) {
		if r.Err != nil {
			t.Errorf("delivery %s after the restart: %v", id, r.Err)
		}
		if got := smek.status(t, ids[id]); got != "terminated" {
			t.Errorf("cluster %s of delivery %s: got %s, want terminated", ids[id], id, got)
		}
	}
	// Done is done: GitHub's redelivery is now a duplicate.
	_, body := smek.runCluster(t, 5_000_000)
	if status, answer := a2.send(t, "workflow_run", "pending-0", body); status != http.StatusOK {
		t.Fatalf("redelivery of a done delivery: got %d %s, want 200 duplicate", status, answer)
	}
}

// TestRedeliveryOfGivenUpWorkRunsIt: a delivery whose work was given up is
// not done, so GitHub's redelivery (same id, same payload) runs it again.
func TestRedeliveryOfGivenUpWorkRunsIt(t *testing.T) {
	smek := newSMEKFront(t)
	smek.down.Store(true)
	clusters, err := githubapp.NewAPIClusters(smek.url, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startApp(t, githubapp.Config{Clusters: clusters, Deliveries: db, MaxAttempts: 1,
		Clock: clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))})
	cl, body := smek.runCluster(t, 6_000_001)
	const id = "given-up-1"
	if status, answer := a.send(t, "workflow_run", id, body); status != http.StatusAccepted {
		t.Fatalf("delivery: got %d %s, want 202", status, answer)
	}
	if r := waitResults(t, a, 1)[id]; r.Err == nil {
		t.Fatal("the delivery's work succeeded while SMEK was down")
	}

	smek.down.Store(false)
	status, answer := a.send(t, "workflow_run", id, body)
	if status != http.StatusAccepted {
		t.Fatalf("redelivery of given-up work: got %d %s, want 202", status, answer)
	}
	if r := waitResults(t, a, 1)[id]; r.Err != nil {
		t.Fatalf("redelivered work: %v", r.Err)
	}
	if got := smek.status(t, cl); got != "terminated" {
		t.Fatalf("cluster: got %s, want terminated", got)
	}
}
