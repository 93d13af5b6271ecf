// Package api is SMEK's HTTP API: the seed-compatible endpoints (/create,
// /stop, /start, /list), the resource-style /v1 API with its OpenAPI
// document, health checks, and the mount points for the webhook, metrics
// and status page. Every route is listed in routes; every error becomes a
// problem+json answer in writeError.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// Store is what the API reads beside the lifecycle: the account linked to
// a GitHub App installation, to resolve SMEK-On-Behalf-Of-Installation into
// a principal before any route runs, and the database's health for
// /readyz. Every cluster read and change goes through Config.Life.
type Store interface {
	AccountByInstallation(ctx context.Context, installationID int64) (cluster.Account, error)
	Ping(ctx context.Context) error
}

// Config wires the API to the rest of SMEK.
type Config struct {
	Life *lifecycle.Service
	Auth *auth.Authenticator
	DB   Store
	// Ready reports whether the backend can serve; /readyz uses it with
	// the database's ping. Nil means always ready.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// Observe, when set, is called after every request with its route
	// pattern, status and duration (metrics).
	Observe func(route string, status int, d time.Duration)
	// Mounts are extra routes (pattern → handler) for the operator:
	// /metrics, the status page.
	Mounts map[string]http.Handler
	// Deliveries, when set, keeps the standalone GitHub App's deliveries
	// behind /v1/github/deliveries, for service tokens only.
	Deliveries githubapp.Deliveries
	// GitHubWebhook, when set, is the embedded GitHub App, served at
	// POST githubapp.WebhookPath.
	GitHubWebhook http.Handler
	// NodeKind is wire.NodeKubelet or wire.NodeRegistered: what node the
	// backend's clusters have (default kubelet).
	NodeKind string
	// OperatorToken, when set, is the bearer token the Mounts require;
	// other requests to them are answered 401.
	OperatorToken string
	// Diagnostics, when set, writes a cluster's diagnostics bundle
	// (tar.gz) to w, read with the tenant credential kc and bounded in
	// time by itself; without it GET /v1/clusters/{id}/diagnostics
	// answers 503.
	Diagnostics func(ctx context.Context, kc cluster.Kubeconfig, w io.Writer, tailLines int) error
	// MaxDiagnostics bounds the diagnostics collected at once; more are
	// answered 429 (default 4).
	MaxDiagnostics int
	// ImageSpoolDir is the folder image archives are received into
	// before they go to a node (default: the system's temporary folder);
	// ImageMaxBytes bounds one archive (default DefaultImageMaxBytes).
	ImageSpoolDir string
	ImageMaxBytes int64
}

// Server serves the API.
type Server struct {
	cfg  Config
	life *lifecycle.Service
	log  *slog.Logger
	mux  *http.ServeMux
	// diagnostics holds a token per collection under way.
	diagnostics chan struct{}
}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxDiagnostics <= 0 {
		cfg.MaxDiagnostics = 4
	}
	s := &Server{cfg: cfg, life: cfg.Life, log: cfg.Logger.With(logkey.Component, "api"), mux: http.NewServeMux(),
		diagnostics: make(chan struct{}, cfg.MaxDiagnostics)}
	s.routes()
	return s
}

// routes lists every route of the API.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)

	// The seed API, exactly as the original SMEK service has it.
	s.mux.HandleFunc("POST /create", s.authedScript(s.seedCreate))
	s.mux.HandleFunc("POST /stop", s.authed(s.seedStop))
	s.mux.HandleFunc("POST /start", s.authedScript(s.seedStart))
	s.mux.HandleFunc("GET /list", s.authed(s.seedList))

	// The resource-style API.
	s.mux.HandleFunc("GET /v1/openapi.json", s.openAPI)
	s.mux.HandleFunc("GET /v1/versions", s.authed(s.v1Versions))
	s.mux.HandleFunc("POST /v1/clusters", s.authed(s.v1Create))
	s.mux.HandleFunc("GET /v1/clusters", s.authed(s.v1List))
	s.mux.HandleFunc("GET /v1/clusters/{id}", s.authed(s.v1Get))
	s.mux.HandleFunc("DELETE /v1/clusters/{id}", s.authed(s.v1Terminate))
	s.mux.HandleFunc("POST /v1/clusters/{id}/stop", s.authed(s.v1Stop))
	s.mux.HandleFunc("POST /v1/clusters/{id}/start", s.authed(s.v1Start))
	s.mux.HandleFunc("POST /v1/clusters/{id}/terminate", s.authed(s.v1Terminate))
	s.mux.HandleFunc("POST /v1/clusters/{id}/extend", s.authed(s.v1Extend))
	s.mux.HandleFunc("POST /v1/clusters/{id}/keep", s.authed(s.v1Keep))
	s.mux.HandleFunc("GET /v1/clusters/{id}/kubeconfig", s.authed(s.v1Kubeconfig))
	s.mux.HandleFunc("GET /v1/clusters/{id}/events", s.authed(s.v1Events))
	s.mux.HandleFunc("GET /v1/clusters/{id}/diagnostics", s.authed(s.v1Diagnostics))
	s.mux.HandleFunc("POST /v1/clusters/{id}/events", s.authed(s.v1Note))
	s.mux.HandleFunc("POST /v1/clusters/{id}/images", s.authed(s.v1LoadImages))

	// The standalone GitHub App's deliveries and their work.
	if s.cfg.Deliveries != nil {
		d := githubapp.NewDeliveriesAPI(s.cfg.Deliveries, s.cfg.Logger)
		s.mux.HandleFunc("POST /v1/github/deliveries", s.service(d.Record))
		s.mux.HandleFunc("GET /v1/github/deliveries", s.service(d.Pending))
		s.mux.HandleFunc("GET /v1/github/deliveries/{id}", s.service(d.Get))
		s.mux.HandleFunc("PATCH /v1/github/deliveries/{id}", s.service(d.Update))
		s.mux.HandleFunc("/v1/github/deliveries", s.service(notAllowed("GET, POST")))
		s.mux.HandleFunc("/v1/github/deliveries/{id}", s.service(notAllowed("GET, PATCH")))
	}

	// The embedded GitHub App's webhook.
	if s.cfg.GitHubWebhook != nil {
		s.mux.Handle("POST "+githubapp.WebhookPath, s.cfg.GitHubWebhook)
	}

	for pattern, h := range s.cfg.Mounts {
		s.mux.Handle(pattern, s.operatorOnly(h))
	}
	// Everything else: a problem document rather than the mux's plain text.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, cluster.Errorf(cluster.ENOTFOUND, "", "no such endpoint: %s %s", r.Method, short(r.URL.Path)))
	})
}

