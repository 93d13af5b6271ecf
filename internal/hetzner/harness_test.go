package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/rest"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/fake/latency"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

// The durations of the fake's actions in the pool-level tests, in
// simulated time (they cost no real time: see simClock).
var simDurations = map[string]time.Duration{
	"create_server": 20 * time.Second, "start_server": 5 * time.Second, "rebuild_server": 15 * time.Second,
	"shutdown_server": 5 * time.Second, "stop_server": 3 * time.Second, "create_image": 30 * time.Second,
	"delete_server": 3 * time.Second,
}

// simShutdownDelay is how long a server's OS takes to power off after the
// shutdown action, in simulated time.
const simShutdownDelay = 10 * time.Second

// simClock is the simulated time of the fake's actions and of the
// backend's waits: every backoff sleep of the backend moves it forward by
// its duration and takes only a moment of real time. Frozen, it stands
// still, so an action that is running stays running.
type simClock struct {
	*clockwork.FakeClock
	frozen atomic.Bool
}

func newSimClock() *simClock {
	return &simClock{FakeClock: clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if !c.frozen.Load() {
		c.Advance(d)
	}
	t := time.NewTimer(100 * time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// world is what outlives a provisioner: the cloud (the fake), the
// database file, the project's SSH key and credential key.
type world struct {
	t        testing.TB
	fake     *hcloudfake.Server
	clock    *simClock
	dbPath   string
	signer   ssh.Signer
	key      []byte
	machines bool
	image    *hcloud.Image

	proxyMu sync.Mutex // guards proxies
	// proxies are the latency proxies in front of the machines' APIs, by
	// target address and delay (see backendWith).
	proxies map[proxyKey]*latency.Proxy
}

type proxyKey struct {
	target string
	delay  time.Duration
}

type worldOptions struct {
	// machines gives every server a simulated node running a real control
	// plane; without, the node steps are stubbed (stubNode).
	machines bool
	seed     uint64
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	w := &world{t: t, clock: newSimClock(), dbPath: filepath.Join(t.TempDir(), "smek.db"), machines: o.machines}
	// A server's OS takes a while to go off after the ACPI shutdown, and a
	// system from a snapshot answers its first SSH connection with the
	// snapshot's old host key (the backend pins the one it gave).
	fcfg := hcloudfake.Config{Clock: w.clock.FakeClock, Durations: simDurations, DefaultDuration: time.Second, Seed: o.seed,
		ShutdownDelay: simShutdownDelay, HostKeyLag: 1}
	if o.machines {
		dir := t.TempDir()
		fcfg.Machines = k3snode.Factory(k3snode.Config{Dir: dir, KubeBin: kubeBin(t)})
		fcfg.DataDir = dir
	}
	w.fake = hcloudfake.New(fcfg).Start()
	t.Cleanup(w.fake.Close)
	t.Cleanup(w.closeProxies)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	w.signer = signer
	w.key = make([]byte, 32)
	rand.Read(w.key)
	// The golden snapshot every run finds by label.
	b := w.backend(http.DefaultTransport)
	if o.machines {
		img, err := b.BuildImage(context.Background(), ImageConfig{K3sVersion: "v1.36.3+k3s1"})
		if err != nil {
			t.Fatalf("build image: %v", err)
		}
		w.image = img
	} else {
		w.image = w.snapshot(t)
	}
	w.fake.ResetCounts()
	return w
}

// snapshot makes a golden snapshot without a build: a server from the
// system image, imaged with the golden labels, then deleted.
func (w *world) snapshot(t testing.TB) *hcloud.Image {
	ctx := context.Background()
	c := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "golden-src", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Minute)
	ir, _, err := c.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot,
		Labels: map[string]string{LabelInstall: "test", LabelRole: "golden", LabelK8sVersion: "1.36.3", LabelK3sVersion: "v1.36.3-k3s1"}})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Minute)
	if _, _, err := c.Server.DeleteWithResult(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	return ir.Image
}

// backend returns a backend as a provisioner starts it, its API calls
// going through rt.
func (w *world) backend(rt http.RoundTripper) *Backend {
	w.t.Helper()
	return w.backendWith(rt, 0)
}

