// Package sim replays a demand trace against the warm pool's own decisions
// on simulated time: the policy (policy.Policy), pre-warms
// (policy.Prewarms), what to provision and retire (pool.Plan) and what to
// do with a released member (the pool's release rule). Server creates and
// rebuilds take durations drawn from distributions with a seeded
// generator; nothing reads the wall clock or sleeps, so a month of demand
// replays in a fraction of a second, and the same seed gives the same
// result.
package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/pool/policy"
)

// Requests are the Hetzner API requests the pool's operations take, as
// measured against the fake (internal/hetzner TestRequestBudget).
type Requests struct {
	// Provision: POST /servers and its action (create from the snapshot).
	Provision int
	// Rebuild: POST rebuild, its action, and the GET that says whether to
	// power on.
	Rebuild int
	// Destroy: DELETE /servers/{id}, not waited for.
	Destroy int
	// ImageList is the golden-snapshot list, cached a minute: at most one
	// per minute in which a provision or rebuild starts.
	ImageList int
	// InventoryEvery is the backend reconcile's period (one server list
	// each, pool.Config.ReconcileEvery).
	InventoryEvery time.Duration
}

// MeasuredRequests are the counts internal/hetzner's TestRequestBudget
// asserts.
var MeasuredRequests = Requests{Provision: 2, Rebuild: 3, Destroy: 1, ImageList: 1, InventoryEvery: 10 * time.Minute}

// Default durations: a server from the golden snapshot, bootstrapped over
// SSH to ready (about a minute: the issue, docs/pool.md), and a rebuild
// from the snapshot plus the same bootstrap.
var (
	DefaultCreateTime  = mustDist("lognormal:median=55s,p95=80s")
	DefaultRebuildTime = mustDist("lognormal:median=45s,p95=70s")
)

