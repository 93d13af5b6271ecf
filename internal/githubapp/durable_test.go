package githubapp

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smek/action/internal/webhook"
)

// blockUntil waits until n timers are on the harness's clock.
func (h *harness) blockUntil(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, n); err != nil {
		h.t.Fatalf("waiting for %d timers: %v", n, err)
	}
}

// state returns a delivery as the store has it.
func (h *harness) state(id string) webhook.Delivery {
	h.t.Helper()
	d, ok := h.deliveries.get(id)
	if !ok {
		h.t.Fatalf("delivery %s is not recorded", id)
	}
	return d
}

// A restarted App resumes accepted work where the store has it: the tries
// already made count, and the next is due when it was.
func TestResumeKeepsAttemptsAndDueTime(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxAttempts = 3 })
	h.clusters.add(runCluster("c-end001", false))
	h.clusters.failNext("List", errUnavailable, errUnavailable)
	status, _ := h.send(delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")})
	if status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	due := h.nextRetry()
	h.stop()
	if d := h.state("run-1"); d.State != webhook.Accepted || d.Attempts != 1 || !d.NextAttemptAt.Equal(due) {
		t.Fatalf("after the stop: %+v, want accepted, 1 attempt, next at %s", d, due)
	}

	h.start(func(c *Config) { c.MaxAttempts = 3 })
	h.blockUntil(1) // the resumed work waits for its time
	if n := h.clusters.count("List"); n != 1 {
		t.Fatalf("List calls before the next try is due: %d, want 1", n)
	}
	h.clock.Advance(due.Sub(h.clock.Now()))
	h.advanceToRetry(2) // the second try fails
	r := h.wait()
	if r.Err != nil || r.Attempts != 3 || r.Delivery != "run-1" {
		t.Fatalf("got %+v, want success on the 3rd try, counted across the restart", r)
	}
	if got := h.clusters.get("c-end001").ClusterStatus; got != "terminated" {
		t.Fatalf("cluster: got %s, want terminated", got)
	}
	if d := h.state("run-1"); d.State != webhook.Done {
		t.Fatalf("after the work: %+v, want done", d)
	}
}

// GitHub's redelivery of work waiting for its next try runs it at once.
func TestRedeliveryOfPendingWorkRunsItNow(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(runCluster("c-end001", false))
	h.clusters.failNext("List", errUnavailable)
	d := delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")}
	if status, _ := h.send(d); status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	h.nextRetry()
	if status, answer := h.send(d); status != http.StatusAccepted || !strings.Contains(string(answer), `"accepted"`) {
		t.Fatalf("redelivery: got %d %s, want 202 accepted", status, answer)
	}
	r := h.wait() // no clock moved
	if r.Err != nil || r.Attempts != 2 {
		t.Fatalf("got %+v, want success on the 2nd try", r)
	}
	if status, answer := h.send(d); status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) {
		t.Fatalf("redelivery of done work: got %d %s, want 200 duplicate", status, answer)
	}
}

// A comment command runs at most once: a try that began in an App that is
// gone may have run it, so the next App gives the work up, and GitHub's
// redelivery does not run it again.
func TestInterruptedCommandIsNotRunAgain(t *testing.T) {
	h := newHarness(t)
	h.github.Fail("reaction", http.StatusBadGateway) // the eyes fail: the try fails
	d := delivery{event: "issue_comment", id: "comment-1", body: commentPayload(t, "/smek create", "OWNER")}
	if status, _ := h.send(d); status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	h.nextRetry()
	h.stop()

	h.start()
	r := h.wait()
	if r.Err == nil || !strings.Contains(r.Err.Error(), "at most once") || r.Delivery != "comment-1" {
		t.Fatalf("got %+v, want the command given up", r)
	}
	if d := h.state("comment-1"); d.State != webhook.GivenUp || !strings.Contains(d.Reason, "interrupted") {
		t.Fatalf("recorded: %+v, want given up as interrupted", d)
	}
	status, answer := h.send(d)
	if status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) || !strings.Contains(string(answer), "at most once") {
		t.Fatalf("redelivery: got %d %s, want 200 duplicate, saying why", status, answer)
	}
	if n := h.clusters.count("Create"); n != 0 {
		t.Fatalf("Create calls: %d, want 0", n)
	}
}

