package githubapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// AsApp is the "as" argument of Clusters calls made by the App itself: its
// service credential reaches every account's clusters. The cleanup acts so.
const AsApp int64 = 0

// Clusters is SMEK's cluster API as the App uses it. as is the GitHub App
// installation the App acts for: the server acts as the account linked to
// it, so another account's cluster is ENOTFOUND and creates count against
// that account's limits. AsApp acts as the App itself (every account).
//
// Errors carry a *cluster.Error where the server gave a reason
// (cluster.ErrorCode tells ENOTFOUND, ECONFLICT, ELIMIT...).
type Clusters interface {
	// List returns the clusters that match f; without f.Statuses, those
	// that still exist (pending, running, stopped, terminating), as GET
	// /v1/clusters has it. f.AccountID and f.Limit are not used: as scopes.
	List(ctx context.Context, as int64, f cluster.Filter) ([]cluster.Cluster, error)
	Get(ctx context.Context, as int64, id string) (cluster.Cluster, error)
	Create(ctx context.Context, as int64, in cluster.CreateInput) (cluster.Cluster, error)
	Stop(ctx context.Context, as int64, id string) (cluster.Cluster, error)
	Start(ctx context.Context, as int64, id string) (cluster.Cluster, error)
	Extend(ctx context.Context, as int64, id string, minutes int) (cluster.Cluster, error)
	Terminate(ctx context.Context, as int64, id string) (cluster.Cluster, error)
	// Note records a message in the cluster's event log.
	Note(ctx context.Context, as int64, id string, message string) error
}

// APIClusters is Clusters over SMEK's /v1 HTTP API with a service token:
// what the standalone App process uses.
type APIClusters struct {
	baseURL, token string
	transport      http.RoundTripper
	calls          callBounds

	mu      sync.Mutex // guards clients
	clients map[int64]*client.Client
}

var _ Clusters = (*APIClusters)(nil)

// NewAPIClusters returns Clusters that call the SMEK server at baseURL with
// the service token. transport may be nil (http.DefaultTransport). Each
// call has the timeout of the options (WithTimeout, default
// DefaultRequestTimeout); a create has its wait on top.
func NewAPIClusters(baseURL, token string, transport http.RoundTripper, opts ...ClientOption) (*APIClusters, error) {
	if token == "" {
		return nil, errors.New("smek api: the service token is empty")
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	c := &APIClusters{baseURL: baseURL, token: token, transport: transport, calls: newCallBounds(opts), clients: map[int64]*client.Client{}}
	if _, err := c.client(AsApp); err != nil {
		return nil, err
	}
	return c, nil
}

// client returns the API client that acts for installation as.
func (c *APIClusters) client(as int64) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[as]; ok {
		return cl, nil
	}
	var rt http.RoundTripper = asApp{next: c.transport}
	if as != AsApp {
		rt = onBehalf{installation: strconv.FormatInt(as, 10), next: c.transport}
	}
	cl, err := client.New(c.baseURL, c.token, client.WithHTTPClient(&http.Client{Transport: rt}),
		client.WithUserAgent("smek-github-app"))
	if err != nil {
		return nil, fmt.Errorf("smek api: %w", err)
	}
	c.clients[as] = cl
	return cl, nil
}

// onBehalf adds the on-behalf-of header to every request.
type onBehalf struct {
	installation string
	next         http.RoundTripper
}

func (o onBehalf) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(wire.HeaderOnBehalfOf, o.installation)
	return o.next.RoundTrip(r)
}

// asApp marks the App's own calls (cleanup) as webhook work, so that the
// event log says so; only service tokens may do so.
type asApp struct{ next http.RoundTripper }

func (a asApp) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(wire.HeaderCause, "webhook")
	return a.next.RoundTrip(r)
}

// List implements Clusters.
func (c *APIClusters) List(ctx context.Context, as int64, f cluster.Filter) ([]cluster.Cluster, error) {
	cl, err := c.client(as)
	if err != nil {
		return nil, err
	}
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	list, err := cl.List(ctx, listOptions(f))
	if err != nil {
		return nil, apiError(c.calls.explain(ctx, err))
	}
	out := make([]cluster.Cluster, len(list))
	for i, w := range list {
		out[i] = w.Domain()
	}
	return out, nil
}

