package cluster

// Default account limits, used when an account is created without them.
const (
	DefaultMaxClusters      = 5
	DefaultMaxMinutesToLive = 24 * 60
)

// Account owns clusters. Its limits bound what its tokens may ask for.
type Account struct {
	ID   int64
	Name string
	// MaxClusters bounds the account's pending and running clusters.
	MaxClusters int
	// MaxMinutesToLive bounds minutes-to-live and the remaining time after
	// an extend.
	MaxMinutesToLive int
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
