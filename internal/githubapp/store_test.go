package githubapp

import (
	"context"
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/webhook"
)

// memDeliveries is Deliveries in memory, with the store's rules (see
// sqlite's tests): a delivery is new when neither its id nor its payload
// digest was seen; done is final. Every update is also sent on updates,
// when set, so that tests know a retry was scheduled.
type memDeliveries struct {
	mu         sync.Mutex
	deliveries map[string]*memDelivery
	digests    map[string]string // digest → id
	updates    chan webhook.Update
}

type memDelivery struct {
	webhook.Delivery
	payload []byte
}

var _ Deliveries = (*memDeliveries)(nil)

func (m *memDeliveries) AcceptDelivery(_ context.Context, r webhook.Received) (webhook.Delivery, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deliveries == nil {
		m.deliveries, m.digests = map[string]*memDelivery{}, map[string]string{}
	}
	digest := string(r.PayloadSHA256)
	if d, ok := m.deliveries[r.ID]; ok {
		return d.Delivery, false, nil
	}
	if id, ok := m.digests[digest]; ok && digest != "" {
		return m.deliveries[id].Delivery, false, nil
	}
	d := &memDelivery{Delivery: webhook.Delivery{ID: r.ID, Event: r.Event, State: webhook.Done}, payload: r.Payload}
	if r.Payload != nil {
		d.State = webhook.Accepted
	}
	m.deliveries[r.ID] = d
	if digest != "" {
		m.digests[digest] = r.ID
	}
	return d.Delivery, true, nil
}

func (m *memDeliveries) UpdateDelivery(_ context.Context, id string, u webhook.Update) error {
	if err := u.Check(); err != nil {
		return cluster.Errorf(cluster.EINVALID, "state", "%v", err)
	}
	m.mu.Lock()
	d, ok := m.deliveries[id]
	switch {
	case !ok:
		m.mu.Unlock()
		return cluster.Errorf(cluster.ENOTFOUND, "id", "no delivery %q", id)
	case d.State == webhook.Done:
		m.mu.Unlock()
		return cluster.Errorf(cluster.ECONFLICT, "state", "delivery %q is done", id)
	}
	d.State, d.Attempts, d.NextAttemptAt, d.Reason = u.State, u.Attempts, u.NextAttemptAt, u.Reason
	if u.State == webhook.Done {
		d.payload = nil
	}
	updates := m.updates
	m.mu.Unlock()
	if updates != nil {
		updates <- u
	}
	return nil
}

func (m *memDeliveries) PendingDeliveries(context.Context) ([]webhook.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []webhook.Delivery
	for _, d := range m.deliveries {
		if d.State == webhook.Accepted {
			out = append(out, d.Delivery)
		}
	}
	return out, nil
}

func (m *memDeliveries) DeliveryPayload(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok || d.payload == nil {
		return nil, cluster.Errorf(cluster.ENOTFOUND, "id", "no payload kept for delivery %q", id)
	}
	return d.payload, nil
}

// get returns a delivery as recorded.
func (m *memDeliveries) get(id string) (webhook.Delivery, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok {
		return webhook.Delivery{}, false
	}
	return d.Delivery, true
}

// nextRetry waits for the store to record a failed try with its next one,
// and returns when that is due. The timeout only guards against a hung
// test.
func (m *memDeliveries) nextRetry() (time.Time, bool) {
	timeout := time.After(20 * time.Second)
	for {
		select {
		case u := <-m.updates:
			if u.State == webhook.Accepted && !u.NextAttemptAt.IsZero() {
				return u.NextAttemptAt, true
			}
		case <-timeout:
			return time.Time{}, false
		}
	}
}
