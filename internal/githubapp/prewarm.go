package githubapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp/jobs"
	"github.com/smek/action/internal/logkey"
)

// Pre-warming: a workflow_job "queued" delivery for a job that made a
// cluster before raises the warm pool's target for that job's flavor
// (the flavor its last create asked for) until the job's create comes (a
// hit), the job completes without one (a miss) or the TTL passes (a miss).
// Only the embedded App pre-warms: it needs the pool.
//
// What is learned is keyed by the delivery's installation, repository id,
// workflow_name and job name. A create teaches it through the queued job
// the create names by its job id (the Action sends job.check_run_id, which
// is workflow_job.id), or, without one, through the one job of its run
// still queued. The job must belong to the installation linked to the
// creating account, in the create's repository and run: a tenant cannot
// teach, use or end another tenant's pre-warms.

// PrewarmPool is the warm pool as pre-warming uses it (*pool.Pool).
type PrewarmPool interface {
	// Prewarm raises f's target by one until the create expected under
	// key arrives or until passes; false when key is under way already.
	Prewarm(key string, f cluster.Flavor, until time.Time) bool
	// PrewarmUsed ends key's pre-warm: its create came (a hit).
	PrewarmUsed(key string) bool
	// PrewarmEnd ends key's pre-warm before its expiry: its job completed
	// without a create (a miss).
	PrewarmEnd(key string) bool
}

// PrewarmStore keeps the queued jobs and what each job learned
// (*sqlite.DB).
type PrewarmStore interface {
	AccountByInstallation(ctx context.Context, installationID int64) (cluster.Account, error)
	AccountMayPrivileged(ctx context.Context, accountID int64) (bool, error)
	RecordQueuedJob(ctx context.Context, j jobs.Job) (rec jobs.Job, isNew bool, err error)
	QueuedJob(ctx context.Context, id int64) (jobs.Job, error)
	JobsOfRun(ctx context.Context, repositoryID, runID int64) ([]jobs.Job, error)
	OpenPrewarms(ctx context.Context, now time.Time) ([]jobs.Job, error)
	StartJobPrewarm(ctx context.Context, id int64, f cluster.Flavor, now, until time.Time, limit int) (bool, error)
	EndQueuedJob(ctx context.Context, id int64, state jobs.State) (before jobs.Job, ended bool, err error)
	PruneQueuedJobs(ctx context.Context, before time.Time) (int64, error)
	LearnJobFlavor(ctx context.Context, l jobs.Learned) error
	LearnedFlavor(ctx context.Context, k jobs.Key) (jobs.Learned, bool, error)
}

// PrewarmMetrics counts pre-warm outcomes: started, hit, miss, expired,
// capped, refused (a flavor the account may not use), learned.
type PrewarmMetrics interface {
	Prewarm(outcome string)
}

// Defaults of PrewarmConfig.
const (
	DefaultPrewarmTTL = 15 * time.Minute
	DefaultPrewarmCap = 10
	// prewarmKeep is how long queued jobs are kept: a create that comes
	// later teaches nothing. GitHub gives up on a job queued for 24 h.
	prewarmKeep = 48 * time.Hour
	// learnQueue bounds the creates waiting to teach their job's flavor.
	learnQueue = 256
)

// PrewarmConfig configures a Prewarmer. Pool and Store are required.
type PrewarmConfig struct {
	Pool  PrewarmPool
	Store PrewarmStore
	// TTL is how long a pre-warm waits for its create (default
	// DefaultPrewarmTTL).
	TTL time.Duration
	// Cap bounds the pre-warms an installation holds at once (default
	// DefaultPrewarmCap); an account's max-clusters bounds it too.
	Cap     int
	Clock   clockwork.Clock
	Logger  *slog.Logger
	Metrics PrewarmMetrics
	// Offered, when set, tells the flavors the pool can make now: a
	// learned flavor it cannot (a version no longer offered) is not
	// pre-warmed. Nil: every flavor.
	Offered func(cluster.Flavor) bool
	// OnLearned, when set, is called after Run has handled each create
	// that Claimed saw (err: what went wrong). Tests wait on it.
	OnLearned func(c cluster.Cluster, err error)
}

// Prewarmer pre-warms the pool for queued workflow jobs and learns from
// creates. Give it to the App (Config.Prewarm) and call Claimed for every
// create's claim.
type Prewarmer struct {
	pool    PrewarmPool
	store   PrewarmStore
	ttl     time.Duration
	cap     int
	clock   clockwork.Clock
	log     *slog.Logger
	metrics PrewarmMetrics
	learn   chan cluster.Cluster
	learned func(cluster.Cluster, error)
	offered func(cluster.Flavor) bool

	mu sync.Mutex
	// open are the pre-warms under way by key, with what a create must
	// match to use one.
	open       map[string]openPrewarm
	lastPruned time.Time
}

