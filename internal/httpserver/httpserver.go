// Package httpserver makes SMEK's http.Servers. Every listener gets the
// same protection against clients that send slowly or too much before
// anyone knows who they are: a deadline for a request's head, one for the
// whole request with its body, one for an idle kept-alive connection, and
// a cap on the head's size. There is no deadline for writing an answer: a
// create may wait up to 30 minutes for a cluster before it answers.
package httpserver

import (
	"log/slog"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take. A zero field takes its
// default.
type Timeouts struct {
	// Header bounds reading a request's line and headers, from its first
	// byte. Default 10 s.
	Header time.Duration
	// Body is the time a request's body may take on top: the whole
	// request must be read within Header + Body of its first byte.
	// Default 15 s: GitHub gives up on a webhook after 10 s, and the
	// API's bodies are at most 64 KiB.
	Body time.Duration
	// Idle bounds the wait for the next request on a kept-alive
	// connection. Default 2 min.
	Idle time.Duration
}

// Defaults of Timeouts.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 15 * time.Second
	DefaultIdleTimeout   = 2 * time.Minute
)

// MaxHeaderBytes caps a request's head (net/http's default is 1 MiB). The
// largest header SMEK reads is a bearer token, an OIDC JWT of at most
// 16 KiB.
const MaxHeaderBytes = 64 << 10

func (t Timeouts) withDefaults() Timeouts {
	if t.Header <= 0 {
		t.Header = DefaultHeaderTimeout
	}
	if t.Body <= 0 {
		t.Body = DefaultBodyTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// New returns a server for h with the timeouts t. log, when not nil,
// receives the server's own errors (accept failures, panics) at warn
// level.
//
// The read deadline (http.Server.ReadTimeout) does not cut long answers:
// net/http lifts it once the body has been read, when it starts watching
// the connection for a client that goes away, so a handler may work for
// as long as it needs (TestLongAnswersOutliveTheDeadlines holds it to
// that). WriteTimeout stays unset: it would cut them.
func New(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	t = t.withDefaults()
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.Header,
		ReadTimeout:       t.Header + t.Body,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if log != nil {
		s.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return s
}
