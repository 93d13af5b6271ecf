package githubapp

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/webhook"
)

// Webhook headers.
const (
	EventHeader    = "X-GitHub-Event"
	DeliveryHeader = "X-GitHub-Delivery"
)

// MaxPayload caps the body of a delivery. GitHub's own cap is 25 MB, but
// the events the App handles are far smaller: the real payloads in
// testdata/webhooks are 3 to 28 KB. The largest parts a user controls are
// the texts of an issue_comment (the comment and the body, each at
// most 262,144 bytes in GitHub's storage, so about 1 MB with heavy JSON
// escaping), a workflow run's head-commit message, and the repository
// lists of installation events (about 150 bytes per repository, so some
// 25,000 repositories fit). A larger body is refused with 413 from its
// Content-Length alone, before it is read.
const MaxPayload = 4 << 20

// DefaultPayloadMemory is the default of Config.PayloadMemory: room for
// four payloads at the cap, or some five hundred typical ones.
const DefaultPayloadMemory = 16 << 20

// WebhookPath is where GitHub posts deliveries.
const WebhookPath = "/github/webhook"

// Answer is the JSON body of a 2xx answer to a delivery.
type Answer struct {
	Delivery string `json:"delivery"`
	// Status is "accepted" (queued, or, redelivered before its work was
	// done, run again), "duplicate" (its work was done before, or is a
	// command that began before: nothing done), "ignored" (nothing to do;
	// Reason says why) or "pong".
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// ServeHTTP receives a delivery. Everything that can be decided from the
// headers is decided before the body is read, so that a request that
// cannot be a delivery of ours costs no more than its head: a missing or
// malformed signature is a 401, an event the App does not handle is
// acknowledged unread, a Content-Length over MaxPayload is a 413, and a
// body that does not fit in the payload memory is a 503. Only then is the
// body read, its signature checked and its payload decoded; the delivery
// is recorded with its payload (by id and by payload digest) and its work
// queued, answering 202. It never waits for the work itself.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event, result := r.Header.Get(EventHeader), "invalid"
	defer func() { a.metrics.WebhookDelivery(event, result) }()
	if r.Method != http.MethodPost {
		closeUnread(w, r)
		problem.NotAllowed(w, r, http.MethodPost, cluster.Errorf(cluster.EINVALID, "", "webhooks are POSTed"))
		return
	}
	delivery := r.Header.Get(DeliveryHeader)
	want, err := parseSignature(r.Header.Get(SignatureHeader))
	if err != nil {
		closeUnread(w, r)
		result = "bad-signature"
		a.log.Warn("webhook refused", logkey.Delivery, cluster.Truncate(delivery, maxDeliveryID), logkey.Err, err)
		writeError(w, r, a.log, err)
		return
	}
	switch {
	case event == "":
		closeUnread(w, r)
		writeError(w, r, a.log, cluster.Errorf(cluster.EINVALID, EventHeader, "the request has no %s header", EventHeader))
		return
	case delivery == "" || len(delivery) > maxDeliveryID:
		closeUnread(w, r)
		writeError(w, r, a.log, cluster.Errorf(cluster.EINVALID, DeliveryHeader, "%s must be 1 to %d characters", DeliveryHeader, maxDeliveryID))
		return
	}
	log := a.log.With(logkey.Delivery, delivery, logkey.Event, event)
	plan, handled := planners[event]
	if !handled {
		// Nothing is done for it, so there is nothing to verify.
		reason := "the App does not handle " + cluster.Truncate(event, 40) + " events"
		log.Debug("webhook ignored unread", logkey.Reason, reason)
		closeUnread(w, r)
		result = "ignored"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "ignored", Reason: reason})
		return
	}
	if r.ContentLength > MaxPayload {
		log.Warn("webhook refused: too large", logkey.ContentLength, r.ContentLength)
		closeUnread(w, r)
		writeError(w, r, a.log, cluster.Errorf(cluster.ETOOLARGE, "body", "the payload is over %d bytes", MaxPayload))
		return
	}
	hold := r.ContentLength
	if hold < 0 {
		hold = MaxPayload
	}
	if !a.payloads.take(hold) {
		log.Warn("webhook refused: payload memory full", logkey.ContentLength, r.ContentLength)
		closeUnread(w, r)
		result = "busy"
		w.Header().Set("Retry-After", "10")
		writeError(w, r, a.log, cluster.Errorf(cluster.EUNAVAILABLE, "", "too many payloads being received, redeliver later"))
		return
	}
	body, digest, err := readPayload(r.Body, r.ContentLength, MaxPayload, a.secret, want)
	var run func(context.Context) error
	var reason string
	if err == nil {
		run, reason, err = plan(a, delivery, body)
	}
	switch {
	case cluster.ErrorCode(err) == cluster.EUNAUTHORIZED:
		a.payloads.give(hold)
		result = "bad-signature"
		log.Warn("webhook refused", logkey.Err, err)
		writeError(w, r, a.log, err)
		return
	case err != nil:
		a.payloads.give(hold)
		log.Warn("webhook payload refused", logkey.Err, err)
		writeError(w, r, a.log, err)
		return
	case event == "ping":
		a.payloads.give(hold)
		log.Info("ping")
		result = "pong"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "pong"})
		return
	case run == nil:
		a.payloads.give(hold)
		log.Debug("webhook ignored", logkey.Reason, reason)
		result = "ignored"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "ignored", Reason: reason})
		return
	}
	// The payload is held until the store has it: it is what a restarted
	// App resumes the work from.
	result, status, answer := a.accept(r.Context(), log, &task{id: delivery, event: event, run: run, once: atMostOnce[event]},
		webhook.Received{ID: delivery, Event: event, PayloadSHA256: digest[:], Payload: body})
	a.payloads.give(hold)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "60")
		writeError(w, r, a.log, cluster.Errorf(cluster.EUNAVAILABLE, "", "%s", answer.Reason))
		return
	}
	answer.Delivery = delivery
	writeJSON(w, status, answer)
}

