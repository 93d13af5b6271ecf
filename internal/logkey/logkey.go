// Package logkey names the attribute keys of SMEK's log lines, so that one
// thing is logged under one key everywhere and a search for it finds every
// line: a pool member is always Member, never "server"; an error is always
// Err, never "error". Values that may be secrets (tokens, passwords,
// private keys, kubeconfigs) have no key here and are never logged.
package logkey

// Who and what a line is about.
const (
	// Component names the package or subsystem that logs
	// (logger.With(logkey.Component, "pool")).
	Component = "component"
	// Cluster is a cluster's ID (cluster.ID). The action's state key
	// "cluster_id" is not a log key.
	Cluster = "cluster"
	// Member is a pool member's ID.
	Member = "member"
	// Server is a cloud server's ID or name at the backend (Hetzner, or
	// its fake), not a pool member.
	Server = "server"
	// Flavor is a cluster flavor (cluster.Flavor).
	Flavor = "flavor"
	// State is a member's or cluster's state.
	State = "state"
	// Account is an account's name.
	Account = "account"
	// User is a user name: a GitHub login or the SMTP user.
	User = "user"
	// Role is a GitHub user's role in a repository or organisation.
	Role = "role"
	// Repository is a GitHub repository, owner/name.
	Repository = "repository"
	// PolicyID is an OIDC trust policy's ID.
	PolicyID = "policy_id"
	// Issuer is an OIDC issuer's URL.
	Issuer = "issuer"
	// Backend names a pool backend ("local", "hetzner").
	Backend = "backend"
	// Firewall is a Hetzner firewall's name.
	Firewall = "firewall"
	// Pod is a Kubernetes pod, namespace/name.
	Pod = "pod"
	// ID and Name identify a cloud resource whose kind the message says.
	ID   = "id"
	Name = "name"
)

// GitHub webhooks.
const (
	// Delivery is a webhook delivery's ID (X-GitHub-Delivery).
	Delivery = "delivery"
	// Event is a webhook's event name (X-GitHub-Event).
	Event = "event"
	// Installation is a GitHub App installation's ID.
	Installation = "installation"
)

// What happened.
const (
	// Err is an error.
	Err = "err"
	// Reason says why, in words.
	Reason = "reason"
	// Cause is what caused a change ("api", "ttl", "github", ...).
	Cause = "cause"
	// Kind is the kind of a notification, event or action.
	Kind = "kind"
	// Status is an HTTP status code or a backend's status word.
	Status = "status"
	// Code is an error code.
	Code = "code"
	// Count is how many things a step handled.
	Count = "count"
	// Attempt counts the tries of a retried step, from 1.
	Attempt = "attempt"
	// RetryIn is the wait before the next try.
	RetryIn = "retry_in"
	// Took is how long a step took.
	Took = "took"
	// Suppressed counts the lines a rate limit left out.
	Suppressed = "suppressed"
)

// HTTP and the network.
const (
	// Path is a request's URL path, or a file's path.
	Path = "path"
	// RequestID is the request's ID (X-Request-Id).
	RequestID = "request_id"
	// ContentLength is a request body's declared length.
	ContentLength = "content_length"
	// OpsAddr is the address of the status page and /metrics.
	OpsAddr = "ops_addr"
	// Listener is the address a proxy listens on.
	Listener = "listener"
	// Target is the host:port a proxy was asked to reach.
	Target = "target"
	// Addresses are the IP addresses a name resolved to.
	Addresses = "addresses"
)
