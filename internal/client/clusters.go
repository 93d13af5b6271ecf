package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/smek/action/internal/wire"
)

// Create asks for a new cluster. The server holds the request until a
// cluster is ready or req.Wait has passed (then 503, see IsUnavailable), so
// ctx should allow a little more than the wait budget.
func (c *Client) Create(ctx context.Context, req wire.CreateRequest) (*wire.Cluster, error) {
	var out wire.Cluster
	if err := c.do(ctx, http.MethodPost, "/v1/clusters", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOptions filter List. Zero fields do not filter.
type ListOptions struct {
	Status         string
	RepositoryID   int64
	RunID          int64
	RunAttempt     int64
	RunnerName     string
	PullRequest    int64
	InstallationID int64
	// RepositoryOwner selects the clusters whose run's repository is
	// RepositoryOwner/..., without regard to case.
	RepositoryOwner string
}

func (o ListOptions) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	num := func(k string, n int64) {
		if n != 0 {
			v.Set(k, strconv.FormatInt(n, 10))
		}
	}
	set("status", o.Status)
	num("repository-id", o.RepositoryID)
	num("run-id", o.RunID)
	num("run-attempt", o.RunAttempt)
	set("runner-name", o.RunnerName)
	num("pull-request", o.PullRequest)
	num("installation-id", o.InstallationID)
	set("repository-owner", o.RepositoryOwner)
	return v
}

// List returns the account's clusters that match opts.
func (c *Client) List(ctx context.Context, opts ListOptions) ([]wire.Cluster, error) {
	var out wire.ClusterList
	if err := c.do(ctx, http.MethodGet, "/v1/clusters", opts.values(), nil, &out); err != nil {
		return nil, err
	}
	return out.Clusters, nil
}

// clusterPath returns the path of a cluster's resource, rejecting an empty
// id before it turns into a request for the collection.
func clusterPath(id, suffix string) (string, error) {
	if id == "" {
		return "", errors.New("cluster id is empty")
	}
	return "/v1/clusters/" + url.PathEscape(id) + suffix, nil
}

// clusterCall is the common shape of the per-cluster routes.
func (c *Client) clusterCall(ctx context.Context, method, id, suffix string, in any) (*wire.Cluster, error) {
	p, err := clusterPath(id, suffix)
	if err != nil {
		return nil, err
	}
	var out wire.Cluster
	if err := c.do(ctx, method, p, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns one cluster, without its kubeconfig.
func (c *Client) Get(ctx context.Context, id string) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodGet, id, "", nil)
}

// Kubeconfig returns the cluster with its kubeconfig.
func (c *Client) Kubeconfig(ctx context.Context, id string) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodGet, id, "/kubeconfig", nil)
}

// Stop stops a cluster, or terminates it where it was created without
// keep-cluster or forceTerminate is set (the seed API's rule).
func (c *Client) Stop(ctx context.Context, id string, forceTerminate bool) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodPost, id, "/stop", wire.StopRequest{ForceTerminate: &forceTerminate})
}

// Start starts a stopped cluster. The answer carries a fresh kubeconfig.
func (c *Client) Start(ctx context.Context, id string) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodPost, id, "/start", struct{}{})
}

// Terminate ends a cluster for good. A terminated cluster answers 409
// (IsConflict); an unknown one 404 (IsNotFound).
func (c *Client) Terminate(ctx context.Context, id string) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodPost, id, "/terminate", struct{}{})
}

// Extend moves the cluster's deadline by minutes.
func (c *Client) Extend(ctx context.Context, id string, minutes int) (*wire.Cluster, error) {
	return c.clusterCall(ctx, http.MethodPost, id, "/extend", wire.ExtendRequest{Minutes: &minutes})
}

// Keep keeps a running cluster for debugging after its job failed: its
// deadline becomes minutes from now (at most the account's maximum; the
// answer's ExpiresAt tells), and the GitHub App leaves it alone when the
// run completes. A cluster that is not running answers 409.
func (c *Client) Keep(ctx context.Context, id string, minutes int, reason string) (*wire.Cluster, error) {
	req := wire.KeepRequest{Minutes: &minutes}
	if reason != "" {
		req.Reason = &reason
	}
	return c.clusterCall(ctx, http.MethodPost, id, "/keep", req)
}

// Note adds a message to a cluster's event log (service tokens only).
func (c *Client) Note(ctx context.Context, id, message string) error {
	p, err := clusterPath(id, "/events")
	if err != nil {
		return err
	}
	var out wire.Event
	return c.do(ctx, http.MethodPost, p, nil, wire.NoteRequest{Message: &message}, &out)
}

// Events returns the recorded state changes of a cluster, oldest first.
func (c *Client) Events(ctx context.Context, id string) ([]wire.Event, error) {
	p, err := clusterPath(id, "/events")
	if err != nil {
		return nil, err
	}
	var out wire.EventList
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// Versions returns what the server can make: Kubernetes versions and
// cluster sizes.
func (c *Client) Versions(ctx context.Context) (*wire.Versions, error) {
	var out wire.Versions
	if err := c.do(ctx, http.MethodGet, "/v1/versions", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
