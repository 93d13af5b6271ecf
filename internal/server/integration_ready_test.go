package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
)

// brokenStore is a pool store whose database fails.
type brokenStore struct{ pool.Store }

func (brokenStore) Members(context.Context, string) ([]cluster.Member, error) {
	return nil, errors.New("disk I/O error")
}

// namedBackend is a backend the pool never gets to use.
type namedBackend struct{ pool.Backend }

func (namedBackend) Name() string { return "fake" }

// TestIntegrationReadyReflectsThePool: the backend's part of /readyz fails
// while the pool recovers what the last run left, and for good once the
// pool has stopped on an error.
func TestIntegrationReadyReflectsThePool(t *testing.T) {
	s := &Server{Pool: pool.New(brokenStore{}, namedBackend{}, pool.Config{}), log: slog.New(slog.DiscardHandler)}
	if err := s.ready(t.Context()); err == nil || !strings.Contains(err.Error(), "recovering") {
		t.Fatalf("before the pool ran: %v, want still recovering", err)
	}
	s.runPool(t.Context()) // returns at once: the store fails
	err := s.ready(t.Context())
	if err == nil || !strings.Contains(err.Error(), "the pool stopped") || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("after the pool stopped: %v, want the pool's error", err)
	}
}
