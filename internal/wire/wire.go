// Package wire holds the JSON shapes of SMEK's HTTP API, shared by the server
// (internal/api) and its Go client (internal/client). It depends on the
// standard library only, so that the action binary stays lean.
//
// Field names follow the seed API: lower-case words joined by hyphens.
package wire

import "time"

// Media types the API speaks.
const (
	MediaJSON    = "application/json"
	MediaProblem = "application/problem+json"
	MediaYAML    = "application/yaml"
	MediaShell   = "text/x-shellscript"
)

// CreateRequest is the body of POST /create and POST /v1/clusters. Pointers
// tell "absent" (take the default) from a zero value.
type CreateRequest struct {
	K8sVersion        *string `json:"k8s-version,omitempty"`
	MinutesToLive     *int    `json:"minutes-to-live,omitempty"`
	KeepCluster       *bool   `json:"keep-cluster,omitempty"`
	NotificationEmail *string `json:"notification-email,omitempty"`
	EnablePrivileged  *bool   `json:"enable-privileged,omitempty"`
	ClusterSize       *string `json:"cluster-size,omitempty"`
	// Wait bounds how long the request waits for a ready cluster when the
	// pool is empty, as a Go duration ("90s", "5m"). Default 5m.
	Wait *string `json:"wait,omitempty"`
	// Run is the CI run that asks for the cluster. With a SMEK token it is
	// kept but marked unverified; with an OIDC token the server takes it from
	// the verified claims instead.
	Run *RunMetadata `json:"run,omitempty"`
}

// StopRequest is the body of POST /stop. On /v1 the id is in the path.
type StopRequest struct {
	ClusterID      *string `json:"cluster-id,omitempty"`
	ForceTerminate *bool   `json:"force-terminate,omitempty"`
}

// StartRequest is the body of POST /start.
type StartRequest struct {
	ClusterID *string `json:"cluster-id,omitempty"`
}

// ExtendRequest is the body of POST /v1/clusters/{id}/extend.
type ExtendRequest struct {
	Minutes *int `json:"minutes,omitempty"`
}

// KeepRequest is the body of POST /v1/clusters/{id}/keep: a CI job that
// failed keeps its cluster for debugging instead of ending it.
type KeepRequest struct {
	// Minutes from now until the cluster ends (at most the account's
	// max-minutes-to-live; a longer ask is shortened to it).
	Minutes *int `json:"minutes,omitempty"`
	// Reason, optional, is shown in the cluster's events and by the
	// GitHub App, like "job e2e failed".
	Reason *string `json:"reason,omitempty"`
}

// NoteRequest is the body of POST /v1/clusters/{id}/events: a note for the
// cluster's event log, from a service credential (the GitHub App saying why
// it left a cluster alone).
type NoteRequest struct {
	Message *string `json:"message,omitempty"`
}

// ListItem is one element of GET /list, exactly as the seed API has it.
type ListItem struct {
	ClusterID     string `json:"cluster-id"`
	ClusterStatus string `json:"cluster-status"`
}

// RunMetadata ties a cluster to a CI run.
type RunMetadata struct {
	Repository   string `json:"repository,omitempty"`
	RepositoryID int64  `json:"repository-id,omitempty"`
	RunID        int64  `json:"run-id,omitempty"`
	RunAttempt   int64  `json:"run-attempt,omitempty"`
	// Job is the job's key in the workflow (GITHUB_JOB); JobID its
	// numeric id, the check run id of job.check_run_id, which the App
	// matches workflow_job deliveries on.
	Job            string `json:"job,omitempty"`
	JobID          int64  `json:"job-id,omitempty"`
	RunnerName     string `json:"runner-name,omitempty"`
	Ref            string `json:"ref,omitempty"`
	SHA            string `json:"sha,omitempty"`
	Event          string `json:"event,omitempty"`
	WorkflowRef    string `json:"workflow-ref,omitempty"`
	Actor          string `json:"actor,omitempty"`
	PullRequest    int64  `json:"pull-request,omitempty"`
	InstallationID int64  `json:"installation-id,omitempty"`
	// Verified is set by the server: true when the metadata came from a
	// verified OIDC token. Ignored in requests.
	Verified bool `json:"verified"`
}

// Timings are the per-phase durations of a create, in milliseconds.
type Timings struct {
	QueuedMS  int64 `json:"queued-ms"`
	ClaimedMS int64 `json:"claimed-ms"`
	ReadyMS   int64 `json:"ready-ms"`
	TotalMS   int64 `json:"total-ms"`
	// Warm is true when a ready pool member was there at once.
	Warm bool `json:"warm"`
	// Server holds how long each phase of making the cluster's server
	// ready took, in milliseconds, before the request: e.g. "create",
	// "bootstrap" on Hetzner; "control-plane", "policy" locally.
	Server map[string]int64 `json:"server,omitempty"`
}