type openPrewarm struct {
	accountID, repositoryID, runID int64
	until                          time.Time
}

// NewPrewarmer returns a Prewarmer.
func NewPrewarmer(cfg PrewarmConfig) (*Prewarmer, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("pre-warm: no pool")
	case cfg.Store == nil:
		return nil, errors.New("pre-warm: no store")
	case cfg.TTL < 0:
		return nil, fmt.Errorf("pre-warm: the TTL %s is negative", cfg.TTL)
	case cfg.Cap < 0:
		return nil, fmt.Errorf("pre-warm: the cap %d is negative", cfg.Cap)
	}
	p := &Prewarmer{pool: cfg.Pool, store: cfg.Store, ttl: cfg.TTL, cap: orDefault(cfg.Cap, DefaultPrewarmCap),
		clock: cfg.Clock, log: cfg.Logger, metrics: cfg.Metrics, learn: make(chan cluster.Cluster, learnQueue),
		learned: cfg.OnLearned, offered: cfg.Offered, open: map[string]openPrewarm{}}
	if p.ttl == 0 {
		p.ttl = DefaultPrewarmTTL
	}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With(logkey.Component, "prewarm")
	if p.metrics == nil {
		p.metrics = nopPrewarmMetrics{}
	}
	return p, nil
}

type nopPrewarmMetrics struct{}

func (nopPrewarmMetrics) Prewarm(string) {}

// Resume raises again the pre-warms the store has under way (a restart
// lost the pool's), for the accounts their installations are linked to.
// Call it once at start.
func (p *Prewarmer) Resume(ctx context.Context) (int, error) {
	open, err := p.store.OpenPrewarms(ctx, p.clock.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range open {
		a, err := p.store.AccountByInstallation(ctx, j.InstallationID)
		if cluster.ErrorCode(err) == cluster.ENOTFOUND {
			continue
		}
		if err != nil {
			return n, err
		}
		p.raiseFor(j, a.ID)
		n++
	}
	if n > 0 {
		p.log.Info("pre-warms resumed", logkey.Count, n)
	}
	return n, nil
}

// Run lets the creates that Claimed saw teach their jobs' flavors, until
// ctx ends.
func (p *Prewarmer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-p.learn:
			err := p.learnFrom(ctx, c)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("learn the flavor of a job", logkey.Cluster, c.ID, logkey.Err, err)
			}
			if p.learned != nil {
				p.learned(c, err)
			}
		}
	}
}

// Claimed is told of every create's claim (c has its id and run
// metadata). A pre-warm under way for the job the create names is used
// (a hit) when the create's account and repository are the job's; the
// create then teaches the job's flavor in Run. It does not block.
func (p *Prewarmer) Claimed(c cluster.Cluster) {
	if c.Run.JobID == 0 && c.Run.RunID == 0 {
		return
	}
	if c.Run.JobID != 0 {
		p.use(c, c.Run.JobID)
	}
	select {
	case p.learn <- c:
	default:
		p.log.Warn("too many creates to learn from: one skipped", logkey.Cluster, c.ID)
	}
}

// use ends job id's pre-warm as a hit when c may use it.
func (p *Prewarmer) use(c cluster.Cluster, id int64) bool {
	key := jobs.PrewarmKey(id)
	p.mu.Lock()
	o, ok := p.open[key]
	match := ok && o.accountID == c.AccountID &&
		(c.Run.RepositoryID == 0 || c.Run.RepositoryID == o.repositoryID) && (c.Run.RunID == 0 || c.Run.RunID == o.runID)
	if match {
		delete(p.open, key)
	}
	p.mu.Unlock()
	switch {
	case ok && !match:
		p.log.Warn("a create named a pre-warmed job of another account, repository or run: not used",
			logkey.Cluster, c.ID, logkey.Account, c.Account, "job_id", id)
		return false
	case !ok:
		return false
	}
	if p.pool.PrewarmUsed(key) {
		p.metrics.Prewarm("hit")
		p.log.Info("pre-warm hit", logkey.Cluster, c.ID, "job_id", id)
	}
	return true
}