// accept records a verified delivery whose work is planned as t and
// queues the work: new work, work not done that GitHub redelivers (made
// due at once, or taken over when this process does not have it), and
// given-up work that GitHub redelivers (run again from the start). Done
// work is a duplicate. It returns the metric's result, the status and
// the answer; a 503's answer has the reason in Reason.
func (a *App) accept(ctx context.Context, log *slog.Logger, t *task, r webhook.Received) (string, int, Answer) {
	busy := func(reason string) (string, int, Answer) {
		return "busy", http.StatusServiceUnavailable, Answer{Reason: reason}
	}
	if !a.queue.reserve() {
		log.Warn("webhook refused: queue full")
		return busy("too many deliveries in progress, redeliver later")
	}
	d, isNew, err := a.deliveries.AcceptDelivery(ctx, r)
	if err != nil {
		a.queue.release()
		log.Error("record delivery", logkey.Err, err)
		return busy("the delivery could not be recorded, redeliver later")
	}
	accepted := Answer{Status: "accepted"}
	if isNew {
		a.queue.add(t)
		return "accepted", http.StatusAccepted, accepted
	}
	// Seen before: d is the delivery recorded, maybe under another id
	// (the same payload replayed).
	t.id = d.ID
	log = log.With("recorded_as", d.ID, logkey.State, d.State, logkey.Attempt, d.Attempts)
	switch {
	case d.State == webhook.Accepted && a.queue.poke(d.ID):
		a.queue.release()
		log.Info("redelivery of work not done: due now")
		return "accepted", http.StatusAccepted, accepted
	case d.State == webhook.Accepted:
		a.queue.release()
		t.attempts = d.Attempts
		if a.resumable(ctx, log, t) {
			a.queue.adopt(t, time.Time{})
			log.Info("redelivery of work not done here: taken over")
			return "accepted", http.StatusAccepted, accepted
		}
	case d.State == webhook.GivenUp && !(t.once && d.Attempts > 0):
		err := a.deliveries.UpdateDelivery(ctx, d.ID, webhook.Update{State: webhook.Accepted})
		if err != nil {
			a.queue.release()
			log.Error("reopen given-up delivery", logkey.Err, err)
			return busy("the delivery could not be recorded, redeliver later")
		}
		log.Info("redelivery of given-up work: run again", logkey.Reason, d.Reason)
		a.queue.add(t)
		return "accepted", http.StatusAccepted, accepted
	default:
		a.queue.release()
	}
	log.Info("duplicate delivery ignored")
	reason := ""
	if d.State != webhook.Done {
		reason = "the command began before; a command runs at most once"
	}
	return "duplicate", http.StatusOK, Answer{Status: "duplicate", Reason: reason}
}

// atMostOnce are the events whose work must not run twice: a comment
// command. Work of theirs that began in a process that is gone may have
// run, so it is given up rather than resumed, and not run again when
// GitHub redelivers it.
var atMostOnce = map[string]bool{"issue_comment": true}

// resumable reports whether work recorded as begun elsewhere may run here;
// when not, it records the work as given up.
func (a *App) resumable(ctx context.Context, log *slog.Logger, t *task) bool {
	if !t.once || t.attempts == 0 {
		return true
	}
	a.giveUp(ctx, log, t, "interrupted after it began; a command runs at most once")
	return false
}

// closeUnread prepares the answer to a request whose body is not read: the
// connection is closed after it. Otherwise the server would read what is
// left of the body (up to 256 KiB, and a chunked one before answering)
// so as to reuse the connection.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// planner decodes a verified payload into the work it asks for. A nil run
// with a reason means there is nothing to do.
type planner func(a *App, delivery string, body []byte) (run func(context.Context) error, reason string, err error)

// planners are the events the App handles. Any other event is
// acknowledged without its body being read.
var planners = map[string]planner{
	"ping":                      (*App).planPing,
	"workflow_run":              (*App).planWorkflowRun,
	"workflow_job":              (*App).planWorkflowJob,
	"pull_request":              (*App).planPullRequest,
	"installation":              (*App).planInstallation,
	"installation_repositories": (*App).planInstallationRepositories,
	"issue_comment":             (*App).planComment,
	"member":                    (*App).planMember,
	"membership":                (*App).planMembership,
	"organization":              (*App).planOrganization,
	"team":                      (*App).planTeam,
}

// planPing checks that a ping is JSON; ServeHTTP answers it.
func (a *App) planPing(_ string, body []byte) (func(context.Context) error, string, error) {
	var e envelope
	return nil, "", decode(body, &e)
}
