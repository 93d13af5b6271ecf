package githubapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/webhook"
	"github.com/smek/action/internal/wire"
)

// Deliveries keeps the webhook deliveries and the state of their work, so
// that a redelivery or a replayed request of done work does nothing, and
// work accepted before a restart is resumed after it. *sqlite.DB is one;
// the standalone App uses a DeliveryClient.
type Deliveries interface {
	// AcceptDelivery records a verified delivery as accepted work (with
	// its payload), unless its id or, when given, its payload's SHA-256
	// was seen: then the delivery seen is returned as it stands.
	AcceptDelivery(ctx context.Context, r webhook.Received) (d webhook.Delivery, isNew bool, err error)
	// UpdateDelivery records what a try changed. A done delivery is
	// ECONFLICT, an unknown one ENOTFOUND.
	UpdateDelivery(ctx context.Context, id string, u webhook.Update) error
	// PendingDeliveries returns the accepted deliveries whose work has
	// not ended, oldest first, without payloads.
	PendingDeliveries(ctx context.Context) ([]webhook.Delivery, error)
	// DeliveryPayload returns the payload of a delivery whose work has not
	// ended; ENOTFOUND when none is kept.
	DeliveryPayload(ctx context.Context, id string) ([]byte, error)
}

// DeliveriesPath is the provisioner route behind DeliveryClient:
// POST records a delivery, GET lists the pending ones, and
// DeliveriesPath/{id} answers GET (with the payload) and PATCH (a try's
// outcome).
const DeliveriesPath = "/v1/github/deliveries"

// maxDeliveryID bounds X-GitHub-Delivery (a GUID, 36 characters).
const maxDeliveryID = 128

// maxRecordBody bounds a POST to DeliveriesPath: a payload at MaxPayload
// in base64, and room for the rest.
const maxRecordBody = MaxPayload/3*4 + 64<<10

// DeliveryRecord is the body of POST /v1/github/deliveries.
type DeliveryRecord struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	// PayloadSHA256 is the hex SHA-256 of the delivery's body; a payload
	// seen under another id is the same delivery. Optional: Apps before it
	// send none.
	PayloadSHA256 string `json:"payload-sha256,omitempty"`
	// Payload is the delivery's body (base64 in JSON): the provisioner
	// keeps it while the work is not done, so that a restarted App
	// resumes the work. Without it the delivery is recorded as done (Apps
	// before it only de-duplicate).
	Payload []byte `json:"payload,omitempty"`
}

