package githubapp

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/jonboulle/clockwork"
)

// task is the work of one delivery. run is called again after a retryable
// error; a task keeps its own progress so that a retry resumes where the
// last try stopped (a comment command is never run twice).
type task struct {
	delivery string
	event    string
	run      func(ctx context.Context) error
	attempts int
}

type queueConfig struct {
	clock       clockwork.Clock
	workers     int
	size        int
	maxAttempts int
	log         *slog.Logger
	onDone      func(Result)
}

// queue is a bounded set of tasks worked on by a fixed number of workers.
// A task holds a slot from acceptance until its work ends, retries
// included, so the ready channel (as large as the slots) never blocks a
// sender.
type queue struct {
	queueConfig
	slots chan struct{}
	ready chan *task
}

func newQueue(cfg queueConfig) *queue {
	return &queue{
		queueConfig: cfg,
		slots:       make(chan struct{}, cfg.size),
		ready:       make(chan *task, cfg.size),
	}
}

// reserve takes a slot for a task to come; false when the queue is full.
func (q *queue) reserve() bool {
	select {
	case q.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// release gives back a slot taken by reserve.
func (q *queue) release() { <-q.slots }

// push queues a task for which a slot was reserved.
func (q *queue) push(t *task) { q.ready <- t }

func (q *queue) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-q.ready:
					q.work(ctx, t)
				}
			}
		})
	}
	wg.Wait()
}

func (q *queue) work(ctx context.Context, t *task) {
	t.attempts++
	err := t.run(ctx)
	log := q.log.With(logDelivery, t.delivery, logEvent, t.event, logAttempt, t.attempts)
	switch {
	case err == nil:
		q.done(t, nil)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Shutting down: the task is dropped with the rest of the queue.
		log.Warn("delivery dropped at shutdown", logErr, err)
		q.release()
	case isPermanent(err):
		log.Error("delivery failed for good", logErr, err)
		q.done(t, err)
	case t.attempts >= q.maxAttempts:
		log.Error("delivery failed, no tries left", logErr, err)
		q.done(t, err)
	default:
		wait := backoff(t.attempts)
		log.Warn("delivery failed, will retry", logErr, err, "retry_in", wait)
		q.clock.AfterFunc(wait, func() { q.ready <- t })
	}
}

func (q *queue) done(t *task, err error) {
	q.release()
	if q.onDone != nil {
		q.onDone(Result{Delivery: t.delivery, Event: t.event, Attempts: t.attempts, Err: err})
	}
}
