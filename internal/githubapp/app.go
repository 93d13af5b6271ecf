// Package githubapp is SMEK's GitHub App: it receives GitHub webhooks, ends
// the clusters of finished workflow runs, jobs, closed pull requests and
// removed installations, and runs "/smek ..." commands written as
// pull-request comments.
//
// The webhook endpoint only verifies, deduplicates, records and queues; the
// work is done by a bounded pool of workers with retries, so GitHub gets
// its answer well within its ten-second limit. The work is recorded
// durably (accepted, then done or given up), so that what a stopped or
// killed App accepted is resumed by the next one. The App reaches clusters through the
// Clusters interface (SMEK's /v1 API with a service token, or the server
// itself when the provisioner embeds the App) and GitHub through the GitHub
// interface (go-github with installation tokens from ghinstallation).
package githubapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/webhook"
)

// Config is what an App needs. Secret, Clusters and Deliveries are
// required.
type Config struct {
	// Secret is the webhook secret that signs every delivery.
	Secret []byte
	// Clusters reaches SMEK's clusters.
	Clusters Clusters
	// Deliveries keeps the deliveries and the state of their work across
	// restarts.
	Deliveries Deliveries
	// GitHub answers comment commands. Nil disables comment commands (a
	// repository or organization webhook without App credentials still
	// gets the cleanup).
	GitHub GitHub
	// PublicURL is SMEK's URL as users reach it; replies show it in the
	// command that fetches a kubeconfig.
	PublicURL string
	// Logger receives the App's logs; nil discards them.
	Logger *slog.Logger
	// Clock times the retries and the cached access of commenters; nil is
	// the real clock.
	Clock clockwork.Clock
	// Workers is how many deliveries are worked on at once (default 4).
	Workers int
	// QueueSize bounds the deliveries accepted but not yet done, retries
	// included (default 1024). Beyond it the endpoint answers 503.
	QueueSize int
	// MaxAttempts bounds the tries of one delivery (default 10), across
	// restarts.
	MaxAttempts int
	// AttemptTimeout bounds each try of a delivery's work (default
	// DefaultAttemptTimeout): a try still running then is cancelled and
	// counts as failed.
	AttemptTimeout time.Duration
	// PayloadMemory bounds the bytes of payloads being received at once
	// (default DefaultPayloadMemory, at least MaxPayload). A payload is
	// held from before its signature is checked until its work is
	// planned, so anyone can make the App hold one; a request whose
	// Content-Length (MaxPayload when chunked) does not fit is answered
	// 503 with Retry-After instead of waiting.
	PayloadMemory int64
	// Metrics counts deliveries by event and result at the endpoint
	// (accepted, duplicate, ignored, pong, bad-signature, invalid, busy);
	// nil counts nothing.
	Metrics Metrics
	// Prewarm, when set, pre-warms the pool for the workflow jobs that
	// are queued (the embedded App); Run runs its learning.
	Prewarm *Prewarmer
	// OnDone, when set, is called after each delivery's work has ended, in
	// success or for good, and the end is recorded. Tests and metrics use
	// it.
	OnDone func(Result)
}

// DefaultAttemptTimeout is the default of Config.AttemptTimeout: room for
// a comment command's create (the server's default wait is five minutes)
// and the GitHub calls around it.
const DefaultAttemptTimeout = 10 * time.Minute

// Result is the outcome of a delivery's work.
type Result struct {
	Delivery string
	Event    string
	Attempts int
	// Err is nil on success, else the last error.
	Err error
}

// App is the GitHub App. Serve it at POST /github/webhook and call Run.
type App struct {
	secret     []byte
	clusters   Clusters
	deliveries Deliveries
	github     GitHub
	publicURL  string
	log        *slog.Logger
	clock      clockwork.Clock
	queue      *queue
	metrics    Metrics
	payloads   *byteBudget
	onDone     func(Result)
	prewarm    *Prewarmer
	// access caches commenters' access to repositories.
	access *accessCache

	runOnce sync.Once
}

// Metrics receives the endpoint's counts.
type Metrics interface {
	WebhookDelivery(event, result string)
}

type nopMetrics struct{}

func (nopMetrics) WebhookDelivery(string, string) {}