func mustDist(s string) Dist {
	d, err := ParseDist(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Config is one simulation run.
type Config struct {
	// Name is the run's name in the result (default: the policy's name).
	Name string
	// Policy decides the ready targets. It is told every arrival and
	// every member that becomes ready, as the pool tells it. A policy
	// keeps state: give every run a fresh one.
	Policy policy.Policy
	// Prewarm: a queued job that asked for a cluster before raises its
	// flavor's target (policy.Prewarms) for PrewarmFor (default 15 min, the GitHub App's pre-warm TTL) or
	// until its create arrives.
	Prewarm    bool
	PrewarmFor time.Duration
	// PrewarmCap bounds the pre-warms under way at once (default 10, the
	// GitHub App's cap per installation; a trace is one installation).
	PrewarmCap int
	// Flavor is the flavor of rows that name none.
	Flavor cluster.Flavor
	// CreateTime and RebuildTime are the durations of a provision (server
	// created to ready) and of a rebuild (release to ready) (defaults
	// DefaultCreateTime, DefaultRebuildTime).
	CreateTime, RebuildTime Dist
	// ClaimTime is what a create takes once a ready member is there
	// (default 50 ms: BenchmarkWarmClaim, the node 20 ms away each way).
	ClaimTime time.Duration
	// Parallel bounds provisions and releases at once, as
	// pool.Config.Parallel does (default 2, serve's --provision-parallel).
	Parallel int
	// MaxPerFlavor bounds a flavor's live members (0: no bound).
	MaxPerFlavor int
	// Interval is how often the pool reconciles without a nudge (default
	// 10 s, pool.Config.Interval); it also reconciles after every event.
	Interval time.Duration
	// RetireWithin is pool.PlanInput.RetireWithin.
	RetireWithin time.Duration
	// Warmup is how long before the trace's first event the pool starts,
	// empty (default 15 min); its servers are billed from then.
	Warmup time.Duration
	// Model prices the servers; a flavor whose size it does not bill costs
	// nothing.
	Model cost.Model
	// Requests are the API requests per operation (default
	// MeasuredRequests).
	Requests Requests
	// Seed seeds the durations' generator.
	Seed uint64
}

// Result is one run, in the shape of `provisioner pool simulate --json`.
type Result struct {
	Policy    string  `json:"policy"`
	Creates   int     `json:"creates"`
	WarmRatio float64 `json:"warm-ratio"`
	WaitP50S  float64 `json:"wait-p50-s"`
	WaitP95S  float64 `json:"wait-p95-s"`
	WaitMaxS  float64 `json:"wait-max-s"`
	// Server-hours by cost.Category: busy (claimed), idle (ready, and
	// the unused rest of the paid hour a server was deleted in), building
	// (created, bootstrapping, dirty, rebuilding).
	BusyServerHours     float64 `json:"busy-server-hours"`
	IdleServerHours     float64 `json:"idle-server-hours"`
	IdleOverhead        float64 `json:"idle-overhead"`
	CostEUR             float64 `json:"cost-eur"`
	BuildingServerHours float64 `json:"building-server-hours"`
	// PaidServerHours are the started hours billed (cost.PaidHourEnd):
	// at least busy + idle + building.
	PaidServerHours float64 `json:"paid-server-hours"`
	ServersCreated  int     `json:"servers-created"`
	Rebuilds        int     `json:"rebuilds"`
	// Retired are the surplus ready members deleted near the end of their
	// paid hour (a ScaleDown policy).
	Retired       int `json:"retired"`
	PrewarmHits   int `json:"prewarm-hits"`
	PrewarmMisses int `json:"prewarm-misses"`
	// PrewarmCapped are queued jobs not pre-warmed for PrewarmCap.
	PrewarmCapped int `json:"prewarm-capped"`
	// PeakRequestsPerHour is the most Hetzner API requests in any hour
	// (sliding), against a budget of 3,600.
	PeakRequestsPerHour int `json:"peak-hetzner-requests-per-hour"`
	// Start and End are the simulated span.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// event kinds, in the order events at the same instant are handled.
const (
	evReady   = iota // a member's provision or rebuild finished
	evEnd            // a cluster's lifetime ended: its member is released
	evQueued         // a job was queued (pre-warm)
	evArrival        // a create arrives
	evTick           // the pool's periodic reconcile
)

type event struct {
	at   time.Time
	kind int
	seq  int
	row  int    // evQueued, evArrival
	id   string // evReady, evEnd: the member
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if !e[i].at.Equal(e[j].at) {
		return e[i].at.Before(e[j].at)
	}
	if e[i].kind != e[j].kind {
		return e[i].kind < e[j].kind
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// member is a simulated pool member.
type member struct {
	cluster.Member
	since     time.Time // of its current state
	workStart time.Time // of the provision or release under way
	rebuild   bool
}

// job is work waiting for one of the Parallel slots: a provision of a
// flavor, or the release of a member.
type job struct {
	flavor cluster.Flavor
	member string // "": a provision
}

// waiter is a create waiting for a member.
type waiter struct {
	row int
	at  time.Time
}

type run struct {
	cfg     Config
	rows    []Row
	rng     *rand.Rand
	now     time.Time
	q       events
	seq     int
	nextID  int
	members map[string]*member
	// provisioning counts provisions queued or under way per flavor, until
	// their member is ready (the pool's provisioning).
	provisioning map[cluster.Flavor]int
	waiting      map[cluster.Flavor][]waiter
	work         []job
	running      int
	busy         map[string]bool // members with a release queued or under way
	lastTargets  map[cluster.Flavor]int
	prewarms     policy.Prewarms
	prewarmed    map[int]bool // rows whose queued job started a pre-warm
	learned      map[string]bool
	pending      int // non-tick events in the queue

	hours                         map[cost.Category]time.Duration
	paid                          time.Duration
	eur                           float64
	waits                         []time.Duration
	warm, created, rebuilds       int
	hits, misses, retired, capped int
	requests                      []reqAt
	lastImageList                 time.Time
}

type reqAt struct {
	at time.Time
	n  int
}

// Run replays rows under cfg. The rows need not be sorted.
func Run(rows []Row, cfg Config) (Result, error) {
	if cfg.Policy == nil {
		return Result{}, errors.New("sim: no policy")
	}
	if err := checkSpan(rows); err != nil {
		return Result{}, err
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Policy.Name()
	}
	if cfg.PrewarmFor <= 0 {
		cfg.PrewarmFor = 15 * time.Minute
	}
	if cfg.PrewarmCap <= 0 {
		cfg.PrewarmCap = 10
	}
	if cfg.CreateTime.IsZero() {
		cfg.CreateTime = DefaultCreateTime
	}
	if cfg.RebuildTime.IsZero() {
		cfg.RebuildTime = DefaultRebuildTime
	}
	if cfg.ClaimTime < 0 {
		return Result{}, errors.New("sim: negative claim time")
	}
	if cfg.ClaimTime == 0 {
		cfg.ClaimTime = 50 * time.Millisecond
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 15 * time.Minute
	}
	if cfg.Requests == (Requests{}) {
		cfg.Requests = MeasuredRequests
	}
	r := &run{
		cfg: cfg, rows: rows,
		rng:          rand.New(rand.NewPCG(cfg.Seed, 0x5eed5eed)),
		members:      map[string]*member{},
		provisioning: map[cluster.Flavor]int{},
		waiting:      map[cluster.Flavor][]waiter{},
		busy:         map[string]bool{},
		prewarmed:    map[int]bool{},
		learned:      map[string]bool{},
		hours:        map[cost.Category]time.Duration{},
	}
	start := rows[0].CreatedAt
	for i, row := range rows {
		r.push(event{at: row.CreatedAt, kind: evArrival, row: i})
		start = minTime(start, row.CreatedAt)
		if !row.QueuedAt.IsZero() {
			r.push(event{at: row.QueuedAt, kind: evQueued, row: i})
			start = minTime(start, row.QueuedAt)
		}
	}
	r.now = start.Add(-cfg.Warmup)
	res := Result{Policy: cfg.Name, Start: r.now}
	r.reconcile()
	r.push(event{at: r.now.Add(cfg.Interval), kind: evTick})
	for r.q.Len() > 0 {
		e := heap.Pop(&r.q).(event)
		if e.kind == evTick && r.pending == 0 {
			break // nothing left to happen but the pool idling
		}
		if e.kind != evTick {
			r.pending--
		}
		r.now = e.at
		switch e.kind {
		case evReady:
			r.ready(e.id)
		case evEnd:
			r.end(e.id)
		case evQueued:
			r.queued(e.row)
		case evArrival:
			r.arrive(e.row)
		case evTick:
			r.push(event{at: r.now.Add(cfg.Interval), kind: evTick})
		}
		r.reconcile()
	}
	// The simulation ends with the last event: what is left is deleted
	// then (and billed up to then).
	for _, id := range r.memberIDs() {
		r.destroy(r.members[id])
	}
	res.End = r.now
	res.Creates = len(r.waits)
	if res.Creates > 0 {
		res.WarmRatio = float64(r.warm) / float64(res.Creates)
	}
	slices.Sort(r.waits)
	res.WaitP50S = percentile(r.waits, 0.50).Seconds()
	res.WaitP95S = percentile(r.waits, 0.95).Seconds()
	if n := len(r.waits); n > 0 {
		res.WaitMaxS = r.waits[n-1].Seconds()
	}
	res.BusyServerHours = r.hours[cost.Busy].Hours()
	res.IdleServerHours = r.hours[cost.Idle].Hours()
	res.BuildingServerHours = r.hours[cost.Building].Hours()
	if res.BusyServerHours > 0 {
		res.IdleOverhead = res.IdleServerHours / res.BusyServerHours
	}
	res.PaidServerHours = r.paid.Hours()
	res.CostEUR = math.Round(r.eur*100) / 100
	res.ServersCreated, res.Rebuilds, res.Retired = r.created, r.rebuilds, r.retired
	res.PrewarmHits, res.PrewarmMisses, res.PrewarmCapped = r.hits, r.misses, r.capped
	res.PeakRequestsPerHour = r.peakRequests(res.Start, res.End)
	return res, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// percentile is the nearest-rank percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func (r *run) push(e event) {
	r.seq++
	e.seq = r.seq
	if e.kind != evTick {
		r.pending++
	}
	heap.Push(&r.q, e)
}

func (r *run) flavor(i int) cluster.Flavor {
	if r.rows[i].HasFlavor {
		return r.rows[i].Flavor
	}
	return r.cfg.Flavor
}

func (r *run) memberIDs() []string {
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return r.members[ids[i]].CreatedAt.Before(r.members[ids[j]].CreatedAt) || r.members[ids[i]].CreatedAt.Equal(r.members[ids[j]].CreatedAt) && ids[i] < ids[j]
	})
	return ids
}

// setState moves m to state s, accounting its time in the state it
// leaves.
func (r *run) setState(m *member, s cluster.MemberState) {
	if c, ok := cost.CategoryOf(m.State); ok {
		r.hours[c] += r.now.Sub(m.since)
	}
	m.State, m.since = s, r.now
	if s == cluster.MemberReady {
		m.ReadyAt = r.now
	}
}

// request records n API requests now.
func (r *run) request(n int) {
	if n > 0 {
		r.requests = append(r.requests, reqAt{r.now, n})
	}
}

// serverWork records the requests of a provision or rebuild starting now.
func (r *run) serverWork(n int) {
	r.request(n)
	if r.lastImageList.IsZero() || r.now.Sub(r.lastImageList) >= time.Minute {
		r.lastImageList = r.now
		r.request(r.cfg.Requests.ImageList)
	}
}

// peakRequests is the most requests in any hour of [start, end], the
// inventory reconcile's lists included.
func (r *run) peakRequests(start, end time.Time) int {
	reqs := slices.Clone(r.requests)
	if every := r.cfg.Requests.InventoryEvery; every > 0 {
		for t := start; !t.After(end); t = t.Add(every) {
			reqs = append(reqs, reqAt{t, 1})
		}
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].at.Before(reqs[j].at) })
	peak, sum, lo := 0, 0, 0
	for _, q := range reqs {
		sum += q.n
		for q.at.Sub(reqs[lo].at) >= time.Hour {
			sum -= reqs[lo].n
			lo++
		}
		peak = max(peak, sum)
	}
	return peak
}

// arrive handles row i's create: a ready member is claimed at once, or
// the create waits for the next one.
func (r *run) arrive(i int) {
	f := r.flavor(i)
	if key := r.rows[i].JobKey(); key != "" {
		r.learned[key] = true // the App learns from the clusters the Action created
	}
	if r.prewarmed[i] {
		if _, ok := r.prewarms.Use(prewarmKey(i)); ok {
			r.hits++
		}
	}
	m := r.oldestReady(f)
	r.cfg.Policy.ObserveArrival(f, r.now, m != nil)
	if m == nil {
		r.waiting[f] = append(r.waiting[f], waiter{row: i, at: r.now})
		return
	}
	r.warm++
	r.claim(m, i, r.now)
}

func prewarmKey(row int) string { return "row:" + strconv.Itoa(row) }

// queued handles row i's job being queued: a job that asked for a cluster
// before is pre-warmed.
func (r *run) queued(i int) {
	key := r.rows[i].JobKey()
	if !r.cfg.Prewarm || key == "" || !r.learned[key] {
		return
	}
	extra, expired := r.prewarms.Extra(r.now)
	r.misses += len(expired)
	under := 0
	for _, n := range extra {
		under += n
	}
	if under >= r.cfg.PrewarmCap {
		r.capped++
		return
	}
	if r.prewarms.Add(prewarmKey(i), r.flavor(i), r.now.Add(r.cfg.PrewarmFor)) {
		r.prewarmed[i] = true
	}
}

// oldestReady is the member a claim takes: the ready one of flavor f
// ready the longest (sqlite's ClaimMember).
func (r *run) oldestReady(f cluster.Flavor) *member {
	var best *member
	for _, id := range r.memberIDs() {
		m := r.members[id]
		if m.State != cluster.MemberReady || m.Flavor != f {
			continue
		}
		if best == nil || m.ReadyAt.Before(best.ReadyAt) {
			best = m
		}
	}
	return best
}

// claim gives m to row i's create, which arrived at arrived.
func (r *run) claim(m *member, i int, arrived time.Time) {
	r.setState(m, cluster.MemberClaimed)
	done := r.now.Add(r.cfg.ClaimTime)
	r.waits = append(r.waits, done.Sub(arrived))
	r.push(event{at: done.Add(r.rows[i].Lifetime), kind: evEnd, id: m.ID})
}

// ready handles a member whose provision or rebuild finished.
func (r *run) ready(id string) {
	m := r.members[id]
	r.running--
	if !m.rebuild {
		r.provisioning[m.Flavor]--
	}
	delete(r.busy, id)
	r.setState(m, cluster.MemberReady)
	r.cfg.Policy.ObserveReady(m.Flavor, r.now.Sub(m.workStart), m.rebuild)
	if ws := r.waiting[m.Flavor]; len(ws) > 0 {
		w := ws[0]
		r.waiting[m.Flavor] = ws[1:]
		r.claim(m, w.row, w.at)
	}
	r.startWork()
}

// end releases the member of a cluster whose lifetime ended: it is dirty
// until the pool releases it.
func (r *run) end(id string) {
	m := r.members[id]
	r.setState(m, cluster.MemberDirty)
	m.workStart = r.now
}

// destroy deletes m's server, billing every started hour.
func (r *run) destroy(m *member) {
	r.setState(m, cluster.MemberDeleted)
	delete(r.members, m.ID)
	paidEnd := cost.PaidHourEnd(m.CreatedAt, r.now)
	hours := paidEnd.Sub(m.CreatedAt)
	r.paid += hours
	// The rest of the paid hour is paid and unused: idle, as the server's
	// accounting (sqlite PoolUsage) counts it.
	r.hours[cost.Idle] += paidEnd.Sub(r.now)
	if p, ok := r.cfg.Model.HourlyPrice(m.Flavor); ok {
		r.eur += p * hours.Hours()
	}
	r.request(r.cfg.Requests.Destroy)
}

// reconcile is Pool.Reconcile on simulated time: released members are
// queued for release, the policy's targets (and the pre-warms) are
// planned with pool.Plan, surplus members retired as Plan says.
func (r *run) reconcile() {
	var live []cluster.Member
	for _, id := range r.memberIDs() {
		m := r.members[id]
		live = append(live, m.Member)
		if m.State == cluster.MemberDirty && !r.busy[id] {
			r.busy[id] = true
			r.work = append(r.work, job{flavor: m.Flavor, member: id})
		}
	}
	targets := r.targets()
	r.lastTargets = targets
	plan := pool.Plan(r.planInput(live))
	for _, f := range sortedFlavors(plan.Provision) {
		for range plan.Provision[f] {
			r.provisioning[f]++
			r.work = append(r.work, job{flavor: f})
		}
	}
	for _, ret := range plan.Retire {
		if sm, ok := r.members[ret.Member.ID]; ok && sm.State == cluster.MemberReady {
			r.retired++
			r.destroy(sm)
		}
	}
	r.startWork()
}

func sortedFlavors(m map[cluster.Flavor]int) []cluster.Flavor {
	fs := make([]cluster.Flavor, 0, len(m))
	for f := range m {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].String() < fs[j].String() })
	return fs
}