// DeliveryState is a recorded delivery as the provisioner's API shows it:
// the answer of POST and of GET DeliveriesPath/{id} (which adds the
// payload), an item of the pending list, and the body of PATCH (state,
// attempts, next-attempt-at, reason).
type DeliveryState struct {
	ID            string     `json:"id,omitempty"`
	Event         string     `json:"event,omitempty"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next-attempt-at,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	ReceivedAt    *time.Time `json:"received-at,omitempty"`
	Payload       []byte     `json:"payload,omitempty"`
}

// DeliveryList is the answer of GET /v1/github/deliveries.
type DeliveryList struct {
	Deliveries []DeliveryState `json:"deliveries"`
}

func toState(d webhook.Delivery) DeliveryState {
	return DeliveryState{ID: d.ID, Event: d.Event, State: string(d.State), Attempts: d.Attempts,
		NextAttemptAt: timeRef(d.NextAttemptAt), Reason: d.Reason, ReceivedAt: timeRef(d.ReceivedAt)}
}

func (s DeliveryState) delivery() webhook.Delivery {
	d := webhook.Delivery{ID: s.ID, Event: s.Event, State: webhook.State(s.State), Attempts: s.Attempts, Reason: s.Reason}
	if s.NextAttemptAt != nil {
		d.NextAttemptAt = *s.NextAttemptAt
	}
	if s.ReceivedAt != nil {
		d.ReceivedAt = *s.ReceivedAt
	}
	return d
}

func timeRef(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// DeliveryClient is Deliveries kept by the provisioner, over
// DeliveriesPath with the App's service token: the standalone App holds no
// state of its own.
type DeliveryClient struct {
	url   string
	token string
	http  *http.Client
	calls callBounds
}

var _ Deliveries = (*DeliveryClient)(nil)

// NewDeliveryClient returns a DeliveryClient for the SMEK server at baseURL.
// hc may be nil. Each call has the timeout of the options (WithTimeout,
// default DefaultRequestTimeout).
func NewDeliveryClient(baseURL, token string, hc *http.Client, opts ...ClientOption) (*DeliveryClient, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(baseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("delivery store: smek url %q is not an http(s) url", baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &DeliveryClient{url: u.String() + DeliveriesPath, token: token, http: hc, calls: newCallBounds(opts)}, nil
}

// AcceptDelivery implements Deliveries: 201 is new, 200 seen with its work
// not done, 409 seen and done.
func (c *DeliveryClient) AcceptDelivery(ctx context.Context, r webhook.Received) (webhook.Delivery, bool, error) {
	rec := DeliveryRecord{ID: r.ID, Event: r.Event, PayloadSHA256: hex.EncodeToString(r.PayloadSHA256), Payload: r.Payload}
	var st DeliveryState
	status, err := c.do(ctx, http.MethodPost, c.url, rec, &st, http.StatusCreated, http.StatusOK, http.StatusConflict)
	if err != nil {
		return webhook.Delivery{}, false, fmt.Errorf("accept delivery %q: %w", r.ID, err)
	}
	d := st.delivery()
	if d.ID == "" { // a provisioner before the work's state answers the record only
		d = webhook.Delivery{ID: r.ID, Event: r.Event, State: webhook.Accepted}
		if status == http.StatusConflict {
			d.State = webhook.Done
		}
	}
	return d, status == http.StatusCreated, nil
}

// UpdateDelivery implements Deliveries.
func (c *DeliveryClient) UpdateDelivery(ctx context.Context, id string, u webhook.Update) error {
	body := DeliveryState{State: string(u.State), Attempts: u.Attempts, NextAttemptAt: timeRef(u.NextAttemptAt), Reason: u.Reason}
	if _, err := c.do(ctx, http.MethodPatch, c.url+"/"+url.PathEscape(id), body, nil, http.StatusOK); err != nil {
		return fmt.Errorf("update delivery %q: %w", id, err)
	}
	return nil
}

// PendingDeliveries implements Deliveries.
func (c *DeliveryClient) PendingDeliveries(ctx context.Context) ([]webhook.Delivery, error) {
	var list DeliveryList
	if _, err := c.do(ctx, http.MethodGet, c.url+"?state=accepted", nil, &list, http.StatusOK); err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	out := make([]webhook.Delivery, 0, len(list.Deliveries))
	for _, s := range list.Deliveries {
		out = append(out, s.delivery())
	}
	return out, nil
}

// DeliveryPayload implements Deliveries.
func (c *DeliveryClient) DeliveryPayload(ctx context.Context, id string) ([]byte, error) {
	var st DeliveryState
	if _, err := c.do(ctx, http.MethodGet, c.url+"/"+url.PathEscape(id), nil, &st, http.StatusOK); err != nil {
		return nil, fmt.Errorf("payload of delivery %q: %w", id, err)
	}
	if st.Payload == nil {
		return nil, cluster.Errorf(cluster.ENOTFOUND, "id", "no payload kept for delivery %q", id)
	}
	return st.Payload, nil
}

// do makes one call and decodes the answer into out when its status is
// one of ok. Other answers become errors with the server's code
// (ENOTFOUND, ECONFLICT...).
func (c *DeliveryClient) do(ctx context.Context, method, u string, in, out any, ok ...int) (int, error) {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", wire.MediaJSON)
	if in != nil {
		req.Header.Set("Content-Type", wire.MediaJSON)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.calls.explain(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordBody))
	if err != nil {
		return 0, c.calls.explain(ctx, err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			if out != nil && len(b) > 0 {
				if err := json.Unmarshal(b, out); err != nil {
					return 0, fmt.Errorf("%s %s: decode the answer: %w", method, DeliveriesPath, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	var p wire.Problem
	if json.Unmarshal(b, &p) == nil && p.Code != "" {
		return 0, &cluster.Error{Code: cluster.Code(p.Code), Field: p.Field, Message: p.Detail,
			Err: fmt.Errorf("%s %s: %s", method, DeliveriesPath, resp.Status)}
	}
	return 0, fmt.Errorf("%s %s: %s", method, DeliveriesPath, resp.Status)
}

// DeliveriesAPI serves DeliveriesPath and DeliveriesPath/{id} for a
// standalone App; the provisioner's API lists its routes, behind a check
// that admits service tokens only:
//
//   - POST (Record) records a delivery: 201 new, 200 seen with its work
//     not done, 409 seen and done (a duplicate); the answer is the
//     DeliveryState;
//   - GET (Pending) lists the pending deliveries (?state=accepted, the
//     default);
//   - GET {id} (Get) returns a pending one with its payload;
//   - PATCH {id} (Update) records a try's outcome (a DeliveryState's
//     state, attempts, next-attempt-at and reason).
type DeliveriesAPI struct {
	store Deliveries
	log   *slog.Logger
}

// NewDeliveriesAPI returns the delivery routes' handlers over store.
func NewDeliveriesAPI(store Deliveries, logger *slog.Logger) *DeliveriesAPI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DeliveriesAPI{store: store, log: logger.With(logkey.Component, "githubapp")}
}

// DeliveriesHandler serves the DeliveriesAPI on its own, guarded by
// authorize (its error, a *cluster.Error, becomes the answer): the
// provisioner's routes for a test that runs no provisioner.
func DeliveriesHandler(store Deliveries, authorize func(*http.Request) error, logger *slog.Logger) http.Handler {
	h := NewDeliveriesAPI(store, logger)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+DeliveriesPath, h.Record)
	mux.HandleFunc("GET "+DeliveriesPath, h.Pending)
	mux.HandleFunc("GET "+DeliveriesPath+"/{id}", h.Get)
	mux.HandleFunc("PATCH "+DeliveriesPath+"/{id}", h.Update)
	mux.HandleFunc(DeliveriesPath, notAllowed("GET, POST"))
	mux.HandleFunc(DeliveriesPath+"/{id}", notAllowed("GET, PATCH"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, h.log, cluster.Errorf(cluster.ENOTFOUND, "", "no such endpoint"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func notAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		problem.NotAllowed(w, r, allow, cluster.Errorf(cluster.EINVALID, "", "use %s", allow))
	}
}

// Record is POST DeliveriesPath.
func (h *DeliveriesAPI) Record(w http.ResponseWriter, r *http.Request) {
	var rec DeliveryRecord
	if !h.decode(w, r, maxRecordBody, &rec, `{"id": ..., "event": ..., "payload-sha256": ..., "payload": ...}`) {
		return
	}
	if rec.ID == "" || len(rec.ID) > maxDeliveryID {
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "id", "id must be 1 to %d characters", maxDeliveryID))
		return
	}
	digest, err := hex.DecodeString(rec.PayloadSHA256)
	if err != nil || len(digest) != 0 && len(digest) != sha256.Size {
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "payload-sha256", "payload-sha256 must be %d hex digits", 2*sha256.Size))
		return
	}
	if len(rec.Payload) > MaxPayload {
		writeError(w, r, h.log, cluster.Errorf(cluster.ETOOLARGE, "payload", "the payload is over %d bytes", MaxPayload))
		return
	}
	d, isNew, err := h.store.AcceptDelivery(r.Context(), webhook.Received{ID: rec.ID, Event: rec.Event, PayloadSHA256: digest, Payload: rec.Payload})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	status := http.StatusOK
	switch {
	case isNew:
		status = http.StatusCreated
	case d.State == webhook.Done:
		status = http.StatusConflict
	}
	writeJSON(w, status, toState(d))
}

// Pending is GET DeliveriesPath.
func (h *DeliveriesAPI) Pending(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Query().Get("state"); s != "" && s != string(webhook.Accepted) {
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "state", "only the accepted deliveries are listed"))
		return
	}
	ds, err := h.store.PendingDeliveries(r.Context())
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := DeliveryList{Deliveries: make([]DeliveryState, 0, len(ds))}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, toState(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// Get is GET DeliveriesPath/{id}.
func (h *DeliveriesAPI) Get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	payload, err := h.store.DeliveryPayload(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, DeliveryState{ID: id, State: string(webhook.Accepted), Payload: payload})
}

// Update is PATCH DeliveriesPath/{id}.
func (h *DeliveriesAPI) Update(w http.ResponseWriter, r *http.Request) {
	var in DeliveryState
	if !h.decode(w, r, 16<<10, &in, `{"state": ..., "attempts": ..., "next-attempt-at": ..., "reason": ...}`) {
		return
	}
	u := webhook.Update{State: webhook.State(in.State), Attempts: in.Attempts, Reason: in.Reason}
	if in.NextAttemptAt != nil {
		u.NextAttemptAt = *in.NextAttemptAt
	}
	if err := u.Check(); err != nil {
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "state", "%v", err))
		return
	}
	if in.ID != "" || in.Event != "" || in.Payload != nil || in.ReceivedAt != nil {
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "", "only state, attempts, next-attempt-at and reason change"))
		return
	}
	if err := h.store.UpdateDelivery(r.Context(), r.PathValue("id"), u); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	in.ID = r.PathValue("id")
	writeJSON(w, http.StatusOK, in)
}

// decode reads a JSON body of at most limit bytes into v, answering a 400
// (or 413) itself.
func (h *DeliveriesAPI) decode(w http.ResponseWriter, r *http.Request, limit int64, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, r, h.log, cluster.Errorf(cluster.ETOOLARGE, "body", "the body is over %d bytes", limit))
			return false
		}
		writeError(w, r, h.log, cluster.Errorf(cluster.EINVALID, "", "the body must be a JSON object %s: %v", shape, err))
		return false
	}
	return true
}
