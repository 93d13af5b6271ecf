package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/githubapp/jobs"
	"github.com/smek/action/internal/sqlite"
)

// The queued fixture: installation 3456996, repository 186853002
// (Codertocat/Hello-World), job 289782451 "update" of run 2202229078 of
// workflow "CodeQL".
const (
	pwInstallation = 3456996
	pwRepository   = 186853002
	pwJob          = 289782451
	pwRun          = 2202229078
	otherInst      = 77
)

var (
	pwFlavor   = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	privileged = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
)

// fakePool records the pre-warms as the pool would hold them.
type fakePool struct {
	mu    sync.Mutex
	open  map[string]cluster.Flavor
	until map[string]time.Time
	calls []string
}

func newFakePool() *fakePool {
	return &fakePool{open: map[string]cluster.Flavor{}, until: map[string]time.Time{}}
}

func (p *fakePool) Prewarm(key string, f cluster.Flavor, until time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "prewarm "+key)
	if _, ok := p.open[key]; ok {
		return false
	}
	p.open[key], p.until[key] = f, until
	return true
}

func (p *fakePool) PrewarmUsed(key string) bool { return p.end("used " + key) }
func (p *fakePool) PrewarmEnd(key string) bool  { return p.end("end " + key) }

func (p *fakePool) end(call string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
	key := call[strings.Index(call, " ")+1:]
	_, ok := p.open[key]
	delete(p.open, key)
	return ok
}

func (p *fakePool) state() (open map[string]cluster.Flavor, calls []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps(p.open), slices.Clone(p.calls)
}