// startWork starts queued work while fewer than Parallel run.
func (r *run) startWork() {
	for r.running < r.cfg.Parallel && len(r.work) > 0 {
		j := r.work[0]
		r.work = r.work[1:]
		if j.member == "" {
			r.provision(j.flavor)
			continue
		}
		r.release(r.members[j.member])
	}
}

// provision creates a member of flavor f: its server is billed from now.
func (r *run) provision(f cluster.Flavor) {
	r.nextID++
	m := &member{Member: cluster.Member{ID: fmt.Sprintf("s-%06d", r.nextID), Flavor: f, State: cluster.MemberCreating, CreatedAt: r.now}, since: r.now, workStart: r.now}
	r.members[m.ID] = m
	r.created++
	r.running++
	r.serverWork(r.cfg.Requests.Provision)
	r.push(event{at: r.now.Add(r.cfg.CreateTime.Sample(r.rng)), kind: evReady, id: m.ID})
}

// planInput is what pool.Plan and pool.ReleaseAction decide from, as
// Pool.planInput gives it: the live members, the provisions under way, the
// creates waiting and the last targets.
func (r *run) planInput(live []cluster.Member) pool.PlanInput {
	waiting := map[cluster.Flavor]int{}
	for f, ws := range r.waiting {
		if len(ws) > 0 {
			waiting[f] = len(ws)
		}
	}
	return pool.PlanInput{
		Now: r.now, Members: live, Provisioning: r.provisioning, Waiting: waiting,
		Targets: r.lastTargets, MaxPerFlavor: r.cfg.MaxPerFlavor, ScaleDown: r.cfg.Policy.ScaleDown(),
		PaidUntil: func(m cluster.Member, now time.Time) (time.Time, bool) {
			if _, billed := r.cfg.Model.HourlyPrice(m.Flavor); !billed {
				return time.Time{}, false
			}
			return cost.PaidHourEnd(m.CreatedAt, now), true
		},
		RetireWithin: r.cfg.RetireWithin,
	}
}

