package githubapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
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
	baseURL string
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
	var urls []github.ClientOptionsFunc
	if apiURL != "" && strings.TrimRight(apiURL, "/")+"/" != DefaultAPIURL {
		urls = append(urls, github.WithEnterpriseURLs(apiURL, apiURL))
	}
	gh, err := github.NewClient(urls...)
	if err != nil {
		return nil, fmt.Errorf("github app: api url %q: %w", apiURL, err)
	}
	base, err := url.Parse(gh.BaseURL())
	if err != nil || base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("github app: api url %q is not an http(s) url", apiURL)
	}
	apps.BaseURL = strings.TrimRight(base.String(), "/")
	return &AppClient{apps: apps, baseURL: base.String(), rt: rt, calls: newCallBounds(opts), clients: map[int64]*github.Client{}}, nil
}

// client returns the go-github client of an installation.
func (c *AppClient) client(installation int64) *github.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gh, ok := c.clients[installation]; ok {
		return gh
	}
	tr := ghinstallation.NewFromAppsTransport(c.apps, installation)
	// The base URL was checked by NewAppClient, so NewClient cannot fail.
	gh, _ := github.NewClient(github.WithHTTPClient(&http.Client{Transport: tr}), github.WithURLs(&c.baseURL, &c.baseURL))
	c.clients[installation] = gh
	return gh
}

// Permission implements GitHub. The request is made by hand through
// go-github's client because its GetPermissionLevel puts owner, repo and
// user into the path unescaped.
func (c *AppClient) Permission(ctx context.Context, installation int64, owner, repo, user string) (Access, error) {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	gh := c.client(installation)
	path := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(user))
	req, err := gh.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return Access{}, fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, err)
	}
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	resp, err := gh.Do(req, &out)
	if err != nil {
		// GitHub answers 404 for a user who is not a collaborator of a
		// private repository (and for a login that does not exist).
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return NoAccess, nil
		}
		return Access{}, githubError(fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, c.calls.explain(ctx, err)), c.calls.clock.Now())
	}
	return Access{Permission: out.Permission, Role: out.RoleName}, nil
}

// Comment implements GitHub.
func (c *AppClient) Comment(ctx context.Context, installation int64, owner, repo string, number int, body string) error {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	_, _, err := c.client(installation).Issues.CreateComment(ctx, owner, repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return githubError(fmt.Errorf("comment on %s/%s#%d: %w", owner, repo, number, c.calls.explain(ctx, err)), c.calls.clock.Now())
	}
	return nil
}

// React implements GitHub.
func (c *AppClient) React(ctx context.Context, installation int64, owner, repo string, commentID int64, content string) error {
	ctx, done := c.calls.bound(ctx, c.calls.timeout)
	defer done()
	_, _, err := c.client(installation).Reactions.CreateIssueCommentReaction(ctx, owner, repo, commentID, content)
	if err != nil {
		return githubError(fmt.Errorf("react %s to comment %d on %s/%s: %w", content, commentID, owner, repo, c.calls.explain(ctx, err)), c.calls.clock.Now())
	}
	return nil
}

// githubError sorts GitHub's errors for the queue: a rate limit (the
// primary one, with X-RateLimit-Remaining: 0, or a secondary one, on a
// 403 or a 429) becomes a *rateLimitedError saying when to try again;
// another 4xx that another try cannot change (a deleted comment, a
// removed repository, a revoked installation, a missing permission) is
// permanent; the rest (5xx, timeouts, 408) is retried. now is the App's
// clock.
func githubError(err error, now time.Time) error {
	var (
		er  *github.ErrorResponse
		he  *ghinstallation.HTTPError
		rle *github.RateLimitError
		ale *github.AbuseRateLimitError
	)
	switch {
	case errors.As(err, &rle):
		if at, ok := retryAt(rle.Response, now); ok {
			return &rateLimitedError{at: at, err: err}
		}
		// go-github refused to call before the reset it knows.
		return &rateLimitedError{at: rle.Rate.Reset.Time, err: err}
	case errors.As(err, &ale):
		if at, ok := retryAt(ale.Response, now); ok {
			return &rateLimitedError{at: at, err: err}
		}
		if ale.RetryAfter != nil {
			return &rateLimitedError{at: now.Add(*ale.RetryAfter), err: err}
		}
		return &rateLimitedError{secondary: true, err: err}
	}
	var resp *http.Response
	var message string
	switch {
	case errors.As(err, &er) && er.Response != nil:
		resp, message = er.Response, er.Message
	case errors.As(err, &he) && he.Response != nil:
		resp = he.Response
	}
	if resp == nil {
		return err
	}
	status := resp.StatusCode
	if at, ok := retryAt(resp, now); ok {
		return &rateLimitedError{at: at, err: err}
	}
	// GitHub's secondary limits answer 403 or 429 and say so in the
	// message; go-github only knows them by their documentation link.
	if status == http.StatusTooManyRequests || status == http.StatusForbidden && strings.Contains(strings.ToLower(message), "rate limit") {
		return &rateLimitedError{secondary: true, err: err}
	}
	if status >= 400 && status < 500 && status != http.StatusRequestTimeout {
		return permanent(err)
	}
	return err
}

// retryAt reads when a 403 or 429 answer allows the next request, as
// GitHub's rate limit documentation says: after Retry-After, else, with
// no request left, at X-RateLimit-Reset. ok is false when the answer
// names no time.
func retryAt(resp *http.Response, now time.Time) (at time.Time, ok bool) {
	if resp == nil || resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return time.Time{}, false
	}
	h := resp.Header
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return now.Add(time.Duration(secs) * time.Second), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return t, true
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if secs, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil && secs > 0 {
			return time.Unix(secs, 0), true
		}
	}
	return time.Time{}, false
}

// rateLimitedError is a call GitHub refused for a rate limit: the next
// try waits until at, or, for a secondary limit that named no time, a
// minute doubling with each try (secondaryWait).
type rateLimitedError struct {
	at        time.Time
	secondary bool
	err       error
}

func (e *rateLimitedError) Error() string { return e.err.Error() }
func (e *rateLimitedError) Unwrap() error { return e.err }

// maxRateLimitWait bounds a wait GitHub asks for: its primary window is an
// hour.
const maxRateLimitWait = time.Hour

// secondaryWait is the wait after try n when a secondary rate limit named
// no time: at least a minute, GitHub says, then exponentially longer; up
// to 16 minutes.
func secondaryWait(n int) time.Duration {
	return time.Minute << min(max(n-1, 0), 4)
}

// retryTime is when the try after try n, which failed with err, is due:
// when GitHub said for a rate limit, else after the backoff.
func retryTime(now time.Time, n int, err error) time.Time {
	next := now.Add(backoff(n))
	rl, ok := errors.AsType[*rateLimitedError](err)
	switch {
	case !ok:
		return next
	case rl.secondary:
		return now.Add(secondaryWait(n))
	case rl.at.After(now.Add(maxRateLimitWait)):
		return now.Add(maxRateLimitWait)
	case rl.at.After(now):
		return rl.at
	default:
		// A reset already past by our clock: another clock's view.
		return next
	}
}
