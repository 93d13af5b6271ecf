package cluster

import "time"

// CreateInput is a create request as a client (the API, the GitHub App)
// made it; nil fields take their defaults.
type CreateInput struct {
	K8sVersion        *string
	MinutesToLive     *int
	KeepCluster       *bool
	NotificationEmail *string
	Privileged        *bool
	Size              *string
	// Wait bounds the wait for a ready cluster (nil: the default).
	Wait *time.Duration
	// Run is the run metadata the client sent; it is kept but marked
	// unverified. A principal with verified metadata (OIDC) overrides it.
	Run *RunMetadata
	// RequireEmail makes notification-email mandatory, as on the seed API.
	RequireEmail bool
}