func maps(m map[string]cluster.Flavor) map[string]cluster.Flavor {
	out := map[string]cluster.Flavor{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pwWorld is an App with pre-warming on a real SQLite file, a fake pool
// and a fake clock. acme is linked to the fixture's installation (max 5
// clusters); umbrella to installation 77.
type pwWorld struct {
	t       *testing.T
	db      *sqlite.DB
	path    string
	clock   *clockwork.FakeClock
	pool    *fakePool
	pw      *githubapp.Prewarmer
	app     *app
	acme    cluster.Account
	umb     cluster.Account
	learned chan error
	seq     int64
}

func newPWWorld(t *testing.T, cap int) *pwWorld {
	w := &pwWorld{t: t, path: filepath.Join(t.TempDir(), "smek.db"), pool: newFakePool(),
		clock: clockwork.NewFakeClockAt(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))}
	w.open()
	ctx := t.Context()
	five, one := 5, 1
	var err error
	if _, err = w.db.EnsureAccount(ctx, "acme", sqlite.AccountLimits{MaxClusters: &five}); err != nil {
		t.Fatal(err)
	}
	if w.acme, err = w.db.LinkInstallation(ctx, "acme", pwInstallation); err != nil {
		t.Fatal(err)
	}
	if _, err = w.db.EnsureAccount(ctx, "umbrella", sqlite.AccountLimits{MaxClusters: &one}); err != nil {
		t.Fatal(err)
	}
	if w.umb, err = w.db.LinkInstallation(ctx, "umbrella", otherInst); err != nil {
		t.Fatal(err)
	}
	w.start(cap)
	return w
}

func (w *pwWorld) open() {
	db, err := sqlite.Open(w.t.Context(), w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	db.Clock = w.clock
	w.db = db
	w.t.Cleanup(func() { db.Close() })
}

// start starts the Prewarmer and the App on w.db (again: a restart).
func (w *pwWorld) start(cap int) {
	t := w.t
	fake := clienttest.NewServer("smek_service")
	t.Cleanup(fake.Close)
	clusters, err := githubapp.NewAPIClusters(fake.URL, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.learned = make(chan error, 16)
	w.pw, err = githubapp.NewPrewarmer(githubapp.PrewarmConfig{Pool: w.pool, Store: w.db, Cap: cap, Clock: w.clock,
		Offered:   func(f cluster.Flavor) bool { return f.K8sVersion != "1.30.0" },
		OnLearned: func(_ cluster.Cluster, err error) { w.learned <- err }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.app = startApp(t, githubapp.Config{Clusters: clusters, Deliveries: w.db, Clock: w.clock, Prewarm: w.pw})
}

// queued delivers the queued fixture as job id of run, by installation.
func (w *pwWorld) queued(id, run int64, installation int64) {
	w.t.Helper()
	body := variant(w.t, "workflow_job.queued.json", func(m map[string]any) {
		j := m["workflow_job"].(map[string]any)
		j["id"], j["run_id"] = id, run
		m["installation"].(map[string]any)["id"] = installation
	})
	w.app.deliver(w.t, "workflow_job", body)
}

// completed delivers the job's completion without a runner (cancelled
// while queued) by the fixture's installation.
func (w *pwWorld) completed(id, run int64) {
	w.t.Helper()
	body := variant(w.t, "workflow_job.completed.json", func(m map[string]any) {
		j := m["workflow_job"].(map[string]any)
		j["id"], j["run_id"], j["runner_name"] = id, run, nil
		m["installation"] = map[string]any{"id": pwInstallation}
	})
	w.app.deliver(w.t, "workflow_job", body)
}

// create tells the Prewarmer of a claim by account a for job id of run
// and waits until it learned from it.
func (w *pwWorld) create(a cluster.Account, f cluster.Flavor, id, run int64) {
	w.t.Helper()
	w.seq++
	w.pw.Claimed(cluster.Cluster{ID: cluster.ID(fmt.Sprintf("c-pw%04d", w.seq)),
		AccountID: a.ID, Account: a.Name, Spec: cluster.Spec{K8sVersion: f.K8sVersion, Size: f.Size, Privileged: f.Privileged},
		Run: cluster.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: pwRepository, RunID: run, RunAttempt: 1, JobID: id}})
	select {
	case err := <-w.learned:
		if err != nil {
			w.t.Fatalf("learn from the create of job %d: %v", id, err)
		}
	case <-time.After(time.Minute):
		w.t.Fatal("the create was not learned from")
	}
}

func (w *pwWorld) job(id int64) jobs.Job {
	w.t.Helper()
	j, err := w.db.QueuedJob(w.t.Context(), id)
	if err != nil {
		w.t.Fatalf("queued job %d: %v", id, err)
	}
	return j
}

func key(id int64) string { return jobs.PrewarmKey(id) }

// A job that made a cluster before is pre-warmed when it is queued again,
// and its create uses the pre-warm (a hit).
func TestPrewarmLearnsFromACreateAndHitsOnTheNextRun(t *testing.T) {
	w := newPWWorld(t, 10)
	// First run: nothing learned yet, so nothing pre-warmed; the job is
	// recorded.
	w.queued(pwJob, pwRun, pwInstallation)
	if open, _ := w.pool.state(); len(open) != 0 {
		t.Fatalf("pre-warms for a job never seen: %v", open)
	}
	if j := w.job(pwJob); j.State != jobs.Queued || j.Job != "update" || j.Workflow != "CodeQL" || !j.Until.IsZero() {
		t.Fatalf("recorded job = %+v; want queued, update of CodeQL, no pre-warm", j)
	}
	w.create(w.acme, pwFlavor, pwJob, pwRun)
	l, ok, err := w.db.LearnedFlavor(t.Context(), jobs.Key{InstallationID: pwInstallation, RepositoryID: pwRepository, Workflow: "CodeQL", Job: "update"})
	if err != nil || !ok || l.Flavor != pwFlavor || l.AccountID != w.acme.ID {
		t.Fatalf("learned = %+v, %v, %v; want %s by acme", l, ok, err, pwFlavor)
	}
	if j := w.job(pwJob); j.State != jobs.Created {
		t.Fatalf("job after its create: %s, want created", j.State)
	}

	// Next run: the same job is queued with a new id and is pre-warmed.
	const next, nextRun = pwJob + 1000, pwRun + 1
	w.queued(next, nextRun, pwInstallation)
	open, _ := w.pool.state()
	if open[key(next)] != pwFlavor || len(open) != 1 {
		t.Fatalf("pre-warms after the queued job = %v; want %s for %s", open, pwFlavor, key(next))
	}
	if want := w.clock.Now().Add(githubapp.DefaultPrewarmTTL); !w.pool.until[key(next)].Equal(want) {
		t.Fatalf("pre-warm until %s, want now + 15m = %s", w.pool.until[key(next)], want)
	}
	// A redelivery of the queued job is a duplicate: nothing more.
	body := variant(t, "workflow_job.queued.json", func(m map[string]any) {
		j := m["workflow_job"].(map[string]any)
		j["id"], j["run_id"] = next, nextRun
	})
	if status, answer := w.app.send(t, "workflow_job", "", body); status != http.StatusOK || !strings.Contains(answer, "duplicate") {
		t.Fatalf("redelivery: %d %s; want 200 duplicate", status, answer)
	}
	if open, _ := w.pool.state(); len(open) != 1 {
		t.Fatalf("pre-warms after a redelivery = %v; want still one", open)
	}
	w.create(w.acme, pwFlavor, next, nextRun)
	open, calls := w.pool.state()
	if len(open) != 0 || !slices.Contains(calls, "used "+key(next)) {
		t.Fatalf("after the create: open %v, calls %v; want the pre-warm used", open, calls)
	}
	// Its completion afterwards is no miss.
	w.completed(next, nextRun)
	if _, calls := w.pool.state(); slices.Contains(calls, "end "+key(next)) {
		t.Fatalf("a job that made its cluster ended its pre-warm as a miss: %v", calls)
	}
}

// A pre-warmed job that completes without a create releases its pre-warm
// (a miss) at once; one that outlives the TTL is no longer under way.
func TestPrewarmMissOnCompletionAndExpiryOnTheClock(t *testing.T) {
	w := newPWWorld(t, 10)
	w.queued(pwJob, pwRun, pwInstallation)
	w.create(w.acme, pwFlavor, pwJob, pwRun)

	w.queued(1, 10, pwInstallation)
	w.completed(1, 10)
	open, calls := w.pool.state()
	if len(open) != 0 || !slices.Contains(calls, "end "+key(1)) {
		t.Fatalf("after the completion: open %v, calls %v; want the pre-warm ended", open, calls)
	}
	if j := w.job(1); j.State != jobs.Completed {
		t.Fatalf("job 1: %s, want completed", j.State)
	}

	w.queued(2, 20, pwInstallation)
	until := w.job(2).Until
	w.clock.Advance(githubapp.DefaultPrewarmTTL - time.Second)
	if got, err := w.db.OpenPrewarms(t.Context(), w.clock.Now()); err != nil || len(got) != 1 {
		t.Fatalf("open pre-warms a second before the TTL = %v, %v; want job 2", got, err)
	}
	w.clock.Advance(time.Second)
	if !w.clock.Now().Equal(until) {
		t.Fatalf("clock %s, want the expiry %s", w.clock.Now(), until)
	}
	if got, err := w.db.OpenPrewarms(t.Context(), w.clock.Now()); err != nil || len(got) != 0 {
		t.Fatalf("open pre-warms at the TTL = %v, %v; want none", got, err)
	}
	// Completed after its expiry: nothing left to end in the pool.
	w.completed(2, 20)
	if _, calls := w.pool.state(); slices.Contains(calls, "end "+key(2)) {
		t.Fatalf("an expired pre-warm was ended again: %v", calls)
	}
}

// An installation holds at most its cap of pre-warms, and no more than
// its account's max-clusters.
func TestPrewarmCap(t *testing.T) {
	w := newPWWorld(t, 2)
	w.queued(pwJob, pwRun, pwInstallation)
	w.create(w.acme, pwFlavor, pwJob, pwRun)
	for id := int64(1); id <= 3; id++ {
		w.queued(id, 100+id, pwInstallation)
	}
	open, _ := w.pool.state()
	if len(open) != 2 || open[key(3)] != (cluster.Flavor{}) {
		t.Fatalf("pre-warms = %v; want jobs 1 and 2 only (cap 2)", open)
	}
	// One ends: the next queued job gets its place.
	w.completed(1, 101)
	w.queued(4, 104, pwInstallation)
	if open, _ := w.pool.state(); len(open) != 2 || open[key(4)] != pwFlavor {
		t.Fatalf("pre-warms after one ended = %v; want jobs 2 and 4", open)
	}
}

// umbrella may have one cluster: it may hold one pre-warm whatever the cap.
func TestPrewarmCapIsBoundedByMaxClusters(t *testing.T) {
	w := newPWWorld(t, 10)
	w.queued(pwJob, pwRun, otherInst)
	w.create(w.umb, pwFlavor, pwJob, pwRun)
	w.queued(1, 101, otherInst)
	w.queued(2, 102, otherInst)
	if open, _ := w.pool.state(); len(open) != 1 || open[key(1)] != pwFlavor {
		t.Fatalf("pre-warms = %v; want job 1 only (umbrella's max-clusters is 1)", open)
	}
}

// Deliveries of installations without an account are not even recorded,
// and a queued job never learned is recorded without a pre-warm.
func TestPrewarmIgnoresUnknownInstallationsAndJobs(t *testing.T) {
	w := newPWWorld(t, 10)
	w.queued(1, 101, 424242)
	if _, err := w.db.QueuedJob(t.Context(), 1); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Fatalf("job of an unlinked installation: %v; want not recorded", err)
	}
	w.queued(2, 102, pwInstallation)
	if j := w.job(2); !j.Until.IsZero() {
		t.Fatalf("job never learned got a pre-warm: %+v", j)
	}
	// A create of a job never queued teaches nothing and uses nothing.
	w.create(w.acme, pwFlavor, 999, 1999)
	if open, calls := w.pool.state(); len(open) != 0 || len(calls) != 0 {
		t.Fatalf("pool after unknown jobs: open %v, calls %v; want untouched", open, calls)
	}
}

// A restart loses the pool's pre-warms: the recorded ones are raised
// again until their expiry, not longer.
func TestPrewarmRestartKeepsQueuedJobs(t *testing.T) {
	w := newPWWorld(t, 10)
	w.queued(pwJob, pwRun, pwInstallation)
	w.create(w.acme, pwFlavor, pwJob, pwRun)
	w.queued(1, 101, pwInstallation)
	until := w.job(1).Until
	w.app.wait()
	w.db.Close()

	w.pool = newFakePool() // the pool of the new process is empty
	w.clock.Advance(time.Minute)
	w.open()
	w.start(10)
	open, _ := w.pool.state()
	if open[key(1)] != pwFlavor || !w.pool.until[key(1)].Equal(until) {
		t.Fatalf("pre-warms after the restart = %v until %s; want job 1 until %s", open, w.pool.until[key(1)], until)
	}
	// And its create after the restart is a hit.
	w.create(w.acme, pwFlavor, 1, 101)
	if open, calls := w.pool.state(); len(open) != 0 || !slices.Contains(calls, "used "+key(1)) {
		t.Fatalf("after the create: open %v, calls %v; want the pre-warm used", open, calls)
	}
}

// A tenant cannot use, teach or steer another tenant's pre-warms: not by
// naming the other's job id in a create, not with a flavor learned under
// another account, and not with a privileged flavor no credential of its
// account may have any more.
func TestPrewarmCannotBeAbusedAcrossTenants(t *testing.T) {
	w := newPWWorld(t, 10)
	ctx := t.Context()
	w.queued(pwJob, pwRun, pwInstallation)
	w.create(w.acme, pwFlavor, pwJob, pwRun)
	w.queued(1, 101, pwInstallation)

	// umbrella names acme's queued job 1 in its create.
	w.create(w.umb, privileged, 1, 101)
	open, calls := w.pool.state()
	if open[key(1)] != pwFlavor || slices.Contains(calls, "used "+key(1)) {
		t.Fatalf("umbrella's create touched acme's pre-warm: open %v, calls %v", open, calls)
	}
	l, _, err := w.db.LearnedFlavor(ctx, jobs.Key{InstallationID: pwInstallation, RepositoryID: pwRepository, Workflow: "CodeQL", Job: "update"})
	if err != nil || l.Flavor != pwFlavor || l.AccountID != w.acme.ID {
		t.Fatalf("learned after umbrella's create = %+v, %v; want acme's %s", l, err, pwFlavor)
	}
	if j := w.job(1); j.State != jobs.Queued {
		t.Fatalf("acme's job after umbrella's create: %s, want still queued", j.State)
	}

	// acme learns a privileged flavor (its token allowed it then), and
	// loses the token: the flavor is not pre-warmed any more.
	if err := w.db.LearnJobFlavor(ctx, jobs.Learned{Key: jobs.Key{InstallationID: pwInstallation, RepositoryID: pwRepository,
		Workflow: "CodeQL", Job: "update"}, Flavor: privileged, AccountID: w.acme.ID, LearnedAt: w.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	w.queued(2, 102, pwInstallation)
	if open, _ := w.pool.state(); open[key(2)] != (cluster.Flavor{}) {
		t.Fatalf("privileged pre-warm for an account without a privileged credential: %v", open)
	}
	if _, err := w.db.CreateToken(ctx, sqlite.NewToken{AccountID: w.acme.ID, Prefix: "smek_priv", Hash: []byte("h"), AllowPrivileged: true}); err != nil {
		t.Fatal(err)
	}
	w.queued(3, 103, pwInstallation)
	if open, _ := w.pool.state(); open[key(3)] != privileged {
		t.Fatalf("privileged pre-warm with a privileged credential: %v; want one for job 3", open)
	}

	// A flavor whose version is not offered any more is not pre-warmed.
	if err := w.db.LearnJobFlavor(ctx, jobs.Learned{Key: jobs.Key{InstallationID: pwInstallation, RepositoryID: pwRepository,
		Workflow: "CodeQL", Job: "update"}, Flavor: cluster.Flavor{K8sVersion: "1.30.0", Size: cluster.SizeMid}, AccountID: w.acme.ID,
		LearnedAt: w.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	w.queued(5, 105, pwInstallation)
	if open, _ := w.pool.state(); open[key(5)] != (cluster.Flavor{}) {
		t.Fatalf("pre-warm of a version not offered: %v", open)
	}

	// The installation is linked to umbrella now: what acme taught is
	// not pre-warmed for umbrella.
	if _, err := w.db.UnlinkInstallation(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.UnlinkInstallation(ctx, "umbrella"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.LinkInstallation(ctx, "umbrella", pwInstallation); err != nil {
		t.Fatal(err)
	}
	w.queued(4, 104, pwInstallation)
	if open, _ := w.pool.state(); open[key(4)] != (cluster.Flavor{}) {
		t.Fatalf("pre-warm from a flavor another account taught: %v", open)
	}
}

// Without pre-warming the App ignores queued jobs, as before.
func TestQueuedJobIgnoredWithoutPrewarm(t *testing.T) {
	fake := clienttest.NewServer("smek_service")
	defer fake.Close()
	clusters, err := githubapp.NewAPIClusters(fake.URL, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startApp(t, githubapp.Config{Clusters: clusters, Deliveries: db})
	status, answer := a.send(t, "workflow_job", "", fixture(t, "workflow_job.queued.json"))
	if status != http.StatusOK || !strings.Contains(answer, `"ignored"`) {
		t.Fatalf("queued job without pre-warming: %d %s; want 200 ignored", status, answer)
	}
}
