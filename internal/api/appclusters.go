package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/lifecycle"
)

// AppClusters gives the GitHub App embedded in the provisioner the same
// cluster operations the standalone App reaches over HTTP with a service
// token and SMEK-On-Behalf-Of-Installation: the same scoping rules, without
// the round trip.
type AppClusters struct {
	life  *lifecycle.Service
	store Store
}

var _ githubapp.Clusters = AppClusters{}

// NewAppClusters returns the in-process cluster operations for the App:
// life does the work, store links installations to accounts.
func NewAppClusters(life *lifecycle.Service, store Store) AppClusters {
	return AppClusters{life: life, store: store}
}

// appPrincipal is the embedded App: a service credential.
var appPrincipal = cluster.Principal{Service: true, Actor: "github-app"}

// as returns the principal for a call: the App itself, or the account
// linked to the installation.
func (a AppClusters) as(ctx context.Context, installation int64) (cluster.Principal, error) {
	if installation == githubapp.AsApp {
		return appPrincipal, nil
	}
	return onBehalf(ctx, a.store, appPrincipal, strconv.FormatInt(installation, 10))
}

// List implements githubapp.Clusters with the rules of GET
// /v1/clusters: without statuses it lists the clusters that still exist.
func (a AppClusters) List(ctx context.Context, as int64, f cluster.Filter) ([]cluster.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return nil, err
	}
	if len(f.Statuses) == 0 {
		f.Statuses = existing
	}
	if f.RepositoryOwner != "" && !validOwner(f.RepositoryOwner) {
		return nil, cluster.Errorf(cluster.EINVALID, "repository-owner", "repository-owner must be a GitHub user or organization name")
	}
	return a.life.List(ctx, p, f)
}

// Get implements githubapp.Clusters.
func (a AppClusters) Get(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.life.Get(ctx, p, cid)
	})
}

// Create implements githubapp.Clusters; the answer carries no kubeconfig.
func (a AppClusters) Create(ctx context.Context, as int64, in cluster.CreateInput) (cluster.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return cluster.Cluster{}, err
	}
	res, err := a.life.Create(ctx, p, in)
	return res.Cluster, err
}

// Stop implements githubapp.Clusters.
func (a AppClusters) Stop(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.life.Stop(ctx, p, cid, false)
	})
}

// Start implements githubapp.Clusters; the answer carries no kubeconfig.
func (a AppClusters) Start(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		res, err := a.life.Start(ctx, p, cid)
		return res.Cluster, err
	})
}

// Extend implements githubapp.Clusters.
func (a AppClusters) Extend(ctx context.Context, as int64, id string, minutes int) (cluster.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.life.Extend(ctx, p, cid, minutes)
	})
}

// Terminate implements githubapp.Clusters; the cause recorded is the
// webhook.
func (a AppClusters) Terminate(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return a.do(ctx, as, id, func(p cluster.Principal, cid cluster.ID) (cluster.Cluster, error) {
		return a.life.Terminate(ctx, p, cid, "webhook")
	})
}

func (a AppClusters) do(ctx context.Context, as int64, id string, op func(cluster.Principal, cluster.ID) (cluster.Cluster, error)) (cluster.Cluster, error) {
	p, err := a.as(ctx, as)
	if err != nil {
		return cluster.Cluster{}, err
	}
	cid, err := cluster.ParseID(strings.TrimSpace(id))
	if err != nil {
		return cluster.Cluster{}, err
	}
	return op(p, cid)
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
	_, err = a.life.Note(ctx, p, cid, "webhook", message)
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
