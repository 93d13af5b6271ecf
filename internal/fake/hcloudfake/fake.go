// Package hcloudfake is a stateful fake of the Hetzner Cloud API for tests
// and local runs. It speaks the documented wire format (it encodes with
// hcloud-go's own schema types) so the real hcloud-go client can be pointed
// at it with hcloud.WithEndpoint: servers and their power, rebuild and
// create_image actions, actions that run and then succeed or fail on an
// injected clock, snapshots found by label_selector, SSH keys, firewalls,
// server types, locations and prices, the documented error envelope and statuses,
// the RateLimit-* headers with a 429 when the budget is spent, and scripted
// or random faults. Every request is counted per route.
//
// Servers can be backed by simulated machines (see Machine): the fake
// powers them on and off, reimages and snapshots them as the actions
// complete, so an SSH bootstrap can run against a real process on loopback.
//
// Snapshots (create_image) as SMEK's hibernation uses them: the action
// runs, the image is "creating" until it ends (a create from it is
// refused), then "available" with its image_size; a server created from it
// starts from a copy of the machine's disk; DELETE /images/{id} of a
// snapshot succeeds, a second one is not_found. Remaining differences
// from the real API: image_size is a fixed 1.5 GB whatever the disk
// holds; every server gets the address 127.0.0.1, so a server restored
// from a snapshot keeps its address (a real one gets a new IP); deleting
// a server while its create_image runs leaves the image "creating" for
// good (the real API's behaviour is not documented); image protection
// (change_protection, protected) is not modelled.
package hcloudfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/logkey"
)

// Config configures a Fake. The zero value is usable.
type Config struct {
	// Token, when set, is the only bearer token accepted.
	Token string
	// Clock tells the fake what time it is: actions complete and the
	// rate-limit budget refills on it, so a clockwork.FakeClock lets tests
	// move time by hand. Nil means the wall clock.
	Clock clockwork.Clock
	// Durations of actions by command (create_server, start_server,
	// stop_server, shutdown_server, rebuild_server, create_image,
	// delete_server, apply_firewall, ...). Missing commands take
	// DefaultDuration.
	Durations       map[string]time.Duration
	DefaultDuration time.Duration
	// RateLimit is the request budget (default 3600), refilled by one every
	// RateRefill (default 1s).
	RateLimit  int
	RateRefill time.Duration
	// MaxServers is the project's server limit (default 100); creating more
	// is resource_limit_exceeded.
	MaxServers int
	// FaultRate is the probability of a random fault per request, drawn
	// from RandomFaults (default: 500, 502, 503, 504 and 429).
	FaultRate    float64
	RandomFaults []Fault
	// Seed makes the random faults reproducible.
	Seed uint64
	// PublicIPv4 is every server's public address (default 127.0.0.1).
	PublicIPv4 string
	// ShutdownDelay is how long a server's operating system takes to power
	// off after its shutdown action succeeded: the action only delivers the
	// ACPI request (docs), the server stays running meanwhile. IgnoreACPI
	// makes every server's OS ignore the request, so a shutdown never turns
	// a server off (SetIgnoreACPI does it for one server).
	ShutdownDelay time.Duration
	IgnoreACPI    bool
	// HostKeyLag is how many SSH connections a machine booting a fresh disk
	// (after a create or a rebuild) answers with the host key its image
	// carries, before cloud-init has put the server's own in place
	// (MachineSpec.HostKeyLag).
	HostKeyLag int
	// Machines, when set, gives each server a simulated machine.
	Machines MachineFactory
	// DataDir holds snapshot contents when Machines is set.
	DataDir string
	// Currency is the project owner's currency GET /pricing answers in
	// (default EUR; Hetzner also bills in USD).
	Currency string
	Logger   *slog.Logger
}

