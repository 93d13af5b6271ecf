package githubapp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/webhook"
)

// A GitHub call that never gets an answer is given up at its deadline:
// the only worker is free for the next delivery long before the attempt's
// own deadline, and the command is tried again.
func TestHungGitHubCallFreesTheWorker(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 1 })
	arrived := h.github.Hang(githubfake.RouteReaction)
	if status, _ := h.send(delivery{event: "issue_comment", id: "comment-1", body: commentPayload(t, "/smek list", "OWNER")}); status != http.StatusAccepted {
		t.Fatal("comment not accepted")
	}
	<-arrived // the only worker waits for GitHub
	h.clusters.add(runCluster("c-end001", false))
	if status, _ := h.send(delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatal("workflow_run not accepted")
	}

	h.clock.Advance(DefaultRequestTimeout)
	r := h.wait()
	if r.Delivery != "run-1" || r.Err != nil {
		t.Fatalf("got %+v, want run-1 done while the comment waits for its retry", r)
	}
	if got := h.clusters.get("c-end001").ClusterStatus; got != "terminated" {
		t.Fatalf("cluster: got %s, want terminated", got)
	}
	if d := h.state("comment-1"); d.State != webhook.Accepted || d.Attempts != 1 {
		t.Fatalf("comment: %+v, want accepted after 1 try", d)
	}
	h.clock.Advance(h.state("comment-1").NextAttemptAt.Sub(h.clock.Now()))
	if r := h.wait(); r.Delivery != "comment-1" || r.Err != nil || r.Attempts != 2 {
		t.Fatalf("got %+v, want the comment done on its 2nd try", r)
	}
	if got := reactions(h); len(got) != 2 || got[0] != ReactionReceived || got[1] != ReactionDone {
		t.Fatalf("reactions: got %v, want eyes then rocket", got)
	}
}

// hangingServer answers nothing until the client gives up; each request
// is announced on arrived.
func hangingServer(t *testing.T) (*httptest.Server, chan string) {
	t.Helper()
	arrived := make(chan string, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.Method + " " + r.URL.Path
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, arrived
}

// A SMEK API that never answers: the try fails at the request's deadline
// and says so.
func TestHungSMEKCallFreesTheWorker(t *testing.T) {
	srv, arrived := hangingServer(t)
	h := newHarness(t)
	h.stop()
	clusters, err := NewAPIClusters(srv.URL, "smek_service", nil, WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	h.start(func(c *Config) { c.Clusters, c.Workers, c.MaxAttempts = clusters, 1, 1 })
	if status, _ := h.send(delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	<-arrived
	h.clock.Advance(DefaultRequestTimeout)
	r := h.wait()
	if !errors.Is(r.Err, ErrRequestTimeout) {
		t.Fatalf("got %+v, want the request timeout", r)
	}
}

// A create gets its wait on top of the request timeout.
func TestSMEKCreateHasItsWaitOnTop(t *testing.T) {
	srv, arrived := hangingServer(t)
	h := newHarness(t)
	clusters, err := NewAPIClusters(srv.URL, "smek_service", nil, WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	wait := 90 * time.Second
	errc := make(chan error, 1)
	go func() {
		_, err := clusters.Create(context.Background(), 7, cluster.CreateInput{Wait: &wait})
		errc <- err
	}()
	<-arrived
	h.clock.Advance(DefaultRequestTimeout)
	h.blockUntil(1)                   // the create's deadline is still ahead
	h.clock.Advance(90 * time.Second) // its wait
	if err := <-errc; !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("got %v, want the request timeout", err)
	}
}

// The delivery store of the standalone App is bounded too.
func TestHungDeliveryStoreCallEnds(t *testing.T) {
	srv, arrived := hangingServer(t)
	h := newHarness(t)
	c, err := NewDeliveryClient(srv.URL, "smek_service", nil, WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.UpdateDelivery(context.Background(), "d-1", webhook.Update{State: webhook.Done}) }()
	<-arrived
	h.clock.Advance(DefaultRequestTimeout)
	if err := <-errc; !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("got %v, want the request timeout", err)
	}
}

// hangingList is Clusters whose List waits until its context ends.
type hangingList struct {
	Clusters
	arrived chan struct{}
}

func (c hangingList) List(ctx context.Context, _ int64, _ cluster.Filter) ([]cluster.Cluster, error) {
	c.arrived <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A try that does not end by itself (here the in-process cluster API of
// the provisioner) is cancelled at the attempt's deadline, and counts as
// failed.
func TestAttemptDeadlineFreesTheWorker(t *testing.T) {
	h := newHarness(t)
	h.stop()
	arrived := make(chan struct{}, 1)
	h.start(func(c *Config) {
		c.Clusters, c.Workers, c.MaxAttempts = hangingList{Clusters: h.clusters, arrived: arrived}, 1, 1
	})
	if status, _ := h.send(delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	<-arrived
	h.clock.Advance(DefaultAttemptTimeout)
	r := h.wait()
	if !errors.Is(r.Err, errAttemptTimeout) || r.Attempts != 1 {
		t.Fatalf("got %+v, want the attempt's deadline", r)
	}
}
