package githubapp

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/webhook"
)

// task is the work of one delivery. run is called again after a retryable
// error; a task keeps its own progress so that a retry in the same process
// resumes where the last try stopped (a comment command is never run
// twice). Its state is recorded in the delivery store, so that another
// process resumes it.
type task struct {
	id    string // the delivery recorded (the store's id)
	event string
	run   func(ctx context.Context) error
	// once marks work that must not run twice (a comment command): after
	// a try began elsewhere, it is given up rather than resumed.
	once bool

	// The fields below are guarded by queue.mu.
	attempts int
	timer    clockwork.Timer // the pending retry, if any
	// ended holds the outcome of work that ended but could not be
	// recorded yet; the next turn only records it.
	ended *outcome
}

// outcome is how a delivery's work ended.
type outcome struct {
	state  webhook.State
	reason string
	err    error
}

type queueConfig struct {
	clock       clockwork.Clock
	workers     int
	size        int
	maxAttempts int
	// attemptTimeout bounds each try of a delivery's work.
	attemptTimeout time.Duration
	store          Deliveries
	log            *slog.Logger
	onDone         func(Result)
}

// queue holds the accepted deliveries of this process and has a fixed
// number of workers do them. Each turn of a task is recorded in the store
// (a try begins, it failed and the next is due at, the work ended), so a
// restarted process resumes what was not finished.
type queue struct {
	queueConfig

	mu       sync.Mutex
	tasks    map[string]*task // accepted here, not yet recorded as ended
	due      []*task          // tasks to work on now, in order
	reserved int              // slots taken by reserve, not yet added or released
	stopped  bool             // mu guards all the fields above

	// wake has a token when due may have tasks for an idle worker.
	wake chan struct{}
}

// errAttemptTimeout is the cause of an attempt cancelled at its deadline.
var errAttemptTimeout = errors.New("the attempt took too long")

func newQueue(cfg queueConfig) *queue {
	return &queue{queueConfig: cfg, tasks: map[string]*task{}, wake: make(chan struct{}, 1)}
}

// reserve takes a slot for a task to come; false when the queue is full.
func (q *queue) reserve() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.tasks)+q.reserved >= q.size {
		return false
	}
	q.reserved++
	return true
}

// release gives back a slot taken by reserve.
func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved--
}

// add queues a new task for which a slot was reserved, due now.
func (q *queue) add(t *task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved--
	q.tasks[t.id] = t
	q.push(t)
}

// adopt queues a task resumed from the store, due at the given time (zero
// or past: now), unless this process has the delivery already. It takes
// no slot: the work was accepted before.
func (q *queue) adopt(t *task, at time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.tasks[t.id]; ok {
		return false
	}
	q.tasks[t.id] = t
	q.schedule(t, at.Sub(q.clock.Now()))
	return true
}

// poke makes a delivery of this process due now, as GitHub's redelivery
// of work not done asks; false when the process does not have it.
func (q *queue) poke(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.tasks[id]
	if !ok {
		return false
	}
	if t.timer != nil && t.timer.Stop() {
		t.timer = nil
		q.push(t)
	}
	return true
}

// has reports whether the process has a delivery.
func (q *queue) has(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.tasks[id]
	return ok
}

// push makes t due; q.mu must be held.
func (q *queue) push(t *task) {
	q.due = append(q.due, t)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// schedule makes t due after wait; q.mu must be held.
func (q *queue) schedule(t *task, wait time.Duration) {
	if wait <= 0 || q.stopped {
		q.push(t)
		return
	}
	t.timer = q.clock.AfterFunc(wait, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		t.timer = nil
		q.push(t)
	})
}

// next returns the next due task, waiting for one until ctx ends.
func (q *queue) next(ctx context.Context) (*task, bool) {
	for {
		q.mu.Lock()
		if len(q.due) > 0 {
			t := q.due[0]
			q.due = q.due[1:]
			if len(q.due) > 0 { // pass the token on to another idle worker
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			q.mu.Unlock()
			return t, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.wake:
		}
	}
}

// run works until ctx ends, then waits for the tries in progress (they
// see ctx end) and stops the pending retries. What is left stays accepted
// in the store for the next start.
func (q *queue) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(func() {
			for {
				t, ok := q.next(ctx)
				if !ok {
					return
				}
				q.work(ctx, t)
			}
		})
	}
	wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	for _, t := range q.tasks {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
}