// A comment accepted but never tried (the App stopped first) runs after
// the restart: nothing of it can have run.
func TestUntriedCommandRunsAfterARestart(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 1 })
	// The only worker is busy with a delivery that cannot finish.
	h.clusters.failNext("List", errUnavailable)
	if status, _ := h.send(delivery{event: "workflow_run", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatal("workflow_run not accepted")
	}
	h.nextRetry()
	h.stop()
	// Accepted by a store write only, as if the App died right after.
	body := commentPayload(t, "/smek list", "OWNER")
	if _, isNew, err := h.deliveries.AcceptDelivery(t.Context(), webhook.Received{ID: "comment-2", Event: "issue_comment", Payload: body}); err != nil || !isNew {
		t.Fatal(err)
	}
	h.start()
	for {
		r := h.wait()
		if r.Delivery != "comment-2" {
			continue
		}
		if r.Err != nil {
			t.Fatalf("comment after the restart: %v", r.Err)
		}
		break
	}
	if c := onlyComment(t, h); !strings.Contains(c.Body, "no clusters") {
		t.Fatalf("reply: %q", c.Body)
	}
}

// Work whose payload no longer plans is given up at the start, saying why.
func TestResumeGivesUpWhatCannotBePlanned(t *testing.T) {
	h := newHarness(t)
	h.stop()
	for id, r := range map[string]webhook.Received{
		"broken": {ID: "broken", Event: "workflow_run", Payload: []byte(`{"action":"completed"`)},
		"star":   {ID: "star", Event: "star", Payload: []byte(`{}`)},
	} {
		if _, _, err := h.deliveries.AcceptDelivery(t.Context(), r); err != nil {
			t.Fatal(id, err)
		}
	}
	h.start()
	for range 2 {
		if r := h.wait(); r.Err == nil {
			t.Fatalf("%s: got success, want given up", r.Delivery)
		}
	}
	for _, id := range []string{"broken", "star"} {
		if d := h.state(id); d.State != webhook.GivenUp || d.Reason == "" {
			t.Errorf("%s: %+v, want given up with a reason", id, d)
		}
	}
}

// failingUpdates is the harness's store, whose updates to a final state
// fail a number of times first.
type failingUpdates struct {
	*memDeliveries
	fail   atomic.Int32
	failed chan struct{}
}

func (f *failingUpdates) UpdateDelivery(ctx context.Context, id string, u webhook.Update) error {
	if u.State == webhook.Done && f.fail.Add(-1) >= 0 {
		f.failed <- struct{}{}
		return errUnavailable
	}
	return f.memDeliveries.UpdateDelivery(ctx, id, u)
}

// The end of the work is reported once it is recorded; until then the
// recording, not the work, is tried again.
func TestEndOfWorkIsRecordedBeforeItIsReported(t *testing.T) {
	h := newHarness(t)
	h.stop()
	store := &failingUpdates{memDeliveries: h.deliveries, failed: make(chan struct{}, 1)}
	store.fail.Store(1)
	h.start(func(c *Config) { c.Deliveries = store })
	h.clusters.add(runCluster("c-end001", false))
	if status, _ := h.send(delivery{event: "workflow_run", id: "run-1", body: fixture(t, "workflow_run.completed.json")}); status != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	<-store.failed
	h.blockUntil(1) // the recording waits for its retry
	select {
	case r := <-h.results:
		t.Fatalf("reported before it was recorded: %+v", r)
	default:
	}
	h.clock.Advance(backoff(1))
	if r := h.wait(); r.Err != nil || r.Attempts != 1 {
		t.Fatalf("got %+v, want success after one try", r)
	}
	if n := h.clusters.count("List"); n != 1 {
		t.Fatalf("List calls: %d, want 1 (the work is not done again)", n)
	}
	if d := h.state("run-1"); d.State != webhook.Done {
		t.Fatalf("recorded: %+v, want done", d)
	}
}