// Fake is the fake API. Its handler is Handler; Start serves it.
type Fake struct {
	cfg Config
	log *slog.Logger

	// mu guards everything below.
	mu        sync.Mutex
	rand      *rand.Rand
	bucket    *bucket
	nextID    int64
	servers   map[int64]*server
	actions   map[int64]*action
	running   []*action // actions not yet finished, in start order
	images    map[int64]*image
	sshKeys   map[int64]*sshKey
	firewalls map[int64]*firewall
	counts    map[string]int
	// handled counts the requests per route whose handler has run (the
	// effect took place); handledCh is closed and replaced at each.
	handled   map[string]int
	handledCh chan struct{}
	scripted  map[string][]Fault
	failNext  map[string][]schema.ActionError
	effects   []func()
	// timers are changes due on the clock that are not actions (a server's
	// OS powering off some time after a shutdown request).
	timers []*timer
	// ignoreACPI holds the servers whose OS ignores a shutdown request.
	ignoreACPI map[int64]bool
	// placement holds the error code a create in a location fails with.
	placement map[string]string

	// effMu serialises running effects so that machine operations happen
	// in the order the API decided them. It guards machines.
	effMu    sync.Mutex
	machines map[int64]Machine
}

// New returns a fake with the catalog (server types, locations, system
// images) in place and nothing else.
func New(cfg Config) *Fake {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 3600
	}
	if cfg.RateRefill == 0 {
		cfg.RateRefill = time.Second
	}
	if cfg.MaxServers == 0 {
		cfg.MaxServers = 100
	}
	if cfg.PublicIPv4 == "" {
		cfg.PublicIPv4 = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fake{
		cfg:       cfg,
		log:       cfg.Logger.With(logkey.Component, "hcloudfake"),
		rand:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		bucket:    newBucket(cfg.RateLimit, cfg.RateRefill, cfg.Clock.Now()),
		nextID:    1000,
		servers:   map[int64]*server{},
		actions:   map[int64]*action{},
		images:    map[int64]*image{},
		sshKeys:   map[int64]*sshKey{},
		firewalls: map[int64]*firewall{},
		counts:    map[string]int{},
		handled:   map[string]int{},
		handledCh: make(chan struct{}),
		scripted:  map[string][]Fault{},
		failNext:  map[string][]schema.ActionError{},
		machines:  map[int64]Machine{},

		ignoreACPI: map[int64]bool{},
		placement:  map[string]string{},
	}
	f.addSystemImages()
	return f
}

func (f *Fake) id() int64 { f.nextID++; return f.nextID }

// handlerFunc answers one API request with the fake's mutex held.
type handlerFunc func(r *http.Request, now time.Time) (int, any, *apiError)

// Handler returns the API, rooted at "/" and also at "/v1".
func (f *Fake) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h handlerFunc) {
		mux.Handle(pattern, f.wrap(pattern, h))
	}
	route("GET /servers", f.listServers)
	route("POST /servers", f.createServer)
	route("GET /servers/{id}", f.getServer)
	route("PUT /servers/{id}", f.updateServer)
	route("DELETE /servers/{id}", f.deleteServer)
	route("POST /servers/{id}/actions/{action}", f.serverAction)
	route("GET /actions", f.listActions)
	route("GET /actions/{id}", f.getAction)
	route("GET /images", f.listImages)
	route("GET /images/{id}", f.getImage)
	route("PUT /images/{id}", f.updateImage)
	route("DELETE /images/{id}", f.deleteImage)
	route("GET /ssh_keys", f.listSSHKeys)
	route("POST /ssh_keys", f.createSSHKey)
	route("GET /ssh_keys/{id}", f.getSSHKey)
	route("DELETE /ssh_keys/{id}", f.deleteSSHKey)
	route("GET /firewalls", f.listFirewalls)
	route("POST /firewalls", f.createFirewall)
	route("GET /firewalls/{id}", f.getFirewall)
	route("DELETE /firewalls/{id}", f.deleteFirewall)
	route("POST /firewalls/{id}/actions/{action}", f.firewallAction)
	route("GET /server_types", f.listServerTypes)
	route("GET /server_types/{id}", f.getServerType)
	route("GET /locations", f.listLocations)
	route("GET /locations/{id}", f.getLocation)
	route("GET /pricing", f.getPricing)
	mux.HandleFunc("GET /_hcloudfake/servers/{id}", f.hookServer)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errf(CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	top := http.NewServeMux()
	top.Handle("/v1/", http.StripPrefix("/v1", mux))
	top.Handle("/", mux)
	return top
}

