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

type nopMetrics struct{}

func (nopMetrics) Mail(string, string) {}

var (
	_ cluster.Notifier = Nop{}
	_ cluster.Notifier = (*Mailer)(nil)
)
