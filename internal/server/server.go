// Package server wires SMEK together — database, backend, warm pool,
// lifecycle, TTL sweeper and HTTP API — and runs it. `provisioner serve`
// and the end-to-end tests (internal/smektest) both start SMEK through it,
// so the two cannot drift apart.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/api"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/httpserver"
	"github.com/smek/action/internal/kube/diagnostics"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/metrics"
	"github.com/smek/action/internal/notify"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/registrymirror"
	"github.com/smek/action/internal/sqlite"
	"github.com/smek/action/internal/statuspage"
	"github.com/smek/action/internal/wire"
)

// Config is everything `provisioner serve` can be told.
type Config struct {
	// Addr is the listen address (default 127.0.0.1:8080); Listener, when
	// set, is used instead.
	Addr     string
	Listener net.Listener
	// DataDir holds the SQLite file and the local backend's clusters.
	DataDir string
	// Backend is "local" (default) or "hetzner".
	Backend string
	// ImageMaxBytes bounds one image archive loaded into a cluster
	// (default api.DefaultImageMaxBytes).
	ImageMaxBytes int64
	// KubeBin holds the Kubernetes binaries for the local backend.
	KubeBin string
	// LocalNodes says whether the local backend's clusters get a kubelet
	// node that runs pods: "on", "off" (the default: control planes whose
	// Node object the backend registers) or "auto" (on when the machine
	// can, see local.CheckNodeSupport; the server says at start why not).
	LocalNodes string
	// LocalEgressAllow are networks the local backend's API servers may
	// reach for tenants although its egress proxy refuses them by default.
	LocalEgressAllow []netip.Prefix
	// RegistryMirrors are the operator's registry mirrors: every node of
	// every backend pulls a registry's images from its mirrors first, in
	// this order, then from the registry.
	RegistryMirrors []registrymirror.Mirror
	// PoolSize is the number of ready baseline clusters kept warm for the
	// default version; PoolSizePrivileged the same for privileged ones.
	PoolSize, PoolSizePrivileged int
	// PoolPolicy decides the pool's targets (fixed: the sizes above).
	PoolPolicy PoolPolicyConfig
	// MaxPoolMembers bounds the members per flavor, claimed included
	// (0: no bound).
	MaxPoolMembers int
	// ProvisionParallel bounds concurrent pool work (default 2).
	ProvisionParallel int
	// DefaultK8sVersion is used when a create names none.
	DefaultK8sVersion string
	// DefaultWait bounds the wait for a ready cluster (default 5 min).
	DefaultWait time.Duration
	// MaxStoppedLifetime is how long a cluster stays stopped before it is
	// terminated (default 168 h); it must not be negative.
	MaxStoppedLifetime time.Duration
	// HibernateAfter is how long a cluster stays stopped before its
	// member is hibernated, where the backend can (0: never).
	HibernateAfter time.Duration
	Logger         *slog.Logger
	// Clock is the clock of deadlines, timestamps and scheduled jobs (nil:
	// the wall clock); tests advance a fake one instead of sleeping.
	Clock clockwork.Clock

	// OpsAddr, when set, serves the status page and /metrics on an
	// address of their own. They are never served on Addr, which CI
	// runners reach: the page lists every cluster with its account and CI
	// run. Empty turns them off; `provisioner serve` defaults it to a
	// loopback address.
	OpsAddr string
	// OpsToken, when set, is the bearer token the status page and
	// /metrics require on OpsAddr.
	OpsToken string
	// HTTPTimeouts bound how long a client of either address may take to
	// send a request and how long an idle connection stays open (zero
	// fields: httpserver's defaults). Answers are not bounded: a create
	// may wait for a cluster.
	HTTPTimeouts httpserver.Timeouts

	// OIDCIssuer and OIDCAudience turn on CI OIDC bearer tokens when
	// OIDCAudience is set (issuer default: GitHub Actions).
	OIDCIssuer, OIDCAudience string
	OIDCHTTPClient           *http.Client

	// SMTPURL turns on notification mail (smtp://user:pass@host:587,
	// smtps://...); MailFrom is the sender; PublicURL is how users reach
	// this server, for the links in mails.
	SMTPURL, MailFrom, PublicURL string
	// EventRetention is how long events are kept (default 30 days).
	EventRetention time.Duration

	// Hetzner configures the hetzner backend.
	Hetzner hetzner.Config

	// Prices are the operator's prices of a server hour per server type
	// (--price), SnapshotPrice of a GB of snapshot a month
	// (--snapshot-price; nil: not set), in euros without VAT. They win
	// over the hetzner backend's live prices and the built-in list.
	Prices        map[string]float64
	SnapshotPrice *float64

	// GitHubWebhookSecret turns on the GitHub App's webhook at
	// /github/webhook. GitHub, when set, answers PR comment commands
	// (App credentials); without it only the cleanup runs.
	GitHubWebhookSecret string
	GitHub              githubapp.GitHub
	// GitHubOnDone, when set, is called after the work of each accepted
	// webhook delivery has ended, in success or for good (tests wait on
	// it instead of polling).
	GitHubOnDone func(githubapp.Result)
	// GitHubClusters, when set, wraps the cluster operations the App uses
	// (tests hold them up).
	GitHubClusters func(githubapp.Clusters) githubapp.Clusters
	// GitHubPrewarm turns on pre-warming from queued workflow jobs (with
	// the webhook secret); PrewarmTTL and PrewarmCap tune it (zero: the
	// defaults).
	GitHubPrewarm bool
	PrewarmTTL    time.Duration
	PrewarmCap    int
	// PrewarmOnLearned, when set, is called after the pre-warmer has
	// learned (or not) from each create (tests wait on it).
	PrewarmOnLearned func(cluster.Cluster, error)
}

