package githubapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/webhook"
)

const (
	testSecret = "It's a Secret to Everybody"
	testAppID  = 4242
	// The installation of the fixtures' pull-request repositories, linked
	// to account "acme"; otherInstallation is linked to "umbrella".
	testInstallation  = 1
	otherInstallation = 77
	fixtures          = "testdata/webhooks" // copies of ../shared/fixtures, see SOURCES.md
)

// appKey is one RSA key for the whole test binary: generating one per test
// would cost more than the tests.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func appKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(appKey())})
}

// harness is an App served over HTTP with a real SQLite delivery store, the
// fake GitHub behind the real go-github + ghinstallation clients, and
// in-memory clusters.
type harness struct {
	t        *testing.T
	app      *App
	srv      *httptest.Server
	github   *githubfake.Server
	clusters *memClusters
	// deliveries outlives a restart, as the provisioner's database does.
	// The tests with the real SQLite store are in ./e2e.
	deliveries *memDeliveries
	clock      *clockwork.FakeClock
	results    chan Result
	seq        atomic.Int64
	// stop stops the App last started and waits for its Run to return.
	stop func()
}

type harnessOption func(*Config)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		results: make(chan Result, 100)}
	h.github = githubfake.New(testAppID, &appKey().PublicKey)
	t.Cleanup(h.github.Close)
	h.github.AddInstallation(testInstallation, "chhsia0/knative-route-demo", "Codertocat/Hello-World")
	h.github.AddInstallation(otherInstallation, "umbrella/corp")
	h.clusters = newMemClusters(h.clock.Now)
	h.clusters.link(testInstallation, "acme")
	h.clusters.link(otherInstallation, "umbrella")
	h.deliveries = &memDeliveries{updates: make(chan webhook.Update, 1000)}
	h.start(opts...)
	return h
}

// start makes an App on the harness's delivery store and serves it;
// calling it again is a restart.
func (h *harness) start(opts ...harnessOption) {
	t := h.t
	gh, err := NewAppClient(testAppID, appKeyPEM(), h.github.URL, nil, WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Secret:     []byte(testSecret),
		Clusters:   h.clusters,
		Deliveries: h.deliveries,
		GitHub:     gh,
		PublicURL:  "https://smek.example.com",
		Clock:      h.clock,
		OnDone:     func(r Result) { h.results <- r },
	}
	for _, o := range opts {
		o(&cfg)
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	h.srv = httptest.NewServer(app)
	srv := h.srv
	var once sync.Once
	h.stop = func() { once.Do(func() { srv.Close(); cancel(); <-done }) }
	t.Cleanup(h.stop)
}

// fixture reads a payload from the shared fixtures.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// variant returns a fixture with fields changed: edit gets the decoded
// object.
func variant(t testing.TB, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// obj returns m[key] as an object.
func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// delivery is one webhook request.
type delivery struct {
	event, id string
	body      []byte
	signature string // "" signs the body with testSecret; "-" sends none
}

// send posts a delivery and returns the answer's status and body.
func (h *harness) send(d delivery) (int, []byte) {
	h.t.Helper()
	if d.id == "" {
		d.id = fmt.Sprintf("delivery-%d", h.seq.Add(1))
	}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+WebhookPath, bytes.NewReader(d.body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(EventHeader, d.event)
	req.Header.Set(DeliveryHeader, d.id)
	switch d.signature {
	case "":
		req.Header.Set(SignatureHeader, Sign([]byte(testSecret), d.body))
	case "-":
	default:
		req.Header.Set(SignatureHeader, d.signature)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// deliver sends a delivery that must be accepted and waits for its work.
func (h *harness) deliver(event string, body []byte) Result {
	h.t.Helper()
	status, answer := h.send(delivery{event: event, body: body})
	if status != http.StatusAccepted {
		h.t.Fatalf("delivery of %s: got %d %s, want 202", event, status, answer)
	}
	return h.wait()
}

// wait returns the next finished delivery. The timeout only guards against
// a hung test; nothing depends on its length.
func (h *harness) wait() Result {
	h.t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(20 * time.Second):
		h.t.Fatal("no delivery finished")
		return Result{}
	}
}

// advanceToRetry waits until a retry is recorded and scheduled on the fake
// clock, checks it is due after the backoff of attempt, and moves the
// clock to it.
func (h *harness) advanceToRetry(attempt int) {
	h.t.Helper()
	at := h.nextRetry()
	if want := h.clock.Now().Add(backoff(attempt)); !at.Equal(want) {
		h.t.Fatalf("retry after attempt %d at %s, want %s", attempt, at, want)
	}
	h.clock.Advance(at.Sub(h.clock.Now()))
}

// nextRetry waits until a retry is recorded and its timer is on the fake
// clock, and returns when it is due.
func (h *harness) nextRetry() time.Time {
	h.t.Helper()
	at, ok := h.deliveries.nextRetry()
	if !ok {
		h.t.Fatal("no retry was recorded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		h.t.Fatalf("no retry was scheduled: %v", err)
	}
	return at
}