// learnFrom records the flavor c asked for as its job's, and ends the
// job's queued state (using its pre-warm when Claimed could not tell the
// job).
func (p *Prewarmer) learnFrom(ctx context.Context, c cluster.Cluster) error {
	j, ok, err := p.jobOf(ctx, c)
	if err != nil || !ok {
		return err
	}
	a, err := p.store.AccountByInstallation(ctx, j.InstallationID)
	if cluster.ErrorCode(err) == cluster.ENOTFOUND || err == nil && a.ID != c.AccountID {
		p.log.Warn("a create named a job of an installation not linked to its account: nothing learned",
			logkey.Cluster, c.ID, logkey.Account, c.Account, logkey.Installation, j.InstallationID, "job_id", j.ID)
		return nil
	}
	if err != nil {
		return err
	}
	err = p.store.LearnJobFlavor(ctx, jobs.Learned{Key: j.Key, Flavor: c.Spec.Flavor(), AccountID: a.ID, LearnedAt: p.clock.Now()})
	if err != nil {
		return err
	}
	p.metrics.Prewarm("learned")
	p.log.Debug("job flavor learned", logkey.Repository, j.Repository, "workflow", j.Workflow, "job", j.Job, logkey.Flavor, c.Spec.Flavor().String())
	before, ended, err := p.store.EndQueuedJob(ctx, j.ID, jobs.Created)
	if err != nil || !ended || before.Until.IsZero() {
		return err
	}
	if c.Run.JobID == 0 { // Claimed could not tell the job
		p.use(c, j.ID)
	}
	return nil
}

// jobOf finds the queued job c was made in: the one it names by id, else
// the one job of its run still queued. It must be in c's repository and
// run when c says them.
func (p *Prewarmer) jobOf(ctx context.Context, c cluster.Cluster) (jobs.Job, bool, error) {
	r := c.Run
	if r.JobID != 0 {
		j, err := p.store.QueuedJob(ctx, r.JobID)
		if cluster.ErrorCode(err) == cluster.ENOTFOUND {
			return j, false, nil
		}
		if err != nil {
			return j, false, err
		}
		ok := (r.RepositoryID == 0 || r.RepositoryID == j.RepositoryID) && (r.RunID == 0 || r.RunID == j.RunID)
		if !ok {
			p.log.Warn("a create named a job of another repository or run: nothing learned", logkey.Cluster, c.ID, "job_id", r.JobID)
		}
		return j, ok, nil
	}
	if r.RepositoryID == 0 || r.RunID == 0 {
		return jobs.Job{}, false, nil
	}
	list, err := p.store.JobsOfRun(ctx, r.RepositoryID, r.RunID)
	if err != nil {
		return jobs.Job{}, false, err
	}
	var found []jobs.Job
	for _, j := range list {
		if j.State == jobs.Queued && (r.RunAttempt == 0 || r.RunAttempt == j.RunAttempt) {
			found = append(found, j)
		}
	}
	if len(found) != 1 {
		return jobs.Job{}, false, nil
	}
	return found[0], true, nil
}

// queued handles a workflow_job "queued" delivery: record the job, and
// pre-warm its learned flavor when the installation's account may have
// it and holds fewer pre-warms than its cap.
func (p *Prewarmer) queued(ctx context.Context, j jobs.Job) error {
	log := p.log.With(logkey.Installation, j.InstallationID, logkey.Repository, j.Repository, "workflow", j.Workflow, "job", j.Job, "job_id", j.ID)
	a, err := p.store.AccountByInstallation(ctx, j.InstallationID)
	if cluster.ErrorCode(err) == cluster.ENOTFOUND {
		log.Debug("queued job of an installation without an account: ignored")
		return nil
	}
	if err != nil {
		return err
	}
	if a.MaxClusters <= 0 {
		log.Debug("queued job of a suspended account: ignored", logkey.Account, a.Name)
		return nil
	}
	p.prune(ctx)
	rec, _, err := p.store.RecordQueuedJob(ctx, j)
	if err != nil {
		return err
	}
	now := p.clock.Now()
	switch {
	case rec.State != jobs.Queued:
		return nil // its create or completion came first
	case !rec.Until.IsZero():
		// A redelivery, maybe to a restarted server: the pre-warm holds.
		if rec.Prewarming(now) {
			p.raiseFor(rec, a.ID)
		}
		return nil
	}
	l, ok, err := p.store.LearnedFlavor(ctx, rec.Key)
	if err != nil || !ok {
		return err
	}
	if l.AccountID != a.ID {
		log.Info("the job's flavor was learned under another account: not pre-warmed", logkey.Account, a.Name)
		return nil
	}
	if p.offered != nil && !p.offered(l.Flavor) {
		p.metrics.Prewarm("refused")
		log.Info("the job's flavor is not offered any more: not pre-warmed", logkey.Flavor, l.Flavor.String())
		return nil
	}
	if l.Flavor.Privileged {
		may, err := p.store.AccountMayPrivileged(ctx, a.ID)
		if err != nil {
			return err
		}
		if !may {
			p.metrics.Prewarm("refused")
			log.Warn("the job's flavor is privileged and no credential of the account may have it any more: not pre-warmed", logkey.Account, a.Name)
			return nil
		}
	}
	limit := min(p.cap, a.MaxClusters)
	until := now.Add(p.ttl)
	started, err := p.store.StartJobPrewarm(ctx, rec.ID, l.Flavor, now, until, limit)
	if err != nil {
		return err
	}
	if !started {
		p.metrics.Prewarm("capped")
		log.Info("pre-warm not started: the installation holds its cap of pre-warms", "cap", limit)
		return nil
	}
	rec.Flavor, rec.Until = l.Flavor, until
	p.raiseFor(rec, a.ID)
	p.metrics.Prewarm("started")
	log.Info("pre-warm started", logkey.Flavor, l.Flavor.String(), "until", until)
	return nil
}