// New returns an App. It does no work until Run is called; deliveries that
// arrive before are queued.
func New(cfg Config) (*App, error) {
	switch {
	case len(cfg.Secret) == 0:
		return nil, errors.New("github app: the webhook secret is empty")
	case cfg.Clusters == nil:
		return nil, errors.New("github app: no clusters api")
	case cfg.Deliveries == nil:
		return nil, errors.New("github app: no delivery store")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(logkey.Component, "githubapp")
	clock := cfg.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	a := &App{
		secret:     cfg.Secret,
		clusters:   cfg.Clusters,
		deliveries: cfg.Deliveries,
		github:     cfg.GitHub,
		publicURL:  cfg.PublicURL,
		log:        log,
		access:     newAccessCache(clock),
		clock:      clock,
		onDone:     cfg.OnDone,
		prewarm:    cfg.Prewarm,
	}
	attemptTimeout := cfg.AttemptTimeout
	if attemptTimeout <= 0 {
		attemptTimeout = DefaultAttemptTimeout
	}
	a.queue = newQueue(queueConfig{
		clock:          clock,
		workers:        orDefault(cfg.Workers, 4),
		size:           orDefault(cfg.QueueSize, 1024),
		maxAttempts:    orDefault(cfg.MaxAttempts, 10),
		attemptTimeout: attemptTimeout,
		store:          cfg.Deliveries,
		log:            log,
		onDone:         cfg.OnDone,
	})
	memory := cfg.PayloadMemory
	if memory <= 0 {
		memory = DefaultPayloadMemory
	}
	a.payloads = newByteBudget(max(memory, MaxPayload))
	a.metrics = cfg.Metrics
	if a.metrics == nil {
		a.metrics = nopMetrics{}
	}
	if a.github == nil {
		log.Info("no GitHub App credentials: pull-request comment commands are ignored, cleanup works")
	}
	return a, nil
}

// Run resumes the deliveries whose work the store has as accepted, and
// works on them and on new ones until ctx ends; then it waits for the
// tries in progress, which see ctx end. What is not finished stays
// accepted in the store for the next Run.
func (a *App) Run(ctx context.Context) error {
	started := false
	a.runOnce.Do(func() { started = true })
	if !started {
		return errors.New("github app: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.resumeUntilDone(ctx) })
	if a.prewarm != nil {
		wg.Go(func() { a.prewarm.Run(ctx) })
	}
	a.queue.run(ctx)
	wg.Wait()
	return nil
}

// resumeUntilDone resumes the pending work, trying again (2 s doubling to
// 2 min) while the store cannot be read, until ctx ends.
func (a *App) resumeUntilDone(ctx context.Context) {
	for n := 1; ; n++ {
		err := a.resume(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := backoff(n)
		a.log.Warn("resume pending deliveries; will try again", logkey.Err, err, logkey.RetryIn, wait)
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// resume queues the store's pending deliveries that this process does not
// have, each due when the store says, planned again from its payload.
// Payloads are read one at a time.
func (a *App) resume(ctx context.Context) error {
	pending, err := a.deliveries.PendingDeliveries(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		a.log.Info("resuming pending deliveries", logkey.Count, len(pending))
	}
	for _, d := range pending {
		if a.queue.has(d.ID) {
			continue
		}
		payload, err := a.deliveries.DeliveryPayload(ctx, d.ID)
		if cluster.ErrorCode(err) == cluster.ENOTFOUND {
			continue // ended meanwhile
		}
		if err != nil {
			return err
		}
		log := a.log.With(logkey.Delivery, d.ID, logkey.Event, d.Event, logkey.Attempt, d.Attempts)
		t := &task{id: d.ID, event: d.Event, once: atMostOnce[d.Event], attempts: d.Attempts}
		plan, handled := planners[d.Event]
		var reason string
		if handled {
			t.run, reason, err = plan(a, d.ID, payload)
		} else {
			err = permanent(fmt.Errorf("the App does not handle %s events", d.Event))
		}
		switch {
		case err != nil:
			a.giveUp(ctx, log, t, fmt.Sprintf("the payload cannot be planned: %v", err))
		case t.run == nil:
			if err := a.deliveries.UpdateDelivery(ctx, d.ID, webhook.Update{State: webhook.Done, Attempts: d.Attempts, Reason: reason}); err != nil {
				log.Warn("record the delivery as done", logkey.Err, err)
			}
		case a.resumable(ctx, log, t):
			a.queue.adopt(t, d.NextAttemptAt)
		}
	}
	return nil
}

// giveUp records a delivery's work as given up and reports it.
func (a *App) giveUp(ctx context.Context, log *slog.Logger, t *task, reason string) {
	log.Warn("delivery given up", logkey.Reason, reason)
	if err := a.deliveries.UpdateDelivery(ctx, t.id, webhook.Update{State: webhook.GivenUp, Attempts: t.attempts, Reason: reason}); err != nil {
		log.Warn("record the delivery as given up", logkey.Err, err)
		return
	}
	a.done(Result{Delivery: t.id, Event: t.event, Attempts: t.attempts, Err: errors.New(reason)})
}

// done reports a delivery whose work ended.
func (a *App) done(r Result) {
	if a.onDone != nil {
		a.onDone(r)
	}
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// backoff is the wait before try n+1 (n ≥ 1): 2 s doubling up to 2 min.
func backoff(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < 2*time.Minute; i++ {
		d *= 2
	}
	return min(d, 2*time.Minute)
}

// permanentError marks a failure that another try cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