// Server is a running SMEK.
type Server struct {
	cfg      Config
	DB       *sqlite.DB
	Pool     *pool.Pool
	Life     *lifecycle.Service
	log      *slog.Logger
	http     *http.Server
	listener net.Listener
	sched    gocron.Scheduler
	local    *local.Backend
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
	opsHTTP  *http.Server
	opsAddr  net.Addr
	// poolErr holds the error that stopped the pool; /readyz reports it.
	poolErr atomic.Pointer[error]
	// Metrics is the server's Prometheus registry.
	Metrics *metrics.Metrics
	// prewarm pre-warms for queued workflow jobs; nil when off.
	prewarm *githubapp.Prewarmer
}

// Start opens the database, starts the backend, pool, sweeper and HTTP
// server, and returns once the server listens. Shutdown stops it all.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Backend == "" {
		cfg.Backend = "local"
	}
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory")
	}
	if cfg.MaxStoppedLifetime < 0 {
		return nil, fmt.Errorf("max stopped lifetime %s: must be positive", cfg.MaxStoppedLifetime)
	}
	if cfg.HibernateAfter < 0 {
		return nil, fmt.Errorf("hibernate after %s: must be 0 (never) or positive", cfg.HibernateAfter)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	spool, serr := imageSpool(cfg.DataDir)
	if serr != nil {
		return nil, serr
	}
	s := &Server{cfg: cfg, log: cfg.Logger, errc: make(chan error, 2)}
	ok := false
	defer func() {
		if !ok {
			s.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	var err error
	if s.DB, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "smek.db")); err != nil {
		return nil, err
	}
	s.DB.Clock = cfg.Clock
	s.Metrics = metrics.New(metrics.Options{Store: s.DB, Logger: cfg.Logger, Runtime: true})
	backend, err := s.backend()
	if err != nil {
		return nil, err
	}
	versions, err := backend.Versions(ctx)
	if err != nil {
		return nil, fmt.Errorf("backend versions: %w", err)
	}
	def := cfg.DefaultK8sVersion
	if def == "" {
		def = versions[0]
	}
	targets := map[cluster.Flavor]int{}
	if cfg.PoolSize > 0 {
		targets[cluster.Flavor{K8sVersion: def, Size: cluster.SizeMid}] = cfg.PoolSize
	}
	if cfg.PoolSizePrivileged > 0 {
		targets[cluster.Flavor{K8sVersion: def, Size: cluster.SizeMid, Privileged: true}] = cfg.PoolSizePrivileged
	}
	pol, err := cfg.PoolPolicy.newPolicy(backend.Name(), cluster.Flavor{K8sVersion: def, Size: cluster.SizeMid}, versions, targets)
	if err != nil {
		return nil, err
	}
	s.Pool = pool.New(s.DB, backend, pool.Config{
		Targets: targets, Policy: pol, PaidUntil: paidUntil(backend.Name()),
		MaxPerFlavor: cfg.MaxPoolMembers, Parallel: cfg.ProvisionParallel, Logger: cfg.Logger,
		Clock: cfg.Clock,
	})
	targets = s.Pool.Targets()
	// `provisioner pool status` reads them back: the database, not its
	// own flags, says what the running server works towards. The pool
	// records them again at every change.
	if err := s.DB.RecordPoolTargets(ctx, backend.Name(), targets); err != nil {
		return nil, err
	}
	s.log.Info("pool policy", "policy", pol.Name(), "targets", len(targets))
	// The same for the prices the metrics count the pool's euros with.
	model, priceSource := s.costModel(ctx, backend)
	if err := s.DB.RecordCostModel(ctx, model, priceSource); err != nil {
		return nil, err
	}
	s.Metrics.RegisterPoolCost(s.DB, model, cfg.Clock.Now, cfg.Logger)
	s.log.Info("pool cost priced", "prices", priceSource)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	notifier, err := s.mailer(runCtx)
	if err != nil {
		return nil, err
	}
	lifePool, err := s.prewarmPool(versions)
	if err != nil {
		return nil, err
	}
	s.Life = lifecycle.New(s.DB, lifePool, versions, lifecycle.Config{
		DefaultK8sVersion: def, DefaultWait: cfg.DefaultWait, MaxStoppedLifetime: cfg.MaxStoppedLifetime,
		HibernateAfter: cfg.HibernateAfter, Logger: cfg.Logger, Clock: cfg.Clock, Notifier: notifier, Metrics: s.Metrics,
	})
	authn := &auth.Authenticator{Tokens: s.DB}
	if cfg.OIDCAudience != "" {
		v, err := auth.NewOIDC(auth.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, HTTPClient: cfg.OIDCHTTPClient, Metrics: s.Metrics}, s.DB, cfg.Logger, cfg.Clock)
		if err != nil {
			return nil, err
		}
		authn.OIDC = v
		s.log.Info("CI OIDC tokens accepted", logkey.Issuer, cfg.OIDCIssuer, "audience", cfg.OIDCAudience)
	}
	ops := map[string]http.Handler{
		"GET /metrics": s.Metrics.Handler(),
		"GET /{$}":     statuspage.New(s.DB, statuspage.Options{Targets: targets, Clock: cfg.Clock, Logger: cfg.Logger}),
	}
	// The standalone App records its deliveries and their work here
	// (Deliveries), with a service token.
	apiCfg := api.Config{Life: s.Life, Auth: authn, DB: s.DB, Deliveries: s.DB, Ready: s.ready, Logger: cfg.Logger, Observe: s.Metrics.HTTPRequest, NodeKind: s.nodeKind(),
		Diagnostics: collectDiagnostics, ImageSpoolDir: spool, ImageMaxBytes: cfg.ImageMaxBytes}
	if cfg.GitHubWebhookSecret != "" {
		if apiCfg.GitHubWebhook, err = s.githubApp(runCtx); err != nil {
			return nil, err
		}
	}
	handler := api.New(apiCfg)

	s.listener = cfg.Listener
	if s.listener == nil {
		if s.listener, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, err
		}
	}
	if err := s.listenOps(apiCfg, ops); err != nil {
		return nil, err
	}
	// Before the pool resumes members and before the API serves: a
	// create cut by the last run's end is failed and its member cleaned.
	if _, err := s.Life.EndInterruptedCreates(ctx); err != nil {
		return nil, err
	}
	s.wg.Go(func() { s.runPool(runCtx) })
	if s.sched, err = gocron.NewScheduler(gocron.WithLogger(gocronLogger{s.log}), gocron.WithClock(cfg.Clock)); err != nil {
		return nil, err
	}
	if err := s.Life.Schedule(s.sched); err != nil {
		return nil, err
	}
	if err := s.Life.ScheduleHibernation(s.sched); err != nil {
		return nil, err
	}
	if err := s.schedulePruning(); err != nil {
		return nil, err
	}
	s.sched.Start()

	s.http = httpserver.New(handler, cfg.HTTPTimeouts, cfg.Logger)
	s.http.BaseContext = func(net.Listener) context.Context { return runCtx }
	s.wg.Go(func() {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	})
	s.log.Info("SMEK listening", "addr", s.listener.Addr().String(), logkey.OpsAddr, s.OpsURL(), logkey.Backend, backend.Name(), "versions", versions, "pool_targets", len(targets), "data_dir", cfg.DataDir)
	ok = true
	return s, nil
}

