package cluster

import "fmt"

// Default account limits, used when an account is created without them.
const (
	DefaultMaxClusters        = 5
	DefaultMaxMinutesToLive   = 24 * 60
	DefaultMaxStoppedClusters = 5
)

// Account owns clusters. Its limits bound what its tokens may ask for.
type Account struct {
	ID   int64
	Name string
	// MaxClusters bounds the account's pending and running clusters; 0
	// suspends the account: it may not create or start clusters.
	MaxClusters int
	// MaxMinutesToLive bounds minutes-to-live and the remaining time after
	// an extend; it is at least 1.
	MaxMinutesToLive int
	// MaxStoppedClusters bounds the account's stopped clusters, which are
	// not counted by MaxClusters; 0: none may be kept.
	MaxStoppedClusters int
	// GitHubInstallationID ties a GitHub App installation to the account
	// (0: none).
	GitHubInstallationID int64
}

// Principal is who makes a request: an account reached through a SMEK token
// or a verified OIDC token.
type Principal struct {
	Account Account
	// TokenID is the SMEK token used (0 for OIDC).
	TokenID int64
	// AllowPrivileged is true when the credential may create privileged
	// clusters.
	AllowPrivileged bool
	// Service credentials (the GitHub App) may act on every account's
	// clusters.
	Service bool
	// Actor names the credential in events and logs, never its secret:
	// "token:smek_ab12" or "oidc:owner/repo".
	Actor string
	// Run is the verified run metadata of an OIDC token; nil for SMEK
	// tokens.
	Run *RunMetadata
}

// The errors of the account limits, the same wherever a limit is checked.

// SuspendedError refuses a create or start of an account whose
// max-clusters is 0.
func SuspendedError(account string) *Error {
	return Errorf(ESUSPENDED, "", "account %q is suspended (its max-clusters is 0): it may not create or start clusters; ask an operator to raise it", account)
}

// LimitError refuses a create or start that would take the account over its
// max-clusters.
func LimitError(max int) *Error {
	return Errorf(ELIMIT, "", "the account has reached its limit of %s running in parallel (max-clusters); stop or terminate one first", plural(max, "cluster"))
}

// StoppedLimitError refuses a stop that would take the account over its
// max-stopped-clusters.
func StoppedLimitError(max int) *Error {
	if max == 0 {
		return Errorf(ELIMIT, "", "the account may not keep stopped clusters (its max-stopped-clusters is 0); terminate the cluster instead (force-terminate)")
	}
	return Errorf(ELIMIT, "", "the account has reached its limit of %s (max-stopped-clusters); terminate one of them first, or terminate this one (force-terminate)", plural(max, "stopped cluster"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