// backendWith is backend with the machines' Kubernetes APIs apiDelay away
// in each direction, as a real server's are (apiDelay 0: on loopback).
// Its APIAddr hook answers a latency proxy in front of the API that
// FakeAPIAddr names. SSH (FakeSSHAddr) and the Hetzner API are not
// delayed.
func (w *world) backendWith(rt http.RoundTripper, apiDelay time.Duration) *Backend {
	w.t.Helper()
	hc := &http.Client{Transport: rt}
	apiAddr := FakeAPIAddr(w.fake.URL, hc)
	if apiDelay > 0 {
		at := apiAddr
		apiAddr = func(ctx context.Context, s *hcloud.Server) (string, error) {
			addr, err := at(ctx, s)
			if err != nil || addr == "" {
				return addr, err
			}
			return w.proxy(addr, apiDelay)
		}
	}
	client := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}), hcloud.WithHTTPClient(hc))
	b, err := New(Config{
		Client: client, Installation: "test", SSHKeyName: "smek", Signer: w.signer, CredentialKey: w.key,
		Firewall: "smek-nodes", SourceCIDRs: []string{"127.0.0.1/32"},
		SSHAddr: FakeSSHAddr(w.fake.URL, hc), APIAddr: apiAddr,
		ExpectCreate: simDurations["create_server"], ExpectRebuild: simDurations["rebuild_server"], ExpectPower: simDurations["start_server"],
		ExpectShutdown: simDurations["shutdown_server"] + simShutdownDelay,
		PollMin:        time.Second, PollMax: 10 * time.Second, RetryBase: time.Second,
		ReadyTimeout: 3 * time.Minute, OrphanGrace: 15 * time.Minute,
		Clock: w.clock.FakeClock, Sleep: w.clock.Sleep,
		Policy: func(ctx context.Context, cfg *rest.Config, f cluster.Flavor) error {
			return policy.Apply(ctx, cfg, policy.Options{Privileged: f.Privileged, LocalPathStorageClass: true})
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// proxy returns the address of the latency proxy in front of target, one
// per target and delay, started at its first use.
func (w *world) proxy(target string, delay time.Duration) (string, error) {
	w.proxyMu.Lock()
	defer w.proxyMu.Unlock()
	k := proxyKey{target, delay}
	if p, ok := w.proxies[k]; ok {
		return p.Addr(), nil
	}
	p, err := latency.Listen(target, delay)
	if err != nil {
		return "", err
	}
	if w.proxies == nil {
		w.proxies = map[proxyKey]*latency.Proxy{}
	}
	w.proxies[k] = p
	return p.Addr(), nil
}

func (w *world) closeProxies() {
	w.proxyMu.Lock()
	defer w.proxyMu.Unlock()
	for _, p := range w.proxies {
		p.Close()
	}
}

var errKilled = errors.New("the provisioner was killed")

// killSwitch is the process boundary of one provisioner run: once dead,
// its API calls and database writes fail as if the process were gone. It
// can die on its own at a chosen request, before it is sent or right after
// its answer came (which the dead process then never sees).
type killSwitch struct {
	next http.RoundTripper

	mu            sync.Mutex
	dead          bool
	before, after func(*http.Request) bool
	fired         chan struct{}
}

func newKillSwitch() *killSwitch {
	return &killSwitch{next: http.DefaultTransport, fired: make(chan struct{})}
}

func (k *killSwitch) isDead() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.dead }

// die kills the process (once). k.mu is held.
func (k *killSwitch) die() {
	if !k.dead {
		k.dead = true
		close(k.fired)
	}
}

func (k *killSwitch) kill() { k.mu.Lock(); k.die(); k.mu.Unlock() }

func (k *killSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	k.mu.Lock()
	if k.dead || k.before != nil && k.before(r) {
		k.die()
		k.mu.Unlock()
		return nil, errKilled
	}
	k.mu.Unlock()
	resp, err := k.next.RoundTrip(r)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead || k.after != nil && k.after(r) {
		k.die()
		if resp != nil {
			resp.Body.Close()
		}
		return nil, errKilled
	}
	return resp, err
}

// request matches a request by method and path pattern ("POST",
// "/servers/*/actions/rebuild"; * is one segment).
func request(method, pattern string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.Method != method {
			return false
		}
		ok, _ := filepath.Match(pattern, r.URL.Path)
		return ok
	}
}

// killStore is the database as one provisioner run sees it: dead with its
// kill switch. The changes of a cluster with its member (*sqlite.DB) stay
// alive: the lifecycle of these tests is not part of the run that dies.
type killStore struct {
	*sqlite.DB
	db *sqlite.DB
	k  *killSwitch
}

func (s killStore) CreateMember(ctx context.Context, backend string, f cluster.Flavor) (cluster.Member, error) {
	if s.k.isDead() {
		return cluster.Member{}, errKilled
	}
	return s.db.CreateMember(ctx, backend, f)
}

func (s killStore) SetMemberState(ctx context.Context, id string, state cluster.MemberState, data []byte, failure string) error {
	if s.k.isDead() {
		return errKilled
	}
	return s.db.SetMemberState(ctx, id, state, data, failure)
}

func (s killStore) Members(ctx context.Context, backend string) ([]cluster.Member, error) {
	if s.k.isDead() {
		return nil, errKilled
	}
	return s.db.Members(ctx, backend)
}

// stubNode stands in for SSH and Kubernetes in tests of the cloud side:
// a bootstrap succeeds at once (or blocks while hold is set, until its
// run dies), and every start is counted.
type stubNode struct {
	b       *Backend
	hold    atomic.Bool
	entered chan string // a member id per bootstrap or restart begun
	boots   atomic.Int64

	mu       sync.Mutex
	byMember map[string]int // mu guards; k3s starts per member id
}

// bootsOf returns how often k3s was started on member id's server.
func (s *stubNode) bootsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byMember[id]
}