// githubApp starts the GitHub App embedded in the provisioner: it reaches
// clusters in-process, with the rules of the /v1 API, and runs its
// deliveries' work until ctx ends. The answer is its webhook handler.
func (s *Server) githubApp(ctx context.Context) (http.Handler, error) {
	cfg := s.cfg
	var clusters githubapp.Clusters = api.NewAppClusters(s.Life, s.DB)
	if cfg.GitHubClusters != nil {
		clusters = cfg.GitHubClusters(clusters)
	}
	app, err := githubapp.New(githubapp.Config{
		Secret: []byte(cfg.GitHubWebhookSecret), Clusters: clusters, Deliveries: s.DB,
		GitHub: cfg.GitHub, PublicURL: s.publicURL(), Logger: cfg.Logger,
		OnDone: s.deliveryDone, Metrics: s.Metrics, Prewarm: s.prewarm,
	})
	if err != nil {
		return nil, err
	}
	if err := s.resumePrewarms(ctx); err != nil {
		return nil, err
	}
	s.wg.Go(func() { app.Run(ctx) })
	s.log.Info("GitHub App webhook on", logkey.Path, githubapp.WebhookPath, "comment_commands", cfg.GitHub != nil)
	return app, nil
}

// listenOps serves the API with the operator's pages (ops) on the ops
// address, when one is set. GitHub and the standalone App talk to the
// public listener only.
func (s *Server) listenOps(apiCfg api.Config, ops map[string]http.Handler) error {
	cfg := s.cfg
	if cfg.OpsAddr == "" {
		s.log.Info("the status page and /metrics are off: no ops address")
		return nil
	}
	l, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		return fmt.Errorf("ops address: %w", err)
	}
	s.opsAddr = l.Addr()
	opsCfg := apiCfg
	opsCfg.Mounts, opsCfg.OperatorToken = ops, cfg.OpsToken
	opsCfg.GitHubWebhook, opsCfg.Deliveries = nil, nil
	if cfg.OpsToken == "" && !loopback(s.opsAddr) {
		s.log.Warn("the status page and /metrics are open to anyone who reaches the ops address: set an ops token, or keep it on loopback", logkey.OpsAddr, s.opsAddr.String())
	}
	s.opsHTTP = httpserver.New(api.New(opsCfg), cfg.HTTPTimeouts, cfg.Logger)
	s.wg.Go(func() {
		if err := s.opsHTTP.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	})
	return nil
}