// wrap adds what every API request goes through: authentication, the
// budget, faults, the request count, completing due actions, and running
// the machine effects the request caused.
func (f *Fake) wrap(pattern string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		f.mu.Lock()
		now := f.cfg.Clock.Now()
		f.counts[pattern]++
		if f.cfg.Token != "" && r.Header.Get("Authorization") != "Bearer "+f.cfg.Token {
			f.mu.Unlock()
			writeError(w, errf(CodeUnauthorized, "unable to authenticate"))
			return
		}
		ok := f.bucket.take(now)
		f.bucket.header(w.Header(), now)
		if !ok {
			f.mu.Unlock()
			writeError(w, errf(CodeRateLimitExceeded, "limit of %d requests per hour reached", f.cfg.RateLimit))
			return
		}
		fault, faulty := f.faultFor(pattern)
		if faulty && !fault.AfterEffect {
			f.mu.Unlock()
			writeFault(w, fault)
			return
		}
		f.settle(now)
		status, body, apiErr := h(r, now)
		f.settle(now)
		f.handled[pattern]++
		close(f.handledCh)
		f.handledCh = make(chan struct{})
		f.mu.Unlock()
		f.runEffects()
		switch {
		case faulty:
			writeFault(w, fault)
		case apiErr != nil:
			writeError(w, apiErr)
		case body == nil:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, body)
		}
	})
}

// Start serves the fake on a loopback port until Close.
func (f *Fake) Start() *Server {
	return startServer(f)
}

// Counts returns the number of requests per route pattern so far
// ("POST /servers": 3, ...), including refused ones.
func (f *Fake) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}

// TotalRequests is the sum of Counts.
func (f *Fake) TotalRequests() int {
	n := 0
	for _, v := range f.Counts() {
		n += v
	}
	return n
}

// ResetCounts forgets the request counts.
func (f *Fake) ResetCounts() { f.mu.Lock(); clear(f.counts); clear(f.handled); f.mu.Unlock() }

// Handled returns how many requests on route (a pattern as in Counts) have
// taken effect: their handler ran, whatever the answer.
func (f *Fake) Handled(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handled[route]
}

// Await blocks until n requests on route have taken effect (Handled), or
// ctx ends. Tests use it to act between a request and its answer, say to
// "kill" a client right after its create reached the API.
func (f *Fake) Await(ctx context.Context, route string, n int) error {
	for {
		f.mu.Lock()
		have, ch := f.handled[route], f.handledCh
		f.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await %d × %s (have %d): %w", n, route, have, ctx.Err())
		case <-ch:
		}
	}
}

// InjectFaults queues faults for the next requests on route (a pattern as
// listed by Counts, e.g. "POST /servers").
func (f *Fake) InjectFaults(route string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripted[route] = append(f.scripted[route], faults...)
}

// SetFaultRate changes the probability of a random fault per request.
func (f *Fake) SetFaultRate(p float64) { f.mu.Lock(); f.cfg.FaultRate = p; f.mu.Unlock() }

// FailNextAction makes the next action with this command end in error.
func (f *Fake) FailNextAction(command, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[command] = append(f.failNext[command], schema.ActionError{Code: code, Message: message})
}

