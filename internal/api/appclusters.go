package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/wire"
)

// AppClusters gives the GitHub App embedded in the provisioner the same
// cluster operations the standalone App reaches over HTTP with a service
// token and SMEK-On-Behalf-Of-Installation: the same scoping rules, without
// the round trip.
type AppClusters struct{ s *Server }

var _ githubapp.Clusters = AppClusters{}

// AppClusters returns the in-process cluster operations for the App.
func (s *Server) AppClusters() AppClusters { return AppClusters{s: s} }

// appPrincipal is the embedded App: a service credential.
var appPrincipal = cluster.Principal{Service: true, Actor: "github-app"}

// as returns the principal for a call: the App itself, or the account
// linked to the installation.
func (a AppClusters) as(ctx context.Context, installation int64) (cluster.Principal, error) {
	if installation == githubapp.AsApp {
		return appPrincipal, nil
	}
	return a.s.onBehalf(ctx, appPrincipal, strconv.FormatInt(installation, 10))
}

// List implements githubapp.Clusters.
func (a AppClusters) List(ctx context.Context, as int64, opts client.ListOptions) ([]wire.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" && v != "0" {
			q.Set(k, v)
		}
	}
	set("status", opts.Status)
	set("repository-id", strconv.FormatInt(opts.RepositoryID, 10))
	set("run-id", strconv.FormatInt(opts.RunID, 10))
	set("run-attempt", strconv.FormatInt(opts.RunAttempt, 10))
	set("runner-name", opts.RunnerName)
	set("pull-request", strconv.FormatInt(opts.PullRequest, 10))
	set("installation-id", strconv.FormatInt(opts.InstallationID, 10))
	set("repository-owner", opts.RepositoryOwner)
	f, err := listFilter(q)
	if err != nil {
		return nil, err
	}
	cs, err := a.s.life.List(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Cluster, 0, len(cs))
	for _, c := range cs {
		out = append(out, toWire(c))
	}
	return out, nil
}

// Get implements githubapp.Clusters.
func (a AppClusters) Get(ctx context.Context, as int64, id string) (*wire.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.s.life.Get(ctx, p, cid)
	})
}

// Create implements githubapp.Clusters; the answer carries no kubeconfig.
func (a AppClusters) Create(ctx context.Context, as int64, req wire.CreateRequest) (*wire.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return nil, err
	}
	in, err := createInput(req, false)
	if err != nil {
		return nil, err
	}
	res, err := a.s.life.Create(ctx, p, in)
	if err != nil {
		return nil, err
	}
	w := toWire(res.Cluster)
	return &w, nil
}

// Stop implements githubapp.Clusters.
func (a AppClusters) Stop(ctx context.Context, as int64, id string) (*wire.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.s.life.Stop(ctx, p, cid, false)
	})
}

// Start implements githubapp.Clusters; the answer carries no kubeconfig.
func (a AppClusters) Start(ctx context.Context, as int64, id string) (*wire.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		res, err := a.s.life.Start(ctx, p, cid)
		return res.Cluster, err
	})
}

// Extend implements githubapp.Clusters.
func (a AppClusters) Extend(ctx context.Context, as int64, id string, minutes int) (*wire.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.s.life.Extend(ctx, p, cid, minutes)
	})
}

// Terminate implements githubapp.Clusters; the cause recorded is the
// webhook.
func (a AppClusters) Terminate(ctx context.Context, as int64, id string) (*wire.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.s.life.Terminate(ctx, p, cid, "webhook")
	})
}

func (a AppClusters) do(ctx context.Context, as int64, id string, op func(cluster.Principal, cluster.ID) (cluster.Cluster, error)) (*wire.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return nil, err
	}
	cid, err := cluster.ParseID(strings.TrimSpace(id))
	if err != nil {
		return nil, err
	}
	c, err := op(p, cid)
	if err != nil {
		return nil, err
	}
	w := toWire(c)
	return &w, nil
}

// Note implements githubapp.Clusters.
func (a AppClusters) Note(ctx context.Context, as int64, id string, message string) error {
	p, err := a.as(ctx, as)
	if err != nil {
		return err
	}
	cid, err := cluster.ParseID(strings.TrimSpace(id))
	if err != nil {
		return err
	}
	_, err = a.s.life.Note(ctx, p, cid, "webhook", message)
	return err
}

// authorizeService admits service credentials only: the guard of the App's
// delivery routes.
func (s *Server) authorizeService(r *http.Request) error {
	p, err := s.cfg.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if !p.Service {
		return cluster.Errorf(cluster.EFORBIDDEN, "", "only a service token may record GitHub deliveries")
	}
	return nil
}
