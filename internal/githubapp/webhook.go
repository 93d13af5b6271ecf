package githubapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"

	"github.com/smek/action/internal/cluster"
)

// Webhook headers.
const (
	EventHeader    = "X-GitHub-Event"
	DeliveryHeader = "X-GitHub-Delivery"
)

// MaxPayload is GitHub's cap on webhook payloads (25 MB); larger bodies are
// refused before they are read.
const MaxPayload = 25 << 20

// WebhookPath is where GitHub posts deliveries.
const WebhookPath = "/github/webhook"

// Answer is the JSON body of a 2xx answer to a delivery.
type Answer struct {
	Delivery string `json:"delivery"`
	// Status is "accepted" (queued), "duplicate" (seen before, nothing
	// done), "ignored" (nothing to do; Reason says why) or "pong".
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// ServeHTTP receives a delivery: it checks the signature, decodes the
// payload, records the delivery id with the payload's digest and queues
// the work, answering 202. It never waits for the work itself.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event, result := r.Header.Get(EventHeader), "invalid"
	defer func() { a.metrics.WebhookDelivery(event, result) }()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, r, http.StatusMethodNotAllowed, cluster.Errorf(cluster.EINVALID, "", "webhooks are POSTed"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayload))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, r, a.log, cluster.Errorf(cluster.ETOOLARGE, "body", "the payload is over %d bytes", MaxPayload))
			return
		}
		writeError(w, r, a.log, cluster.Errorf(cluster.EINVALID, "body", "reading the payload: %v", err))
		return
	}
	if err := VerifySignature(a.secret, r.Header.Get(SignatureHeader), body); err != nil {
		result = "bad-signature"
		a.log.Warn("webhook refused", logDelivery, truncate(r.Header.Get(DeliveryHeader), maxDeliveryID), logErr, err)
		writeError(w, r, a.log, err)
		return
	}
	delivery := r.Header.Get(DeliveryHeader)
	switch {
	case event == "":
		writeError(w, r, a.log, cluster.Errorf(cluster.EINVALID, EventHeader, "the request has no %s header", EventHeader))
		return
	case delivery == "" || len(delivery) > maxDeliveryID:
		writeError(w, r, a.log, cluster.Errorf(cluster.EINVALID, DeliveryHeader, "%s must be 1 to %d characters", DeliveryHeader, maxDeliveryID))
		return
	}
	log := a.log.With(logDelivery, delivery, logEvent, event)
	run, reason, err := a.plan(event, delivery, body)
	switch {
	case err != nil:
		log.Warn("webhook payload refused", logErr, err)
		writeError(w, r, a.log, err)
		return
	case event == "ping":
		log.Info("ping")
		result = "pong"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "pong"})
		return
	case run == nil:
		log.Debug("webhook ignored", "reason", reason)
		result = "ignored"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "ignored", Reason: reason})
		return
	}
	if !a.queue.reserve() {
		log.Warn("webhook refused: queue full")
		result = "busy"
		w.Header().Set("Retry-After", "60")
		writeError(w, r, a.log, cluster.Errorf(cluster.EUNAVAILABLE, "", "too many deliveries in progress, redeliver later"))
		return
	}
	digest := sha256.Sum256(body)
	isNew, err := a.deliveries.RecordDelivery(r.Context(), delivery, event, digest[:])
	if err != nil {
		a.queue.release()
		log.Error("record delivery", logErr, err)
		result = "busy"
		writeError(w, r, a.log, cluster.Errorf(cluster.EUNAVAILABLE, "", "the delivery could not be recorded, redeliver later"))
		return
	}
	if !isNew {
		a.queue.release()
		log.Info("duplicate delivery ignored")
		result = "duplicate"
		writeJSON(w, http.StatusOK, Answer{Delivery: delivery, Status: "duplicate"})
		return
	}
	result = "accepted"
	a.queue.push(&task{delivery: delivery, event: event, run: run})
	writeJSON(w, http.StatusAccepted, Answer{Delivery: delivery, Status: "accepted"})
}

// plan decodes a verified payload into the work it asks for. A nil run with
// a reason means there is nothing to do.
func (a *App) plan(event, delivery string, body []byte) (run func(context.Context) error, reason string, err error) {
	switch event {
	case "ping":
		var e envelope
		return nil, "", decode(body, &e)
	case "workflow_run":
		return a.planWorkflowRun(delivery, body)
	case "workflow_job":
		return a.planWorkflowJob(delivery, body)
	case "pull_request":
		return a.planPullRequest(delivery, body)
	case "installation":
		return a.planInstallation(delivery, body)
	case "installation_repositories":
		return a.planInstallationRepositories(delivery, body)
	case "issue_comment":
		return a.planComment(delivery, body)
	default:
		return nil, "the App does not handle " + truncate(event, 40) + " events", nil
	}
}