func installStub(b *Backend) *stubNode {
	s := &stubNode{b: b, entered: make(chan string, 100)}
	b.node = nodeOps{bootstrap: s.bootstrap, restart: s.restart, restore: s.restart}
	return s
}

func (s *stubNode) bootstrap(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
	select {
	case s.entered <- m.ID:
	default:
	}
	if s.hold.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	s.boots.Add(1)
	s.mu.Lock()
	if s.byMember == nil {
		s.byMember = map[string]int{}
	}
	s.byMember[m.ID]++
	s.mu.Unlock()
	d.Timings["bootstrap"] = 0
	d.APIServer = "https://" + d.IP + ":6443"
	d.Admin = s.b.seal.seal([]byte("stub admin of "+srv.Name), m.ID)
	return nil
}

func (s *stubNode) restart(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
	return s.bootstrap(ctx, m, srv, d)
}

// run is one provisioner process: a backend and a pool over the shared
// database file, behind a kill switch.
type run struct {
	w       *world
	db      *sqlite.DB
	backend *Backend
	pool    *pool.Pool
	stub    *stubNode // nil with machines
	k       *killSwitch
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type runOptions struct {
	target int
	// parallel bounds the pool's concurrent work (default 2).
	parallel int
	// max bounds the members of the flavor (0: no bound).
	max int
	// lostAfter is the pool's LostAfter (default: the pool's). Health
	// checks run when a test calls CheckHealth, never on a timer.
	lostAfter int
	// wrap, when set, wraps the backend the pool gets.
	wrap func(*Backend) pool.Backend
	// prepare may set the kill switch's triggers or the stub before the
	// pool starts.
	prepare func(*run)
}

func (w *world) start(o runOptions) *run {
	w.t.Helper()
	db, err := sqlite.Open(context.Background(), w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	r := &run{w: w, db: db, k: newKillSwitch(), done: make(chan error, 1)}
	r.backend = w.backend(r.k)
	if !w.machines {
		r.stub = installStub(r.backend)
	}
	targets := map[cluster.Flavor]int{}
	if o.target > 0 {
		targets[flavor] = o.target
	}
	var pb pool.Backend = r.backend
	if o.wrap != nil {
		pb = o.wrap(r.backend)
	}
	r.pool = pool.New(killStore{DB: db, db: db, k: r.k}, pb, pool.Config{Targets: targets, Parallel: o.parallel, MaxPerFlavor: o.max, Interval: time.Hour,
		HealthEvery: time.Hour, LostAfter: o.lostAfter})
	if o.prepare != nil {
		o.prepare(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.pool.Run(ctx) }()
	w.t.Cleanup(r.stop)
	return r
}

// kill ends the run the way a crash does: no request and no write after
// the switch, whatever its goroutines were doing.
func (r *run) kill() {
	r.k.kill()
	r.stop()
}

// stop ends the run and waits for its goroutines.
func (r *run) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		r.w.t.Errorf("the pool did not stop within 2 minutes")
	}
	r.db.Close()
}

// await waits until cond holds for the run's members, checking at every
// ready signal and every few milliseconds of real time.
func (r *run) await(what string, cond func([]cluster.Member) bool) []cluster.Member {
	r.w.t.Helper()
	deadline := time.After(3 * time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := r.pool.Ready()
		ms, err := r.db.Members(context.Background(), "hetzner")
		if err != nil {
			r.w.t.Fatal(err)
		}
		if cond(ms) {
			return ms
		}
		select {
		case <-ready:
		case <-tick.C:
			r.pool.Nudge()
		case <-deadline:
			r.w.t.Fatalf("waiting for %s: members %v, servers %v", what, memberStates(ms), r.w.fake.Servers())
		}
	}
}

func memberStates(ms []cluster.Member) map[string]cluster.MemberState {
	out := map[string]cluster.MemberState{}
	for _, m := range ms {
		out[m.ID] = m.State
	}
	return out
}

// settled says the pool is done: at least n members ready and none on its
// way (creating, rebuilding, dirty, failed).
func settled(n int) func([]cluster.Member) bool {
	return func(ms []cluster.Member) bool {
		ready := 0
		for _, m := range ms {
			switch m.State {
			case cluster.MemberReady:
				ready++
			case cluster.MemberClaimed, cluster.MemberStopped:
			default:
				return false
			}
		}
		return ready >= n
	}
}

// checkInventory asserts the invariant between the cloud and the
// database: every node server of the installation belongs to exactly one
// live member, and every live member that has a server has it. It returns
// the member of each server.
func (r *run) checkInventory() map[int64]cluster.Member {
	t := r.w.t
	t.Helper()
	r.w.fake.Settle()
	ms, err := r.db.Members(context.Background(), "hetzner")
	if err != nil {
		t.Fatal(err)
	}
	byLabel := map[string]cluster.Member{}
	for _, m := range ms {
		byLabel[sanitize(m.ID)] = m
	}
	owner := map[int64]cluster.Member{}
	seen := map[string]int64{}
	for _, s := range r.w.fake.Servers() {
		if s.Labels[LabelInstall] != "test" || s.Labels[LabelRole] != "node" {
			continue
		}
		m, ok := byLabel[s.Labels[LabelMember]]
		if !ok {
			t.Errorf("leaked server %d (%s): no live member %q", s.ID, s.Name, s.Labels[LabelMember])
			continue
		}
		if other, dup := seen[m.ID]; dup {
			t.Errorf("member %s has two servers: %d and %d", m.ID, other, s.ID)
		}
		seen[m.ID] = s.ID
		owner[s.ID] = m
	}
	for _, m := range ms {
		d, _ := parseData(m.Data)
		if d.ServerID != 0 && owner[d.ServerID].ID != m.ID {
			t.Errorf("member %s (%s) records server %d, which is gone", m.ID, m.State, d.ServerID)
		}
	}
	return owner
}

// claim claims a ready member for a new cluster the way a create does
// (the database transaction), and returns it.
func (r *run) claim(account cluster.Account) (cluster.Member, cluster.Cluster) {
	r.w.t.Helper()
	now := time.Now()
	c := cluster.Cluster{ID: cluster.NewID(), AccountID: account.ID, Account: account.Name,
		Spec:      cluster.Spec{K8sVersion: flavor.K8sVersion, Size: flavor.Size, MinutesToLive: 60, KeepCluster: true},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	m, err := r.db.ClaimMember(context.Background(), c, "hetzner")
	if err != nil {
		r.w.t.Fatalf("claim: %v", err)
	}
	return m, c
}

func (r *run) account() cluster.Account {
	r.w.t.Helper()
	n := 1000
	a, err := r.db.EnsureAccount(context.Background(), "acme", sqlite.AccountLimits{MaxClusters: &n})
	if err != nil {
		r.w.t.Fatal(err)
	}
	return a
}

// terminate ends a cluster: its member goes dirty and the pool rebuilds it.
func (r *run) terminate(c cluster.Cluster) {
	r.w.t.Helper()
	if _, err := r.db.UpdateCluster(context.Background(), c.ID, cluster.Change{
		From: []cluster.Status{cluster.Pending, cluster.Running, cluster.Stopped}, To: cluster.Terminated,
		ReleaseMember: true, MemberState: cluster.MemberDirty, Cause: "api",
	}); err != nil {
		r.w.t.Fatal(err)
	}
	r.pool.Nudge()
}

// transitions returns a member's recorded state changes as "from→to".
func transitions(t testing.TB, db *sqlite.DB, id string) []string {
	t.Helper()
	evs, err := db.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s→%s", e.From, e.To))
	}
	return out
}

// checkNeverDirtyToReady asserts invariant 1 on the record: no member went
// from dirty to ready, every return to ready after a claim went through
// rebuilding.
func checkNeverDirtyToReady(t testing.TB, db *sqlite.DB, id string) {
	t.Helper()
	evs, err := db.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	state := ""
	for _, e := range evs {
		if e.To == "" {
			continue
		}
		if e.To == string(cluster.MemberReady) && state != "" && state != string(cluster.MemberCreating) && state != string(cluster.MemberRebuilding) {
			t.Errorf("member %s went %s→ready without a rebuild: %v", id, state, transitions(t, db, id))
		}
		state = e.To
	}
}
