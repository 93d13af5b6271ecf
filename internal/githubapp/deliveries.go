package githubapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// Deliveries remembers the webhook deliveries already accepted, so that a
// redelivery or a replayed request does nothing. *sqlite.DB is one; the
// standalone App uses a DeliveryClient.
type Deliveries interface {
	// RecordDelivery records a delivery id with the SHA-256 of its payload
	// and reports whether it is new: neither the id nor the payload was
	// seen before. payloadSHA256 may be nil (not known).
	RecordDelivery(ctx context.Context, id, event string, payloadSHA256 []byte) (bool, error)
}

// DeliveriesPath is the provisioner route behind DeliveryClient.
const DeliveriesPath = "/v1/github/deliveries"

// maxDeliveryID bounds X-GitHub-Delivery (a GUID, 36 characters).
const maxDeliveryID = 128

// DeliveryRecord is the body of POST /v1/github/deliveries.
type DeliveryRecord struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	// PayloadSHA256 is the hex SHA-256 of the delivery's body; a payload
	// seen under another id is a duplicate too. Optional: Apps before it
	// send none.
	PayloadSHA256 string `json:"payload-sha256,omitempty"`
}

// DeliveryClient is Deliveries kept by the provisioner: it calls
// POST /v1/github/deliveries with the App's service token (201: new,
// 409: seen before). The standalone App holds no state of its own.
type DeliveryClient struct {
	url   string
	token string
	http  *http.Client
}

var _ Deliveries = (*DeliveryClient)(nil)

// NewDeliveryClient returns a DeliveryClient for the SMEK server at baseURL.
// hc may be nil.
func NewDeliveryClient(baseURL, token string, hc *http.Client) (*DeliveryClient, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(baseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("delivery store: smek url %q is not an http(s) url", baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &DeliveryClient{url: u.String() + DeliveriesPath, token: token, http: hc}, nil
}

// RecordDelivery implements Deliveries.
func (c *DeliveryClient) RecordDelivery(ctx context.Context, id, event string, payloadSHA256 []byte) (bool, error) {
	body, _ := json.Marshal(DeliveryRecord{ID: id, Event: event, PayloadSHA256: hex.EncodeToString(payloadSHA256)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("record delivery %q: %w", id, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("record delivery %q: %w", id, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusConflict:
		return false, nil
	default:
		return false, fmt.Errorf("record delivery %q: POST %s: %s", id, DeliveriesPath, resp.Status)
	}
}

// DeliveriesHandler serves POST /v1/github/deliveries for a standalone App:
// 201 when the delivery is new, 409 when its id or its payload was seen. authorize is
// called first; it should accept service tokens only (its error, a
// *cluster.Error, becomes the answer).
func DeliveriesHandler(store Deliveries, authorize func(*http.Request) error, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "githubapp")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, r, http.StatusMethodNotAllowed, cluster.Errorf(cluster.EINVALID, "", "use POST"))
			return
		}
		if err := authorize(r); err != nil {
			writeError(w, r, log, err)
			return
		}
		var rec DeliveryRecord
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			writeError(w, r, log, cluster.Errorf(cluster.EINVALID, "", "the body must be a JSON object {\"id\": ..., \"event\": ...}: %v", err))
			return
		}
		if rec.ID == "" || len(rec.ID) > maxDeliveryID {
			writeError(w, r, log, cluster.Errorf(cluster.EINVALID, "id", "id must be 1 to %d characters", maxDeliveryID))
			return
		}
		digest, err := hex.DecodeString(rec.PayloadSHA256)
		if err != nil || len(digest) != 0 && len(digest) != sha256.Size {
			writeError(w, r, log, cluster.Errorf(cluster.EINVALID, "payload-sha256", "payload-sha256 must be %d hex digits", 2*sha256.Size))
			return
		}
		isNew, err := store.RecordDelivery(r.Context(), rec.ID, rec.Event, digest)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		status := http.StatusCreated
		if !isNew {
			status = http.StatusConflict
		}
		writeJSON(w, status, rec)
	})
}
