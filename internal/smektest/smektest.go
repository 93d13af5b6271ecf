// Package smektest starts a complete SMEK server — SQLite in a temporary
// folder, the local backend with real control planes — for end-to-end tests
// of the API, the Action, the App and the tenant policy.
package smektest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/local/localtest"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/sqlite"
)

// KubeBin returns the folder with the Kubernetes binaries, or skips the
// test without them (fails under CI).
func KubeBin(t testing.TB) string { return localtest.KubeBin(t) }

// Options tune the server a test starts.
type Options struct {
	// PoolSize is the warm pool of baseline clusters (0: cold creates).
	PoolSize int
	// PoolSizePrivileged is the warm pool of privileged clusters.
	PoolSizePrivileged int
	// DataDir reuses a data folder, to restart a server on the same state.
	DataDir string
	// DefaultWait bounds a create's wait (default 2 min).
	DefaultWait time.Duration
	// Configure, when set, may change the server configuration further.
	Configure func(*server.Config)
	Logger    *slog.Logger
	// Clock is the server's clock (nil: the wall clock).
	Clock clockwork.Clock
}

// SMEK is a running test server.
type SMEK struct {
	*server.Server
	// URL is the server's base URL.
	URL string
	// DataDir holds its state.
	DataDir string
	t       testing.TB
	stopped bool
}

// Start starts a SMEK server and stops it when the test ends.
func Start(t testing.TB, opts Options) *SMEK {
	t.Helper()
	bin := KubeBin(t)
	dir := opts.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	if opts.DefaultWait == 0 {
		opts.DefaultWait = 2 * time.Minute
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{
		Listener: l, DataDir: dir, Backend: "local", KubeBin: bin,
		PoolSize: opts.PoolSize, PoolSizePrivileged: opts.PoolSizePrivileged,
		DefaultWait: opts.DefaultWait, Logger: opts.Logger, Clock: opts.Clock,
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	// After the last server on dir has stopped (which keeps its clusters
	// for a restart), their nodes go: nothing of the test stays on the host.
	t.Cleanup(func() {
		if err := local.RemoveNodes(dir); err != nil {
			t.Errorf("remove the local nodes of %s: %v", dir, err)
		}
	})
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &SMEK{Server: srv, URL: srv.URL(), DataDir: dir, t: t}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down (once); its data folder stays for a restart.
func (s *SMEK) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.t.Errorf("shut SMEK down: %v", err)
	}
}

// TokenOptions are the rights of a test token.
type TokenOptions struct {
	AllowPrivileged  bool
	Service          bool
	MaxClusters      int
	MaxMinutesToLive int
}

// Token creates a token for account (created if new) and returns its secret.
func (s *SMEK) Token(account string, o TokenOptions) string {
	s.t.Helper()
	return CreateToken(s.t, s.DB, account, o)
}

// CreateToken creates a token in db, as `provisioner token create` does.
func CreateToken(t testing.TB, db *sqlite.DB, account string, o TokenOptions) string {
	t.Helper()
	var limits sqlite.AccountLimits
	if o.MaxClusters > 0 {
		limits.MaxClusters = &o.MaxClusters
	}
	if o.MaxMinutesToLive > 0 {
		limits.MaxMinutesToLive = &o.MaxMinutesToLive
	}
	ctx := context.Background()
	a, err := db.EnsureAccount(ctx, account, limits)
	if err != nil {
		t.Fatal(err)
	}
	secret, prefix, hash := auth.NewToken()
	if _, err := db.CreateToken(ctx, sqlite.NewToken{AccountID: a.ID, Prefix: prefix, Hash: hash, AllowPrivileged: o.AllowPrivileged, Service: o.Service}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// WaitReady waits until at least n members of the given flavor kind are
// ready.
func (s *SMEK) WaitReady(n int, privileged bool) {
	s.t.Helper()
	s.WaitPool(fmt.Sprintf("%d ready", n), n, func(p PoolCounts) bool {
		if privileged {
			return p.ReadyPrivileged >= n
		}
		return p.Ready >= n
	})
}

// PoolCounts counts the live members of the test server's pool.
type PoolCounts struct {
	// Ready and ReadyPrivileged are the ready members of each kind.
	Ready, ReadyPrivileged int
	// Booting members are being made ready: created or rebuilt.
	Booting int
	// Cleaning members served a cluster and wait to be rebuilt or
	// destroyed.
	Cleaning int
	// LastReady is when the member that became ready last did.
	LastReady time.Time
}

// WaitPool waits, on the pool's signals, until ok holds for the pool's
// counts; size (the members the wait is for) bounds how long.
func (s *SMEK) WaitPool(what string, size int, ok func(PoolCounts) bool) {
	s.t.Helper()
	// A guard against a pool that never fills, not a speed check: the
	// pool boots Parallel (2) members at a time, and on 2 busy cores a
	// local control plane can take half a minute.
	bound := max(5*time.Minute, time.Duration(size)*30*time.Second)
	timeout := time.After(bound)
	tick := time.NewTicker(time.Second) // a member destroyed signals nothing
	defer tick.Stop()
	for {
		ready := s.Pool.Ready()
		members, err := s.DB.Members(context.Background(), "local")
		if err != nil {
			s.t.Fatal(err)
		}
		var c PoolCounts
		for _, m := range members {
			switch m.State {
			case cluster.MemberReady:
				if m.ReadyAt.After(c.LastReady) {
					c.LastReady = m.ReadyAt
				}
				if m.Flavor.Privileged {
					c.ReadyPrivileged++
				} else {
					c.Ready++
				}
			case cluster.MemberCreating, cluster.MemberBootstrapping, cluster.MemberRebuilding:
				c.Booting++
			case cluster.MemberDirty, cluster.MemberFailed:
				c.Cleaning++
			}
		}
		if ok(c) {
			return
		}
		select {
		case <-ready:
		case <-tick.C:
		case <-timeout:
			s.t.Fatalf("pool: not %s after %s: %+v", what, bound, c)
		}
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
