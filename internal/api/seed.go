package api

import (
	"net/http"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// seedCreate is POST /create: keep-cluster defaults to true and
// notification-email is required, as the seed API has it.
func (s *Server) seedCreate(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	var req wire.CreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	if req.Wait != nil || req.Run != nil {
		// The seed API has neither; they belong to /v1.
		field := "wait"
		if req.Run != nil {
			field = "run"
		}
		s.writeScriptError(w, r, cluster.Errorf(cluster.EINVALID, field, "unknown field %q on /create; use POST /v1/clusters for it", field))
		return
	}
	in, err := createInput(req, true)
	if err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	res, err := s.life.Create(r.Context(), p, in)
	if err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	s.writeKubeconfig(w, r, http.StatusOK, res.Cluster, res.Kubeconfig)
}

// seedStop is POST /stop.
func (s *Server) seedStop(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	var req wire.StopRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := requiredID(req.ClusterID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.life.Stop(r.Context(), p, id, req.ForceTerminate != nil && *req.ForceTerminate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, wire.ListItem{ClusterID: string(c.ID), ClusterStatus: string(c.Status)})
}

// seedStart is POST /start: answers with a fresh kubeconfig, negotiated like
// /create.
func (s *Server) seedStart(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	var req wire.StartRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	id, err := requiredID(req.ClusterID)
	if err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	res, err := s.life.Start(r.Context(), p, id)
	if err != nil {
		s.writeScriptError(w, r, err)
		return
	}
	s.writeKubeconfig(w, r, http.StatusOK, res.Cluster, res.Kubeconfig)
}

// seedList is GET /list: the account's clusters that still exist, and
// those lost while running until their deadline (lifecycle.Listed).
func (s *Server) seedList(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	cs, err := s.life.Listed(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.ListItem, 0, len(cs))
	for _, c := range cs {
		out = append(out, wire.ListItem{ClusterID: string(c.ID), ClusterStatus: string(c.Status)})
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, out)
}

func requiredID(v *string) (cluster.ID, error) {
	if v == nil || *v == "" {
		return "", cluster.Errorf(cluster.EINVALID, "cluster-id", "cluster-id is required")
	}
	return cluster.ParseID(*v)
}

// writeScriptError answers a failed create or start. A client that takes
// the shell script (curl ... | sh -) gets a script that prints the problem
// and exits 1; others get problem+json.
func (s *Server) writeScriptError(w http.ResponseWriter, r *http.Request, err error) {
	if negotiate(r) != formatShell {
		s.writeError(w, r, err)
		return
	}
	p := problem.From(err, r.URL.Path)
	p.RequestID = requestID(r.Context())
	s.log.Info("request failed", logkey.RequestID, p.RequestID, logkey.Path, r.URL.Path, logkey.Status, p.Status, logkey.Code, p.Code, logkey.Err, err)
	if r.Context().Err() != nil {
		return
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", problem.Challenge)
	}
	w.Header().Set("Content-Type", wire.MediaShell)
	w.WriteHeader(p.Status)
	w.Write(shellError(p))
}