// Settle completes the actions that are due on the clock and applies their
// effects; requests do this too, so only tests that look at machines
// without calling the API need it.
func (f *Fake) Settle() {
	f.mu.Lock()
	f.settle(f.cfg.Clock.Now())
	f.mu.Unlock()
	f.runEffects()
}

func (f *Fake) runEffects() {
	f.effMu.Lock()
	defer f.effMu.Unlock()
	for {
		f.mu.Lock()
		q := f.effects
		f.effects = nil
		f.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, e := range q {
			e()
		}
	}
}

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errf(CodeInvalidInput, "request body too large")
		}
		return errf(CodeJSONError, "read body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return invalidField(typeErr.Field, "has the wrong type")
		}
		return errf(CodeJSONError, "invalid JSON: %v", err)
	}
	return nil
}

// page cuts items into the requested page and returns the documented meta.
func page[T any](r *http.Request, items []T) ([]T, schema.Meta, *apiError) {
	q := r.URL.Query()
	p, per := 1, 25
	if v := q.Get("page"); v != "" {
		n, err := atoiPositive(v)
		if err != nil {
			return nil, schema.Meta{}, invalidField("page", "must be a positive integer")
		}
		p = n
	}
	if v := q.Get("per_page"); v != "" && v != "-1" {
		n, err := atoiPositive(v)
		if err != nil || n > 50 {
			return nil, schema.Meta{}, invalidField("per_page", "must be between 1 and 50")
		}
		per = n
	}
	total := len(items)
	last := max(1, (total+per-1)/per)
	from := min(total, (p-1)*per)
	to := min(total, from+per)
	m := schema.MetaPagination{Page: p, PerPage: per, LastPage: last, TotalEntries: total}
	if p > 1 {
		m.PreviousPage = p - 1
	}
	if p < last {
		m.NextPage = p + 1
	}
	return items[from:to], schema.Meta{Pagination: &m}, nil
}

func atoiPositive(s string) (int, error) {
	n := 0
	if s == "" || len(s) > 9 {
		return 0, errors.New("bad number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad number")
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 {
		return 0, errors.New("bad number")
	}
	return n, nil
}

func pathID(r *http.Request, _ string) (int64, *apiError) {
	s := r.PathValue("id")
	n, err := atoiPositive(s)
	if err != nil {
		return 0, invalidField("id", "must be a positive integer")
	}
	return int64(n), nil
}

// sortBy orders items as the sort query parameters say ("created:desc",
// "id", ... each "field", "field:asc" or "field:desc", the first the most
// significant), by id when there is none (the fields' order func breaks
// ties by "id" too).
func sortBy[T any](r *http.Request, items []T, fields map[string]func(a, b T) int) *apiError {
	type key struct {
		cmp  func(a, b T) int
		desc bool
	}
	var keys []key
	for _, v := range r.URL.Query()["sort"] {
		name, dir, _ := strings.Cut(v, ":")
		c, ok := fields[name]
		if !ok || (dir != "" && dir != "asc" && dir != "desc") {
			return invalidField("sort", fmt.Sprintf("%q is not a valid sort", v))
		}
		keys = append(keys, key{c, dir == "desc"})
	}
	keys = append(keys, key{cmp: fields["id"]})
	slices.SortStableFunc(items, func(a, b T) int {
		for _, k := range keys {
			if c := k.cmp(a, b); c != 0 {
				if k.desc {
					return -c
				}
				return c
			}
		}
		return 0
	})
	return nil
}

// filterLabels applies the label_selector query parameter.
func filterLabels[T any](r *http.Request, items []T, labels func(T) map[string]string) ([]T, *apiError) {
	s := r.URL.Query().Get("label_selector")
	if s == "" {
		return items, nil
	}
	sel, err := parseSelector(s)
	if err != nil {
		return nil, invalidField("label_selector", err.Error())
	}
	return slices.DeleteFunc(items, func(it T) bool { return !sel.matches(labels(it)) }), nil
}

func cloneLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