// release is Pool.release: pool.ReleaseAction decides whether the member
// is rebuilt or destroyed, from the targets of the last reconcile.
func (r *run) release(m *member) {
	var live []cluster.Member
	for _, id := range r.memberIDs() {
		live = append(live, r.members[id].Member)
	}
	if !pool.ReleaseAction(r.planInput(live), m.Member) {
		delete(r.busy, m.ID)
		r.destroy(m)
		return
	}
	r.running++
	r.rebuilds++
	m.rebuild = true
	r.setState(m, cluster.MemberRebuilding)
	r.serverWork(r.cfg.Requests.Rebuild)
	r.push(event{at: r.now.Add(r.cfg.RebuildTime.Sample(r.rng)), kind: evReady, id: m.ID})
}

// targets are the policy's ready targets at now, raised by the pre-warms
// under way; pre-warms that expired count as misses.
func (r *run) targets() map[cluster.Flavor]int {
	targets := map[cluster.Flavor]int{}
	for f, t := range r.cfg.Policy.Targets(r.now) {
		targets[f] = t.Ready
	}
	if r.cfg.Prewarm {
		extra, expired := r.prewarms.Extra(r.now)
		for f, n := range extra {
			targets[f] += n
		}
		r.misses += len(expired)
	}
	return targets
}
