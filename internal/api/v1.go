package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

func (s *Server) v1Versions(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	writeJSON(w, http.StatusOK, wire.MediaJSON, wire.Versions{
		K8sVersions: s.life.Versions(), DefaultK8sVersion: s.life.DefaultK8sVersion(), ClusterSizes: cluster.Sizes,
		NodeKind: s.nodeKind(),
	})
}

// v1Create is POST /v1/clusters. Unlike /create, notification-email is
// optional here and the answer is JSON unless YAML or a script is asked for.
func (s *Server) v1Create(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	var req wire.CreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := createInput(req, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.life.Create(r.Context(), p, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeV1Kubeconfig(w, r, http.StatusCreated, res.Cluster, res.Kubeconfig)
}

// writeV1Kubeconfig answers JSON by default; YAML when asked for.
func (s *Server) writeV1Kubeconfig(w http.ResponseWriter, r *http.Request, status int, c cluster.Cluster, kc cluster.Kubeconfig) {
	if negotiate(r) == formatYAML {
		s.writeKubeconfig(w, r, status, c, kc)
		return
	}
	wc := s.toWire(c)
	wc.Kubeconfig = string(kc.YAML)
	writeJSON(w, status, wire.MediaJSON, wc)
}

func (s *Server) v1List(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	f, err := listFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cs, err := s.life.List(r.Context(), p, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := wire.ClusterList{Clusters: make([]wire.Cluster, 0, len(cs))}
	for _, c := range cs {
		out.Clusters = append(out.Clusters, s.toWire(c))
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, out)
}

// existing are the statuses a list shows when it names none: the clusters
// that still exist.
var existing = []cluster.Status{cluster.Pending, cluster.Running, cluster.Stopped, cluster.Terminating}

// listFilter reads GET /v1/clusters' query. Without status, clusters that
// still exist are listed; status=all lists every one.
func listFilter(q url.Values) (cluster.Filter, error) {
	f := cluster.Filter{Statuses: existing}
	if v := q.Get("status"); v != "" {
		f.Statuses = nil
		if v != "all" {
			for _, st := range strings.Split(v, ",") {
				switch s := cluster.Status(st); s {
				case cluster.Pending, cluster.Running, cluster.Stopped, cluster.Terminating, cluster.Terminated, cluster.Failed:
					f.Statuses = append(f.Statuses, s)
				default:
					return f, cluster.Errorf(cluster.EINVALID, "status", "status %q is not one of pending, running, stopped, terminating, terminated, failed, all", short(st))
				}
			}
		}
	}
	ints := []struct {
		name string
		dst  *int64
	}{{"repository-id", &f.RepositoryID}, {"run-id", &f.RunID}, {"run-attempt", &f.RunAttempt}, {"pull-request", &f.PullRequest}, {"installation-id", &f.InstallationID}}
	for _, p := range ints {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return f, cluster.Errorf(cluster.EINVALID, p.name, "%s must be a positive whole number", p.name)
			}
			*p.dst = n
		}
	}
	f.Runner = q.Get("runner-name")
	if v := q.Get("repository-owner"); v != "" {
		if !validOwner(v) {
			return f, cluster.Errorf(cluster.EINVALID, "repository-owner", "repository-owner must be a GitHub user or organization name")
		}
		f.RepositoryOwner = v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, cluster.Errorf(cluster.EINVALID, "limit", "limit must be a positive whole number")
		}
		f.Limit = n
	}
	return f, nil
}

// validOwner accepts a GitHub login: letters, digits and hyphens (and
// the underscores of GitHub Enterprise Server's managed users), at most 100.
func validOwner(s string) bool {
	if len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// causeOf is "webhook" when a service credential (the standalone GitHub
// App) says it acts for one, so that the event log tells the App's cleanup
// from a user's call.
func causeOf(r *http.Request, p cluster.Principal) string {
	if p.Service && r.Header.Get(wire.HeaderCause) == "webhook" {
		return "webhook"
	}
	return "api"
}

func pathID(r *http.Request) (cluster.ID, error) {
	return cluster.ParseID(r.PathValue("id"))
}

func (s *Server) v1Get(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.life.Get(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, s.toWire(c))
}

func (s *Server) v1Stop(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req wire.StopRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if req.ClusterID != nil && *req.ClusterID != string(id) {
		s.writeError(w, r, cluster.Errorf(cluster.EINVALID, "cluster-id", "cluster-id in the body does not match the path"))
		return
	}
	c, err := s.life.Stop(r.Context(), p, id, req.ForceTerminate != nil && *req.ForceTerminate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, s.toWire(c))
}

func (s *Server) v1Start(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.life.Start(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeV1Kubeconfig(w, r, http.StatusOK, res.Cluster, res.Kubeconfig)
}

func (s *Server) v1Terminate(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.life.Terminate(r.Context(), p, id, causeOf(r, p))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, s.toWire(c))
}

func (s *Server) v1Extend(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req wire.ExtendRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Minutes == nil {
		s.writeError(w, r, cluster.Errorf(cluster.EINVALID, "minutes", "minutes is required"))
		return
	}
	c, err := s.life.Extend(r.Context(), p, id, *req.Minutes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, s.toWire(c))
}

// v1Keep is POST /v1/clusters/{id}/keep: a CI job that failed keeps its
// cluster for debugging instead of ending it.
func (s *Server) v1Keep(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req wire.KeepRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Minutes == nil {
		s.writeError(w, r, cluster.Errorf(cluster.EINVALID, "minutes", "minutes is required"))
		return
	}
	var reason string
	if req.Reason != nil {
		reason = *req.Reason
	}
	c, err := s.life.Keep(r.Context(), p, id, *req.Minutes, reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, s.toWire(c))
}

func (s *Server) v1Kubeconfig(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.life.Kubeconfig(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeV1Kubeconfig(w, r, http.StatusOK, res.Cluster, res.Kubeconfig)
}

// v1Note is POST /v1/clusters/{id}/events: a service credential adds a note.
func (s *Server) v1Note(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req wire.NoteRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Message == nil {
		s.writeError(w, r, cluster.Errorf(cluster.EINVALID, "message", "message is required"))
		return
	}
	e, err := s.life.Note(r.Context(), p, id, "webhook", *req.Message)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.MediaJSON, toWireEvents([]cluster.Event{e}).Events[0])
}

func (s *Server) v1Events(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.life.Events(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, toWireEvents(evs))
}
