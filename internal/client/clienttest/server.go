// Package clienttest is a stateful in-memory fake of SMEK's /v1 API for
// tests of the client and its users (the action, the App). It follows the
// documented behaviour: Bearer auth, problem+json errors with codes and
// fields, the 409 for terminating a terminated cluster, the 404 for unknown
// clusters, create held up to its wait budget when the pool is empty.
//
// The real server is internal/smektest; this fake is for tests that need
// error cases the real one makes hard to reach, and for speed.
package clienttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	problemdoc "github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// Server is the fake. Configure the exported fields before the first
// request; read state through the methods.
type Server struct {
	*httptest.Server

	// Tokens are the accepted Bearer credentials; anything else is a 401.
	Tokens []string
	// AllowPrivileged permits enable-privileged; without it that is a 403.
	AllowPrivileged bool
	// MaxClusters is the parallel limit of live clusters (429 beyond it);
	// 0 means no limit.
	MaxClusters int
	// MaxMinutesToLive is the account's longest deadline a keep may set
	// (a longer ask is shortened to it); 0 means no limit.
	MaxMinutesToLive int
	// PoolEmpty makes create wait its whole wait budget and answer 503,
	// as the real server does when no cluster becomes ready in time.
	PoolEmpty bool
	// Hold, when not nil, holds every create until it is closed; Held
	// receives a value each time a create starts waiting on it.
	Hold chan struct{}
	Held chan struct{}
	// Clock is the server's clock (the wall clock from NewServer).
	Clock clockwork.Clock
	// DiagnosticsBundle, when set, is what GET /v1/clusters/{id}/diagnostics
	// answers for a running cluster (see Bundle).
	DiagnosticsBundle []byte

	mu       sync.Mutex // guards the fields below
	clusters map[string]*wire.Cluster
	events   map[string][]wire.Event
	calls    []Call
	seq      int
}

// Call is one request the fake saw.
type Call struct {
	Method, Path string
	// Bearer is the credential the request carried.
	Bearer string
	// Create is the decoded body of a create.
	Create *wire.CreateRequest
}

// Versions the fake offers.
var (
	K8sVersions  = []string{"1.36.3", "1.27.4"}
	ClusterSizes = []string{"1-mid"}
)

// NewServer starts a fake that accepts token. It is closed when the test
// ends (through the caller's cleanup of the returned server).
func NewServer(token string) *Server {
	s := &Server{
		Tokens:   []string{token},
		Clock:    clockwork.NewRealClock(),
		clusters: map[string]*wire.Cluster{},
		events:   map[string][]wire.Event{},
	}
	s.Server = httptest.NewServer(s.routes())
	return s
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/clusters", s.create)
	mux.HandleFunc("GET /v1/clusters", s.list)
	mux.HandleFunc("GET /v1/clusters/{id}", s.get)
	mux.HandleFunc("GET /v1/clusters/{id}/kubeconfig", s.kubeconfig)
	mux.HandleFunc("GET /v1/clusters/{id}/events", s.eventList)
	mux.HandleFunc("GET /v1/clusters/{id}/diagnostics", s.diagnostics)
	mux.HandleFunc("POST /v1/clusters/{id}/stop", s.stop)
	mux.HandleFunc("POST /v1/clusters/{id}/start", s.start)
	mux.HandleFunc("POST /v1/clusters/{id}/terminate", s.terminate)
	mux.HandleFunc("POST /v1/clusters/{id}/extend", s.extend)
	mux.HandleFunc("POST /v1/clusters/{id}/keep", s.keep)
	mux.HandleFunc("GET /v1/versions", s.versions)
	return s.auth(mux)
}

// auth checks the Bearer credential and records the call.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Bearer: bearer})
		s.mu.Unlock()
		if !ok || !slices.Contains(s.Tokens, bearer) {
			problem(w, http.StatusUnauthorized, "unauthorized", "", "missing, invalid or revoked token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Calls returns the requests seen so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Cluster returns a copy of a cluster's state, or false.
func (s *Server) Cluster(id string) (wire.Cluster, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[id]
	if !ok {
		return wire.Cluster{}, false
	}
	return *c, true
}

// SetStatus changes a cluster's status behind the API's back, as the
// server's own lifecycle (its TTL, a lost server) does.
func (s *Server) SetStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clusters[id]; ok {
		c.ClusterStatus = status
	}
}

// Live returns the ids of clusters that are not terminated, sorted.
func (s *Server) Live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(s.clusters)) {
		if s.clusters[id].ClusterStatus != "terminated" {
			ids = append(ids, id)
		}
	}
	return ids
}