// listOptions is f as the query of GET /v1/clusters.
func listOptions(f cluster.Filter) client.ListOptions {
	statuses := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		statuses[i] = string(s)
	}
	return client.ListOptions{
		Status: strings.Join(statuses, ","), RepositoryID: f.RepositoryID, RunID: f.RunID, RunAttempt: f.RunAttempt,
		RunnerName: f.Runner, PullRequest: f.PullRequest, InstallationID: f.InstallationID, RepositoryOwner: f.RepositoryOwner,
	}
}

// Get implements Clusters.
func (c *APIClusters) Get(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return c.call(ctx, as, c.calls.timeout, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Get(ctx, id)
	})
}

// defaultCreateWait is the server's wait for a ready cluster when a create
// names none.
const defaultCreateWait = 5 * time.Minute

// Create implements Clusters. The answer's kubeconfig does not reach the
// App: the domain's cluster has none, and the App never shows one. The
// server may hold a create for its wait (the request's, else five
// minutes), so the call has that on top of its timeout.
func (c *APIClusters) Create(ctx context.Context, as int64, in cluster.CreateInput) (cluster.Cluster, error) {
	wait := defaultCreateWait
	if in.Wait != nil && *in.Wait > 0 {
		wait = *in.Wait
	}
	return c.call(ctx, as, c.calls.timeout+wait, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Create(ctx, createRequest(in))
	})
}

// createRequest is in as the body of POST /v1/clusters.
func createRequest(in cluster.CreateInput) wire.CreateRequest {
	req := wire.CreateRequest{
		K8sVersion: in.K8sVersion, MinutesToLive: in.MinutesToLive, KeepCluster: in.KeepCluster,
		NotificationEmail: in.NotificationEmail, EnablePrivileged: in.Privileged, ClusterSize: in.Size,
	}
	if in.Run != nil {
		req.Run = wire.RunOf(*in.Run)
	}
	if in.Wait != nil {
		w := in.Wait.String()
		req.Wait = &w
	}
	return req
}

// Stop implements Clusters.
func (c *APIClusters) Stop(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return c.call(ctx, as, c.calls.timeout, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Stop(ctx, id, false)
	})
}

// Start implements Clusters.
func (c *APIClusters) Start(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return c.call(ctx, as, c.calls.timeout, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Start(ctx, id)
	})
}

// Extend implements Clusters.
func (c *APIClusters) Extend(ctx context.Context, as int64, id string, minutes int) (cluster.Cluster, error) {
	return c.call(ctx, as, c.calls.timeout, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Extend(ctx, id, minutes)
	})
}

// Terminate implements Clusters.
func (c *APIClusters) Terminate(ctx context.Context, as int64, id string) (cluster.Cluster, error) {
	return c.call(ctx, as, c.calls.timeout, func(ctx context.Context, cl *client.Client) (*wire.Cluster, error) {
		return cl.Terminate(ctx, id)
	})
}

// call makes one call as installation as, bounded by timeout.
func (c *APIClusters) call(ctx context.Context, as int64, timeout time.Duration, fn func(context.Context, *client.Client) (*wire.Cluster, error)) (cluster.Cluster, error) {
	cl, err := c.client(as)
	if err != nil {
		return cluster.Cluster{}, err
	}
	ctx, done := c.calls.bound(ctx, timeout)
	defer done()
	out, err := fn(ctx, cl)
	if err != nil {
		return cluster.Cluster{}, apiError(c.calls.explain(ctx, err))
	}
	return out.Domain(), nil
}

// apiError turns an API answer outside 2xx into a *cluster.Error with the
// server's code and user-safe message, so that the App decides the same
// way whether it is embedded or not.
func apiError(err error) error {
	ce, ok := errors.AsType[*client.Error](err)
	if !ok {
		return err
	}
	code := cluster.Code(ce.Problem.Code)
	if code == "" {
		code = cluster.EINTERNAL
	}
	return &cluster.Error{Code: code, Field: ce.Problem.Field, Message: ce.Message(),
		Supported: ce.Problem.Supported, Err: err}
}

// Note implements Clusters.
func (c *APIClusters) Note(ctx context.Context, as int64, id string, message string) error {
	cl, err := c.client(as)
	if err != nil {
		return err
	}
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	return c.calls.explain(ctx, cl.Note(ctx, id, message))
}
