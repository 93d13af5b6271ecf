// Package client is the Go client of SMEK's /v1 HTTP API. The action, the
// GitHub App and the CLI use it.
//
// It depends on the standard library and on internal/wire, internal/problem
// and internal/cluster, which are standard library only themselves, so that
// the action binary stays small: no SQLite, no cloud SDK, no client-go.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/smek/action/internal/wire"
)

// maxBody caps what the client reads from one answer. A kubeconfig is a few
// KiB; a list of clusters of a busy account stays well below this.
const maxBody = 8 << 20

// Client calls one SMEK server with one credential. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. The default is a client without a
// global timeout: create requests are held by the server up to their wait
// budget, so every call is bounded by its context instead.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithUserAgent sets the User-Agent header sent with every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client for the server at baseURL (for example
// "https://smek.example.com"; a path prefix is kept) that sends token as
// its Bearer credential. token is a SMEK token or a GitHub OIDC token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	if strings.TrimSpace(baseURL) == "" {
		return nil, errors.New("api url is empty")
	}
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("parse api url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("api url %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("api url %q: no host", baseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("api url %q: credentials in the url are not supported, use the token", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, http: &http.Client{}, userAgent: "smek-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server's base URL as the client uses it.
func (c *Client) BaseURL() string { return c.base.String() }

// do sends one request. in, when not nil, is sent as JSON; out, when not
// nil, receives the JSON answer. Answers outside 2xx become *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	body, err := c.send(ctx, method, path, query, wire.MediaJSON, in)
	if err != nil {
		return err
	}
	defer body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send performs the request with in, when not nil, as its JSON body and
// returns the body of a 2xx answer.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, accept string, in any) (io.ReadCloser, error) {
	var b body
	if in != nil {
		enc, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		b = body{r: bytes.NewReader(enc), size: int64(len(enc)), contentType: wire.MediaJSON}
	}
	return c.sendBody(ctx, method, path, query, accept, b)
}

// body is a request body: r of size bytes (-1: unknown, sent chunked) of
// media type contentType. The zero body sends none.
type body struct {
	r           io.Reader
	size        int64
	contentType string
}

// sendBody performs the request and returns the body of a 2xx answer.
func (c *Client) sendBody(ctx context.Context, method, path string, query url.Values, accept string, b body) (io.ReadCloser, error) {
	// path is in escaped form (cluster ids go through url.PathEscape).
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.Path = c.base.Path + unescaped
	u.RawPath = c.base.EscapedPath() + path
	u.RawQuery = query.Encode()

	req, err := http.NewRequestWithContext(ctx, method, u.String(), b.r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept+", "+wire.MediaProblem)
	if b.r != nil {
		req.Header.Set("Content-Type", b.contentType)
		// NewRequest knows the size of a bytes.Reader only; any other
		// reader's ContentLength of 0 means "unknown": sent chunked.
		req.ContentLength = max(b.size, 0)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats method and URL; keep it, it names the server.
		return nil, &TransportError{Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, newError(method, path, resp)
	}
	return resp.Body, nil
}

// TransportError is a request that got no HTTP answer: the server is
// unreachable, the connection broke, or the context ended.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err is a request that got no HTTP answer for
// another reason than its context ending.
func IsUnreachable(err error) bool {
	te, ok := errors.AsType[*TransportError](err)
	if !ok {
		return false
	}
	return !errors.Is(te.Err, context.Canceled) && !errors.Is(te.Err, context.DeadlineExceeded)
}