// work takes one turn of a task: a try of its work, or the recording of
// its end.
func (q *queue) work(ctx context.Context, t *task) {
	log := q.log.With(logkey.Delivery, t.id, logkey.Event, t.event)
	if t.ended != nil {
		q.end(ctx, t, *t.ended)
		return
	}
	// The try is recorded before it begins: work that must not run
	// twice is not resumed elsewhere after a try that may have done it.
	err := q.store.UpdateDelivery(ctx, t.id, webhook.Update{State: webhook.Accepted, Attempts: t.attempts + 1})
	switch {
	case cluster.ErrorCode(err) == cluster.ECONFLICT || cluster.ErrorCode(err) == cluster.ENOTFOUND:
		log.Info("delivery finished elsewhere: dropped", logkey.Err, err)
		q.forget(t)
		return
	case ctx.Err() != nil:
		return
	case err != nil:
		wait := backoff(1)
		log.Warn("record the try of a delivery; will try again", logkey.Err, err, logkey.RetryIn, wait)
		q.mu.Lock()
		q.schedule(t, wait)
		q.mu.Unlock()
		return
	}
	t.attempts++
	log = log.With(logkey.Attempt, t.attempts)
	actx, cancel := withTimeout(ctx, q.clock, q.attemptTimeout, errAttemptTimeout)
	err = t.run(actx)
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		err = errors.Join(errAttemptTimeout, err)
	}
	cancel()
	switch {
	case err == nil:
		q.end(ctx, t, outcome{state: webhook.Done})
	case ctx.Err() != nil:
		// Shutting down: the work stays accepted for the next start.
		log.Warn("delivery interrupted at shutdown; it resumes at the next start", logkey.Err, err)
	case isPermanent(err):
		log.Error("delivery failed for good", logkey.Err, err)
		q.end(ctx, t, outcome{state: webhook.GivenUp, reason: err.Error(), err: err})
	case t.attempts >= q.maxAttempts:
		log.Error("delivery failed, no tries left", logkey.Err, err)
		q.end(ctx, t, outcome{state: webhook.GivenUp, reason: err.Error(), err: err})
	default:
		at := q.nextAttempt(t.attempts, err)
		log.Warn("delivery failed, will retry", logkey.Err, err, "retry_at", at)
		if err := q.store.UpdateDelivery(ctx, t.id, webhook.Update{State: webhook.Accepted, Attempts: t.attempts,
			NextAttemptAt: at, Reason: err.Error()}); err != nil {
			log.Warn("record the next try of a delivery", logkey.Err, err)
		}
		q.mu.Lock()
		q.schedule(t, at.Sub(q.clock.Now()))
		q.mu.Unlock()
	}
}

// nextAttempt is when the try after attempt n (which failed with err) is
// due: when GitHub said for a rate limit, else after the backoff.
func (q *queue) nextAttempt(n int, err error) time.Time {
	return retryTime(q.clock.Now(), n, err)
}

// end records how a task's work ended and reports it. When the store
// cannot record it, the task stays and the recording is tried again.
func (q *queue) end(ctx context.Context, t *task, o outcome) {
	err := q.store.UpdateDelivery(ctx, t.id, webhook.Update{State: o.state, Attempts: t.attempts, Reason: o.reason})
	if err != nil && cluster.ErrorCode(err) != cluster.ECONFLICT && cluster.ErrorCode(err) != cluster.ENOTFOUND {
		if ctx.Err() != nil {
			return
		}
		wait := backoff(1)
		q.log.Warn("record the end of a delivery's work; will try again", logkey.Delivery, t.id, logkey.Event, t.event,
			logkey.State, o.state, logkey.Err, err, logkey.RetryIn, wait)
		q.mu.Lock()
		t.ended = &o
		q.schedule(t, wait)
		q.mu.Unlock()
		return
	}
	q.forget(t)
	if q.onDone != nil {
		q.onDone(Result{Delivery: t.id, Event: t.event, Attempts: t.attempts, Err: o.err})
	}
}

// forget drops a task whose work is recorded as ended.
func (q *queue) forget(t *task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.tasks, t.id)
}

// withTimeout returns a context cancelled with cause after d on clock, so
// that tests move deadlines with their clock instead of waiting for them.
func withTimeout(ctx context.Context, clock clockwork.Clock, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := clock.AfterFunc(d, func() { cancel(cause) })
	return ctx, func() {
		timer.Stop()
		cancel(context.Canceled)
	}
}