// localNodes decides, from Config.LocalNodes, whether local clusters get
// a node that runs pods.
func (s *Server) localNodes() (bool, error) {
	switch s.cfg.LocalNodes {
	case "", "off":
		return false, nil
	case "on":
		return true, nil
	case "auto":
		if err := local.CheckNodeSupport(s.cfg.KubeBin); err != nil {
			s.log.Warn("local clusters will be control planes only: the API works, pods stay Pending", logkey.Err, err)
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("local nodes %q: want auto, on or off", s.cfg.LocalNodes)
}

// NodeKind says what node the clusters of this server have (wire.Versions).
func (s *Server) nodeKind() string {
	if s.local != nil && !s.local.Nodes() {
		return wire.NodeRegistered
	}
	return wire.NodeKubelet
}

func (s *Server) backend() (pool.Backend, error) {
	switch s.cfg.Backend {
	case "local":
		nodes, err := s.localNodes()
		if err != nil {
			return nil, err
		}
		b, err := local.New(local.Config{Dir: filepath.Join(s.cfg.DataDir, "clusters"), BinDir: s.cfg.KubeBin, EgressAllow: s.cfg.LocalEgressAllow, Nodes: nodes, RegistryMirrors: s.cfg.RegistryMirrors, Logger: s.log})
		if err != nil {
			return nil, err
		}
		s.local = b
		return b, nil
	case "hetzner":
		hc := s.cfg.Hetzner
		hc.RegistryMirrors = s.cfg.RegistryMirrors
		if hc.Client == nil && hc.Token == "" {
			return nil, errors.New("the hetzner backend needs an hcloud client (--hcloud-token-file, --ssh-key-file)")
		}
		hc.Metrics = s.Metrics
		if hc.Logger == nil {
			hc.Logger = s.log
		}
		if hc.Policy == nil {
			hc.Policy = func(ctx context.Context, admin *rest.Config, f cluster.Flavor) error {
				return policy.Apply(ctx, admin, policy.Options{Privileged: f.Privileged})
			}
		}
		return hetzner.New(hc)
	}
	return nil, fmt.Errorf("unknown backend %q (local, hetzner)", s.cfg.Backend)
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// OpsURL is the base URL of the status page and /metrics when they have an
// address of their own (OpsAddr), else "".
func (s *Server) OpsURL() string {
	if s.opsAddr == nil {
		return ""
	}
	return "http://" + s.opsAddr.String()
}

// loopback reports whether a listener's address is reachable from this
// host only.
func loopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// runPool runs the pool until ctx ends; an error that stops it before
// makes the server unready.
func (s *Server) runPool(ctx context.Context) {
	if err := s.Pool.Run(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("pool stopped", logkey.Err, err)
		s.poolErr.Store(&err)
	}
}

// ready is the backend's part of /readyz: the pool has taken over what the
// last run left on the backend, and it still runs.
func (s *Server) ready(context.Context) error {
	select {
	case <-s.Pool.Recovered():
	default:
		return errors.New("the pool is still recovering the backend's members")
	}
	if err := s.poolErr.Load(); err != nil {
		return fmt.Errorf("the pool stopped: %w", *err)
	}
	return nil
}

// deliveryDone counts a webhook delivery whose work has ended and hands it
// to the test hook.
func (s *Server) deliveryDone(r githubapp.Result) {
	result := "handled"
	if r.Err != nil {
		result = "error"
	}
	s.Metrics.WebhookDelivery(r.Event, result)
	if s.cfg.GitHubOnDone != nil {
		s.cfg.GitHubOnDone(r)
	}
}

// Err reports a failure of the HTTP server.
func (s *Server) Err() <-chan error { return s.errc }

// Shutdown stops serving (finishing requests in flight within ctx), stops
// the pool and the sweeper, stops the local control planes (their data
// stays: the next start resumes them) and closes the database.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.opsHTTP != nil {
		errs = append(errs, s.opsHTTP.Shutdown(ctx))
	}
	if s.sched != nil {
		errs = append(errs, s.sched.Shutdown())
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.local != nil {
		errs = append(errs, s.local.Close(ctx))
	}
	if s.DB != nil {
		errs = append(errs, s.DB.Close())
	}
	return errors.Join(errs...)
}

// mailer returns the notifier: mail through SMTP when configured.
func (s *Server) mailer(ctx context.Context) (cluster.Notifier, error) {
	if s.cfg.SMTPURL == "" {
		s.log.Info("mail is off: no --smtp-url")
		return notify.Nop{}, nil
	}
	public := s.publicURL()
	mc, err := notify.ParseConfig(s.cfg.SMTPURL, s.cfg.MailFrom, public)
	if err != nil {
		return nil, err
	}
	m, err := notify.New(mc, notify.Options{Logger: s.log, Metrics: s.Metrics})
	if err != nil {
		return nil, err
	}
	s.wg.Go(func() { m.Run(ctx) })
	return m, nil
}

// publicURL is how users reach this server, for links in mails and PR
// replies: --public-url, else a guess from the listen address.
func (s *Server) publicURL() string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		host, port = s.cfg.Addr, "80"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	guess := "http://" + net.JoinHostPort(host, port)
	s.log.Warn("links in mails and PR replies point to a guessed address; set --public-url", "guess", guess)
	return guess
}

// schedulePruning drops events older than the retention, hourly.
func (s *Server) schedulePruning() error {
	keep := s.cfg.EventRetention
	if keep <= 0 {
		keep = 30 * 24 * time.Hour
	}
	_, err := s.sched.NewJob(gocron.DurationJob(time.Hour), gocron.NewTask(func(ctx context.Context) {
		n, err := s.DB.PruneEvents(ctx, s.cfg.Clock.Now().Add(-keep))
		if err != nil {
			s.log.Warn("prune events", logkey.Err, err)
			return
		}
		if n > 0 {
			s.log.Info("pruned events", logkey.Count, n, "older_than", keep)
		}
	}), gocron.WithName("event-pruning"), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	return err
}

// gocronLogger adapts slog to gocron's logger.
type gocronLogger struct{ l *slog.Logger }

func (g gocronLogger) Debug(msg string, args ...any) { g.l.Debug(msg, args...) }
func (g gocronLogger) Info(msg string, args ...any)  { g.l.Debug(msg, args...) }
func (g gocronLogger) Warn(msg string, args ...any)  { g.l.Warn(msg, args...) }
func (g gocronLogger) Error(msg string, args ...any) { g.l.Error(msg, args...) }

// diagnosticsTimeout bounds the collection of one diagnostics bundle.
const diagnosticsTimeout = 60 * time.Second

// collectDiagnostics writes a cluster's diagnostics bundle, read with the
// tenant credential kc, within diagnosticsTimeout.
func collectDiagnostics(ctx context.Context, kc cluster.Kubeconfig, w io.Writer, tailLines int) error {
	ctx, cancel := context.WithTimeout(ctx, diagnosticsTimeout)
	defer cancel()
	return diagnostics.CollectKubeconfig(ctx, kc.YAML, w, diagnostics.Limits{TailLines: tailLines})
}

// imageSpool makes the folder image archives are received into, and
// empties it: an archive found there at start is a previous run's,
// which crashed while it was loading.
func imageSpool(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "image-spool")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("empty the image spool: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}
