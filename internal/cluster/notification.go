package cluster

import (
	"context"
	"time"
)

// NotificationKind says what happened to a cluster.
type NotificationKind string

// The notifications a cluster's owner gets by mail.
const (
	NotifyStarted    NotificationKind = "started"    // created or started again
	NotifyStopped    NotificationKind = "stopped"    // stopped, keeping its data
	NotifyTerminated NotificationKind = "terminated" // gone for good
	NotifyExpiring   NotificationKind = "expiring"   // 10 minutes before the deadline
	// NotifyStoppedExpiring warns a day before a stopped cluster reaches
	// the maximum stopped lifetime and is terminated.
	NotifyStoppedExpiring NotificationKind = "stopped-expiring"
	// NotifyFailed says the cluster was lost while running (its API no
	// longer answered) and is marked failed.
	NotifyFailed NotificationKind = "failed"
)

// Notification tells a cluster's owner about a change.
type Notification struct {
	Kind    NotificationKind
	Cluster Cluster
	// Cause is what made it happen: "api", "ttl", "webhook", "reconciler".
	Cause string
	// Reason, when set, says in words why it happened where the cause
	// alone does not ("stopped for longer than ...").
	Reason string
	At     time.Time
}

// Notifier delivers notifications. Notify must not block for long and must
// not fail the caller: delivery is asynchronous with its own retries.
type Notifier interface {
	Notify(ctx context.Context, n Notification)
}