// ServeHTTP implements http.Handler: request id, panic guard, logging.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(wire.HeaderRequestID)
	if !validRequestID(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	w.Header().Set(wire.HeaderRequestID, id)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", logkey.RequestID, id, logkey.Path, r.URL.Path, "panic", v)
			if !rec.wrote {
				s.writeError(rec, r, cluster.Errorf(cluster.EINTERNAL, "", "internal error"))
			}
		}
		_, pattern := s.mux.Handler(r)
		if s.cfg.Observe != nil {
			s.cfg.Observe(pattern, rec.status, time.Since(start))
		}
		s.log.Debug("request", logkey.RequestID, id, "method", r.Method, logkey.Path, r.URL.Path, logkey.Status, rec.status, logkey.Took, time.Since(start))
	}()
	s.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type principalHandler func(http.ResponseWriter, *http.Request, cluster.Principal)

// authed authenticates the request and hands the principal to h.
func (s *Server) authed(h principalHandler) http.HandlerFunc { return s.authWith(s.writeError, h) }

// authedScript is authed for routes that answer `curl ... | sh -` with a
// script: a bad token gets a script that says so, not JSON for sh to choke on.
func (s *Server) authedScript(h principalHandler) http.HandlerFunc {
	return s.authWith(s.writeScriptError, h)
}

func (s *Server) authWith(fail func(http.ResponseWriter, *http.Request, error), h principalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.cfg.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			fail(w, r, err)
			return
		}
		if v := r.Header.Get(wire.HeaderOnBehalfOf); v != "" {
			if p, err = onBehalf(r.Context(), s.cfg.DB, p, v); err != nil {
				fail(w, r, err)
				return
			}
		}
		h(w, r, p)
	}
}

// service admits service credentials only, for the App's delivery routes;
// other requests get the authorizer's problem.
func (s *Server) service(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.authorizeService(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// notAllowed answers a method a route does not take.
func notAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		problem.NotAllowed(w, r, allow, cluster.Errorf(cluster.EINVALID, "", "use %s", allow))
	}
}

func onBehalf(ctx context.Context, store Store, p cluster.Principal, v string) (cluster.Principal, error) {
	if !p.Service {
		return p, cluster.Errorf(cluster.EFORBIDDEN, wire.HeaderOnBehalfOf, "only a service token may act on behalf of an installation")
	}
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || id <= 0 {
		return p, cluster.Errorf(cluster.EINVALID, wire.HeaderOnBehalfOf, "%s must be a GitHub App installation id", wire.HeaderOnBehalfOf)
	}
	a, err := store.AccountByInstallation(ctx, id)
	if err != nil {
		return p, err
	}
	return cluster.Principal{
		Account: a, AllowPrivileged: p.AllowPrivileged,
		Actor: p.Actor + " for installation " + strconv.FormatInt(id, 10),
	}, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, wire.MediaJSON, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "backend": "ok"}
	status := http.StatusOK
	if err := s.cfg.DB.Ping(ctx); err != nil {
		checks["database"], status = "failing", http.StatusServiceUnavailable
		s.log.Warn("readyz: database", logkey.Err, err)
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			checks["backend"], status = "failing", http.StatusServiceUnavailable
			s.log.Warn("readyz: backend", logkey.Err, err)
		}
	}
	writeJSON(w, status, wire.MediaJSON, checks)
}