// Cluster is a cluster as the /v1 API and the JSON answer of /create show it.
type Cluster struct {
	ClusterID         string     `json:"cluster-id"`
	ClusterStatus     string     `json:"cluster-status"`
	Account           string     `json:"account,omitempty"`
	K8sVersion        string     `json:"k8s-version"`
	ClusterSize       string     `json:"cluster-size"`
	MinutesToLive     int        `json:"minutes-to-live"`
	KeepCluster       bool       `json:"keep-cluster"`
	EnablePrivileged  bool       `json:"enable-privileged"`
	NotificationEmail string     `json:"notification-email,omitempty"`
	APIServer         string     `json:"api-server,omitempty"`
	CreatedAt         time.Time  `json:"created-at"`
	ExpiresAt         time.Time  `json:"expires-at"`
	StoppedAt         *time.Time `json:"stopped-at,omitempty"`
	StoppedExpiresAt  *time.Time `json:"stopped-expires-at,omitempty"` // when a stopped cluster is terminated
	TerminatedAt      *time.Time `json:"terminated-at,omitempty"`
	// KeptAt is when a failed CI job kept the cluster for debugging
	// (POST /v1/clusters/{id}/keep); KeptReason is what it said.
	KeptAt     *time.Time   `json:"kept-at,omitempty"`
	KeptReason string       `json:"kept-reason,omitempty"`
	Run        *RunMetadata `json:"run,omitempty"`
	Timings    *Timings     `json:"timings,omitempty"`
	// NodeKind is NodeKubelet or NodeRegistered (see Versions.NodeKind).
	NodeKind string `json:"node-kind,omitempty"`
	// SnapshotSizeGB is the size of a hibernated cluster's snapshot
	// (cluster-status "hibernated": its server is deleted, a start
	// restores it in minutes).
	SnapshotSizeGB *float64 `json:"snapshot-size-gb,omitempty"`
	// RestoreStep, while a start restores a hibernated cluster
	// (cluster-status "restoring"), is the restore's last step.
	RestoreStep string `json:"restore-step,omitempty"`
	// RestoreMS, in the answer of a start that restored the cluster from
	// its snapshot, is how long that took.
	RestoreMS int64 `json:"restore-ms,omitempty"`
	// Kubeconfig is the tenant's kubeconfig; only in answers that mint one
	// (create, start, kubeconfig).
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// ClusterList is the answer of GET /v1/clusters.
type ClusterList struct {
	Clusters []Cluster `json:"clusters"`
}

// Event is one recorded state change of a cluster or pool server.
type Event struct {
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"` // cluster id or server id
	Type    string    `json:"type"`    // e.g. "created", "stopped", "expired"
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Cause   string    `json:"cause"` // api, ttl, webhook, reconciler, pool
	Actor   string    `json:"actor,omitempty"`
	Message string    `json:"message,omitempty"`
}

// EventList is the answer of GET /v1/clusters/{id}/events.
type EventList struct {
	Events []Event `json:"events"`
}

// Problem is an RFC 9457 problem document. Code is stable and
// machine-readable; Field names the offending input field.
type Problem struct {
	Type      string   `json:"type"`
	Title     string   `json:"title"`
	Status    int      `json:"status"`
	Detail    string   `json:"detail,omitempty"`
	Instance  string   `json:"instance,omitempty"`
	Code      string   `json:"code"`
	Field     string   `json:"field,omitempty"`
	Supported []string `json:"supported,omitempty"`
	RequestID string   `json:"request-id,omitempty"`
}

// Versions is the answer of GET /v1/versions: what can be requested.
type Versions struct {
	K8sVersions       []string `json:"k8s-versions"`
	DefaultK8sVersion string   `json:"default-k8s-version"`
	ClusterSizes      []string `json:"cluster-sizes"`
	// NodeKind says whether the clusters' node runs pods (NodeKubelet) or
	// is only registered (NodeRegistered): a local server on a machine
	// without root or containerd.
	NodeKind string `json:"node-kind"`
}

// Node kinds of Versions.NodeKind and Cluster.NodeKind.
const (
	// NodeKubelet is a real node: a kubelet runs the cluster's pods.
	NodeKubelet = "kubelet"
	// NodeRegistered is a Node object without a kubelet: the API works,
	// pods are scheduled nowhere and stay Pending.
	NodeRegistered = "registered"
)