// raiseFor is raise with the account the pre-warm is for.
func (p *Prewarmer) raiseFor(j jobs.Job, accountID int64) {
	key := jobs.PrewarmKey(j.ID)
	p.mu.Lock()
	p.open[key] = openPrewarm{accountID: accountID, repositoryID: j.RepositoryID, runID: j.RunID, until: j.Until}
	p.mu.Unlock()
	p.pool.Prewarm(key, j.Flavor, j.Until)
}

// completed handles a workflow_job "completed" delivery: a job still
// queued made no cluster, and its pre-warm is a miss.
func (p *Prewarmer) completed(ctx context.Context, jobID int64) error {
	before, ended, err := p.store.EndQueuedJob(ctx, jobID, jobs.Completed)
	if cluster.ErrorCode(err) == cluster.ENOTFOUND || err == nil && (!ended || before.Until.IsZero()) {
		return nil
	}
	if err != nil {
		return err
	}
	key := jobs.PrewarmKey(jobID)
	p.mu.Lock()
	delete(p.open, key)
	p.mu.Unlock()
	if !before.Prewarming(p.clock.Now()) {
		p.metrics.Prewarm("expired")
		return nil
	}
	p.metrics.Prewarm("miss")
	p.pool.PrewarmEnd(key)
	p.log.Info("pre-warm miss: the job completed without a create", logkey.Repository, before.Repository, "job", before.Job, "job_id", jobID)
	return nil
}

// prune deletes the queued jobs older than prewarmKeep, at most once an
// hour, and forgets the expired pre-warms.
func (p *Prewarmer) prune(ctx context.Context) {
	now := p.clock.Now()
	p.mu.Lock()
	due := now.Sub(p.lastPruned) >= time.Hour
	if due {
		p.lastPruned = now
	}
	for k, o := range p.open {
		if !now.Before(o.until) {
			delete(p.open, k)
		}
	}
	p.mu.Unlock()
	if !due {
		return
	}
	if n, err := p.store.PruneQueuedJobs(ctx, now.Add(-prewarmKeep)); err != nil {
		p.log.Warn("prune queued jobs", logkey.Err, err)
	} else if n > 0 {
		p.log.Debug("queued jobs pruned", logkey.Count, n)
	}
}

// planPrewarm plans a workflow_job "queued" delivery: record the job and
// pre-warm for it.
func (a *App) planPrewarm(e workflowJobEvent) (func(context.Context) error, string, error) {
	if e.installationID() == 0 {
		return nil, "no installation: nothing to pre-warm", nil
	}
	w := e.WorkflowJob
	switch {
	case e.Repository == nil || e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case w == nil || w.ID <= 0:
		return nil, "", missing("workflow_job.id")
	case w.RunID <= 0:
		return nil, "", missing("workflow_job.run_id")
	case w.Name == "":
		return nil, "", missing("workflow_job.name")
	}
	j := jobs.Job{ID: w.ID, Key: jobs.Key{InstallationID: e.installationID(), RepositoryID: e.Repository.ID, Job: w.Name},
		Repository: e.Repository.FullName, RunID: w.RunID, RunAttempt: w.RunAttempt, QueuedAt: a.clock.Now()}
	if w.WorkflowName != nil {
		j.Workflow = *w.WorkflowName
	}
	return func(ctx context.Context) error { return a.prewarm.queued(ctx, j) }, "", nil
}

// prewarmCompleted ends the pre-warm of a completed job, then runs next
// (the cleanup; nil: nothing).
func (a *App) prewarmCompleted(jobID int64, next func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.prewarm.completed(ctx, jobID); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		return next(ctx)
	}
}
