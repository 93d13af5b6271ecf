// Package notify mails a cluster's owner when the cluster starts, stops,
// terminates or is about to expire. Mail goes out through SMTP
// (github.com/wneessen/go-mail) from a bounded in-memory queue with retries,
// so that Notify never blocks or fails the API call that triggered it.
//
// Without an SMTP server configured the server uses Nop and logs that mail
// is off.
package notify

import (
	"context"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Nop is the Notifier used when no SMTP server is configured: it drops
// every notification.
type Nop struct{}

// Notify does nothing.
func (Nop) Notify(context.Context, cluster.Notification) {}

// Metrics counts mails; *metrics.Metrics implements it. result is "sent",
// "retried", "failed" or "dropped".
type Metrics interface {
	Mail(kind, result string)
}

// Clock is the time source of the retry backoff; clockwork's real and fake
// clocks implement it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type nopMetrics struct{}

func (nopMetrics) Mail(string, string) {}

var (
	_ cluster.Notifier = Nop{}
	_ cluster.Notifier = (*Mailer)(nil)
)