// problem answers with the server's problem document. status is the one
// the server's code maps to; it is kept here so that each answer reads as
// what the API documents.
func problem(w http.ResponseWriter, status int, code, field, detail string, supported ...string) {
	p := problemdoc.From(&cluster.Error{Code: cluster.Code(code), Field: field, Message: detail, Supported: supported}, "")
	p.Status, p.Title = status, http.StatusText(status)
	problemdoc.Send(w, p)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly; it answers 400 itself on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "invalid", "", "malformed body: "+err.Error())
		return false
	}
	return true
}

// Kubeconfig is the YAML the fake hands out for a cluster: the shape that
// client-go's clientcmd writes, with a tenant token.
func Kubeconfig(id, apiServer string) string {
	return fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQS0%[1]s
    server: %[2]s
  name: smek-%[1]s
contexts:
- context:
    cluster: smek-%[1]s
    namespace: default
    user: smek-%[1]s-tenant
  name: smek-%[1]s
current-context: smek-%[1]s
kind: Config
users:
- name: smek-%[1]s-tenant
  user:
    token: %[3]s
`, id, apiServer, TenantToken(id))
}

// TenantToken is the credential inside the fake kubeconfig of cluster id.
func TenantToken(id string) string { return "eyJhbGciOiJSUzI1NiJ9.tenant-" + id + ".sig" }

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req wire.CreateRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	s.calls[len(s.calls)-1].Create = &req
	s.mu.Unlock()

	c := wire.Cluster{
		K8sVersion:    K8sVersions[0],
		ClusterSize:   ClusterSizes[0],
		NodeKind:      wire.NodeKubelet,
		MinutesToLive: 60,
		KeepCluster:   true,
		Run:           req.Run,
	}
	if req.K8sVersion != nil {
		if !slices.Contains(K8sVersions, *req.K8sVersion) {
			problem(w, http.StatusBadRequest, "invalid", "k8s-version", "unsupported version "+strconv.Quote(*req.K8sVersion), K8sVersions...)
			return
		}
		c.K8sVersion = *req.K8sVersion
	}
	if req.ClusterSize != nil {
		if !slices.Contains(ClusterSizes, *req.ClusterSize) {
			problem(w, http.StatusBadRequest, "invalid", "cluster-size", "unknown size "+strconv.Quote(*req.ClusterSize), ClusterSizes...)
			return
		}
		c.ClusterSize = *req.ClusterSize
	}
	if req.MinutesToLive != nil {
		if *req.MinutesToLive < 1 || *req.MinutesToLive > 1440 {
			problem(w, http.StatusBadRequest, "invalid", "minutes-to-live", "must be between 1 and 1440")
			return
		}
		c.MinutesToLive = *req.MinutesToLive
	}
	if req.KeepCluster != nil {
		c.KeepCluster = *req.KeepCluster
	}
	if req.NotificationEmail != nil {
		c.NotificationEmail = *req.NotificationEmail
	}
	if req.EnablePrivileged != nil && *req.EnablePrivileged {
		if !s.AllowPrivileged {
			problem(w, http.StatusForbidden, "forbidden", "enable-privileged", "this account may not run privileged clusters")
			return
		}
		c.EnablePrivileged = true
	}
	wait := 5 * time.Minute
	if req.Wait != nil {
		d, err := time.ParseDuration(*req.Wait)
		if err != nil || d < 0 {
			problem(w, http.StatusBadRequest, "invalid", "wait", "not a duration: "+strconv.Quote(*req.Wait))
			return
		}
		wait = d
	}
	if s.MaxClusters > 0 && len(s.Live()) >= s.MaxClusters {
		problem(w, http.StatusTooManyRequests, "limit", "", fmt.Sprintf("parallel-cluster limit of %d reached", s.MaxClusters))
		return
	}

	start := s.Clock.Now()
	if s.Hold != nil {
		if s.Held != nil {
			s.Held <- struct{}{}
		}
		select {
		case <-s.Hold:
		case <-r.Context().Done():
			return
		}
	}
	if s.PoolEmpty {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		problem(w, http.StatusServiceUnavailable, "unavailable", "", fmt.Sprintf("no cluster became ready within %s", wait))
		return
	}

	s.mu.Lock()
	s.seq++
	c.ClusterID = fmt.Sprintf("c-fake%02d", s.seq%100)
	c.ClusterStatus = "running"
	c.Account = "test"
	c.APIServer = "https://127.0.0.1:6443"
	c.CreatedAt = s.Clock.Now().UTC().Truncate(time.Second)
	c.ExpiresAt = c.CreatedAt.Add(time.Duration(c.MinutesToLive) * time.Minute)
	queued := s.Clock.Now().Sub(start).Milliseconds()
	c.Timings = &wire.Timings{QueuedMS: queued, ClaimedMS: 3, ReadyMS: 40, TotalMS: queued + 43, Warm: s.Hold == nil}
	stored := c
	s.clusters[c.ClusterID] = &stored
	s.record(c.ClusterID, "created", "", "running")
	s.mu.Unlock()

	c.Kubeconfig = Kubeconfig(c.ClusterID, c.APIServer)
	reply(w, http.StatusCreated, c)
}

// record appends an event; s.mu must be held.
func (s *Server) record(id, typ, from, to string) {
	s.events[id] = append(s.events[id], wire.Event{Time: s.Clock.Now().UTC(), Subject: id, Type: typ, From: from, To: to, Cause: "api"})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := wire.ClusterList{Clusters: []wire.Cluster{}}
	for _, id := range slices.Sorted(maps.Keys(s.clusters)) {
		c := s.clusters[id]
		if st := q.Get("status"); st != "" && c.ClusterStatus != st {
			continue
		}
		if v := q.Get("run-id"); v != "" && (c.Run == nil || strconv.FormatInt(c.Run.RunID, 10) != v) {
			continue
		}
		if v := q.Get("repository-id"); v != "" && (c.Run == nil || strconv.FormatInt(c.Run.RepositoryID, 10) != v) {
			continue
		}
		out.Clusters = append(out.Clusters, *c)
	}
	reply(w, http.StatusOK, out)
}

// lookup returns the cluster of the path, answering 404 itself; s.mu must
// be held.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *wire.Cluster {
	id := r.PathValue("id")
	c, ok := s.clusters[id]
	if !ok {
		problem(w, http.StatusNotFound, "not-found", "cluster-id", "no cluster "+strconv.Quote(id))
		return nil
	}
	return c
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.lookup(w, r); c != nil {
		reply(w, http.StatusOK, c)
	}
}

func (s *Server) kubeconfig(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus != "running" {
		problem(w, http.StatusConflict, "conflict", "", "cluster is "+c.ClusterStatus)
		return
	}
	kc := Kubeconfig(c.ClusterID, c.APIServer)
	if strings.HasPrefix(r.Header.Get("Accept"), wire.MediaYAML) {
		w.Header().Set("Content-Type", wire.MediaYAML)
		fmt.Fprint(w, kc)
		return
	}
	out := *c
	out.Kubeconfig = kc
	reply(w, http.StatusOK, out)
}

func (s *Server) eventList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.lookup(w, r); c != nil {
		reply(w, http.StatusOK, wire.EventList{Events: append([]wire.Event{}, s.events[c.ClusterID]...)})
	}
}

// Hibernate makes stopped cluster id hibernated, its server kept as a
// snapshot of gb GB, as the real server does after --hibernate-after.
func (s *Server) Hibernate(id string, gb float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[id]
	if !ok || c.ClusterStatus != "stopped" {
		return false
	}
	s.record(id, "hibernated", "stopped", "stopped")
	c.ClusterStatus, c.SnapshotSizeGB = "hibernated", &gb
	return true
}

// transition moves c to status "to"; s.mu must be held.
func (s *Server) transition(c *wire.Cluster, typ, to string) {
	s.record(c.ClusterID, typ, c.ClusterStatus, to)
	c.ClusterStatus = to
	now := s.Clock.Now().UTC()
	switch to {
	case "stopped":
		c.StoppedAt = &now
	case "terminated":
		c.TerminatedAt = &now
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	var req wire.StopRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus == "terminated" {
		problem(w, http.StatusConflict, "conflict", "", "cluster is terminated")
		return
	}
	if !c.KeepCluster || (req.ForceTerminate != nil && *req.ForceTerminate) {
		s.transition(c, "terminated", "terminated")
	} else {
		s.transition(c, "stopped", "stopped")
	}
	reply(w, http.StatusOK, c)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus != "stopped" && c.ClusterStatus != "hibernated" {
		problem(w, http.StatusConflict, "conflict", "", "cluster is "+c.ClusterStatus+", not stopped")
		return
	}
	restored := c.ClusterStatus == "hibernated"
	if restored {
		// The real server restores a server from the snapshot for
		// minutes, recording each step in the event log.
		for _, step := range []string{"creating a server from the snapshot", "the cluster is ready; its address changed"} {
			s.events[c.ClusterID] = append(s.events[c.ClusterID], wire.Event{Time: s.Clock.Now().UTC(), Subject: c.ClusterID, Type: "restoring", Cause: "api", Message: step})
		}
		c.SnapshotSizeGB = nil
		c.APIServer = "https://127.0.0.2:6443"
	}
	s.transition(c, "started", "running")
	c.StoppedAt = nil
	out := *c
	if restored {
		out.RestoreMS = 180000
	}
	out.Kubeconfig = Kubeconfig(c.ClusterID, c.APIServer)
	reply(w, http.StatusOK, out)
}

func (s *Server) terminate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus == "terminated" {
		problem(w, http.StatusConflict, "conflict", "", "cluster is already terminated")
		return
	}
	s.transition(c, "terminated", "terminated")
	reply(w, http.StatusOK, c)
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request) {
	var req wire.ExtendRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Minutes == nil || *req.Minutes < 1 {
		problem(w, http.StatusBadRequest, "invalid", "minutes", "minutes must be a positive number")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus == "terminated" {
		problem(w, http.StatusConflict, "conflict", "", "cluster is terminated")
		return
	}
	c.ExpiresAt = c.ExpiresAt.Add(time.Duration(*req.Minutes) * time.Minute)
	s.record(c.ClusterID, "extended", "", "")
	reply(w, http.StatusOK, c)
}

// keep marks a running cluster kept, its deadline minutes from now
// (MaxMinutesToLive bounds it, as the account's maximum does).
func (s *Server) keep(w http.ResponseWriter, r *http.Request) {
	var req wire.KeepRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Minutes == nil || *req.Minutes < 1 {
		problem(w, http.StatusBadRequest, "invalid", "minutes", "minutes must be at least 1")
		return
	}
	// As lifecycle.Keep: one line of at most 200 bytes of text.
	if r := req.Reason; r != nil && (len(*r) > 200 || !utf8.ValidString(*r) || strings.IndexFunc(*r, unicode.IsControl) >= 0) {
		problem(w, http.StatusBadRequest, "invalid", "reason", "reason must be one line of at most 200 bytes of text")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.ClusterStatus != "running" {
		problem(w, http.StatusConflict, "conflict", "cluster-id", "cluster "+c.ClusterID+" is "+c.ClusterStatus+"; only a running cluster can be kept for debugging")
		return
	}
	minutes := *req.Minutes
	if s.MaxMinutesToLive > 0 {
		minutes = min(minutes, s.MaxMinutesToLive)
	}
	now := s.Clock.Now().UTC()
	c.ExpiresAt = now.Add(time.Duration(minutes) * time.Minute)
	c.KeptAt = &now
	c.KeptReason = ""
	if req.Reason != nil {
		c.KeptReason = *req.Reason
	}
	s.record(c.ClusterID, "kept", "", "")
	reply(w, http.StatusOK, c)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, wire.Versions{K8sVersions: K8sVersions, DefaultK8sVersion: K8sVersions[0], ClusterSizes: ClusterSizes, NodeKind: wire.NodeKubelet})
}
