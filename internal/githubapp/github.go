package githubapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// GitHub is the part of GitHub's REST API the App calls, each time as one
// installation.
type GitHub interface {
	// Permission returns a user's access to a repository. A user GitHub
	// does not know as a collaborator (its 404) has NoAccess.
	Permission(ctx context.Context, installation int64, owner, repo, user string) (Access, error)
	// Comment writes a comment on an issue or pull request.
	Comment(ctx context.Context, installation int64, owner, repo string, number int, body string) error
	// React adds a reaction ("eyes", "rocket", "confused") to an issue
	// comment. Adding one that is there already succeeds.
	React(ctx context.Context, installation int64, owner, repo string, commentID int64, content string) error
}

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// AppClient is GitHub through go-github, authenticated as an installation of
// the App: ghinstallation signs the App's JWT, trades it for an
// installation token and refreshes the token before it expires. One
// transport per installation is kept, so tokens are cached.
type AppClient struct {
	apps    *ghinstallation.AppsTransport
	baseURL *url.URL
	rt      http.RoundTripper
	calls   callBounds

	mu      sync.Mutex // guards clients
	clients map[int64]*github.Client
}

var _ GitHub = (*AppClient)(nil)

// NewAppClient returns an AppClient for App appID with its PEM private key.
// apiURL is the REST API root: empty for github.com, a GitHub Enterprise
// Server URL ("https://ghe.example.com", "/api/v3/" is added as go-github
// does), or a fake's URL. rt may be nil (http.DefaultTransport). Each
// call, the installation token it may need included, has the timeout of
// the options (WithTimeout, default DefaultRequestTimeout).
func NewAppClient(appID int64, privateKeyPEM []byte, apiURL string, rt http.RoundTripper, opts ...ClientOption) (*AppClient, error) {
	if appID <= 0 {
		return nil, fmt.Errorf("github app: app id must be positive, got %d", appID)
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	apps, err := ghinstallation.NewAppsTransport(rt, appID, privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github app: private key: %w", err)
	}
	gh := github.NewClient(nil)
	if apiURL != "" && strings.TrimRight(apiURL, "/")+"/" != DefaultAPIURL {
		if gh, err = gh.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("github app: api url %q: %w", apiURL, err)
		}
	}
	if gh.BaseURL.Scheme != "http" && gh.BaseURL.Scheme != "https" || gh.BaseURL.Host == "" {
		return nil, fmt.Errorf("github app: api url %q is not an http(s) url", apiURL)
	}
	apps.BaseURL = strings.TrimRight(gh.BaseURL.String(), "/")
	return &AppClient{apps: apps, baseURL: gh.BaseURL, rt: rt, calls: newCallBounds(opts), clients: map[int64]*github.Client{}}, nil
}

// client returns the go-github client of an installation.
func (c *AppClient) client(installation int64) *github.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gh, ok := c.clients[installation]; ok {
		return gh
	}
	tr := ghinstallation.NewFromAppsTransport(c.apps, installation)
	gh := github.NewClient(&http.Client{Transport: tr})
	base := *c.baseURL
	gh.BaseURL = &base
	c.clients[installation] = gh
	return gh
}

// Permission implements GitHub. go-github v60 does not decode role_name,
// so the request is made through its client with a struct that does.
func (c *AppClient) Permission(ctx context.Context, installation int64, owner, repo, user string) (Access, error) {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	gh := c.client(installation)
	path := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(user))
	req, err := gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return Access{}, fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, err)
	}
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	resp, err := gh.Do(ctx, req, &out)
	if err != nil {
		// GitHub answers 404 for a user who is not a collaborator of a
		// private repository (and for a login that does not exist).
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return NoAccess, nil
		}
		return Access{}, githubError(fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, c.calls.explain(ctx, err)))
	}
	return Access{Permission: out.Permission, Role: out.RoleName}, nil
}

// Comment implements GitHub.
func (c *AppClient) Comment(ctx context.Context, installation int64, owner, repo string, number int, body string) error {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	_, _, err := c.client(installation).Issues.CreateComment(ctx, owner, repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return githubError(fmt.Errorf("comment on %s/%s#%d: %w", owner, repo, number, c.calls.explain(ctx, err)))
	}
	return nil
}

// React implements GitHub.
func (c *AppClient) React(ctx context.Context, installation int64, owner, repo string, commentID int64, content string) error {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	_, _, err := c.client(installation).Reactions.CreateIssueCommentReaction(ctx, owner, repo, commentID, content)
	if err != nil {
		return githubError(fmt.Errorf("react %s to comment %d on %s/%s: %w", content, commentID, owner, repo, c.calls.explain(ctx, err)))
	}
	return nil
}

// githubError marks the answers that another try cannot change as
// permanent: a 4xx other than rate limits and timeouts (a deleted comment,
// a removed repository, a revoked installation, a missing permission).
func githubError(err error) error {
	var (
		er  *github.ErrorResponse
		he  *ghinstallation.HTTPError
		rle *github.RateLimitError
		ale *github.AbuseRateLimitError
	)
	if errors.As(err, &rle) || errors.As(err, &ale) {
		return err
	}
	var status int
	switch {
	case errors.As(err, &er) && er.Response != nil:
		status = er.Response.StatusCode
	case errors.As(err, &he) && he.Response != nil:
		status = he.Response.StatusCode
	}
	if status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		return permanent(err)
	}
	return err
}
