// Package cluster defines SMEK's domain: cluster ids, states, flavors, the
// requested spec and its validation, run metadata and the application error
// type. It depends on the standard library only.
package cluster

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
)

// ID identifies a cluster: "c-" followed by six lower-case letters or digits.
type ID string

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random cluster id, every character uniform over the
// alphabet.
func NewID() ID {
	// 252 is the largest multiple of 36 below 256: bytes at or above it are
	// skipped, so that the modulo does not favour the first letters.
	const limit = 256 - 256%len(idAlphabet)
	out := make([]byte, 0, 8)
	out = append(out, 'c', '-')
	var b [16]byte
	for len(out) < 8 {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		for _, c := range b {
			if int(c) < limit && len(out) < 8 {
				out = append(out, idAlphabet[int(c)%len(idAlphabet)])
			}
		}
	}
	return ID(out)
}

// ParseID checks that s has the shape of a cluster id.
func ParseID(s string) (ID, error) {
	if len(s) != 8 || !strings.HasPrefix(s, "c-") {
		return "", Errorf(EINVALID, "cluster-id", "cluster-id %q is not a SMEK cluster id (c- followed by 6 lower-case letters or digits)", Truncate(s, 40))
	}
	for _, c := range s[2:] {
		if !strings.ContainsRune(idAlphabet, c) {
			return "", Errorf(EINVALID, "cluster-id", "cluster-id %q is not a SMEK cluster id (c- followed by 6 lower-case letters or digits)", Truncate(s, 40))
		}
	}
	return ID(s), nil
}

// Status is where a cluster is in its life.
//
//	pending → running ⇄ stopped → terminating → terminated; any → failed
type Status string

const (
	Pending     Status = "pending"
	Running     Status = "running"
	Stopped     Status = "stopped"
	Terminating Status = "terminating"
	Terminated  Status = "terminated"
	Failed      Status = "failed"
)

// Live reports whether a cluster in this status still holds resources.
func (s Status) Live() bool {
	return s == Pending || s == Running || s == Stopped || s == Terminating
}

// Sizes SMEK offers. The seed product knows only 1-mid: one node with 8 CPU
// cores and 32 GB of memory.
const SizeMid = "1-mid"

// Sizes lists the cluster sizes that can be requested.
var Sizes = []string{SizeMid}

// Flavor is what makes pool members interchangeable: two clusters of the same
// flavor can be served by the same kind of warm server.
type Flavor struct {
	K8sVersion string
	Size       string
	Privileged bool
}

func (f Flavor) String() string {
	p := "baseline"
	if f.Privileged {
		p = "privileged"
	}
	return f.K8sVersion + "/" + f.Size + "/" + p
}

// RunMetadata ties a cluster to the CI run that asked for it, so that the
// GitHub App can end it when the run is over.
type RunMetadata struct {
	Repository   string
	RepositoryID int64
	RunID        int64
	RunAttempt   int64
	Job          string
	// JobID is the job's numeric id (its check run id).
	JobID          int64
	Runner         string
	Ref            string
	SHA            string
	Event          string
	WorkflowRef    string
	Actor          string
	PullRequest    int64
	InstallationID int64
	// Verified is true when the metadata comes from a verified OIDC token
	// rather than from what a client chose to send.
	Verified bool
}

// Spec is what a user asks for when creating a cluster, after defaults.
type Spec struct {
	K8sVersion        string
	MinutesToLive     int
	KeepCluster       bool
	NotificationEmail string
	Privileged        bool
	Size              string
}

// Flavor returns the pool flavor that serves this spec.
func (s Spec) Flavor() Flavor {
	return Flavor{K8sVersion: s.K8sVersion, Size: s.Size, Privileged: s.Privileged}
}

// Timings are the per-phase durations of the request that created a cluster.
type Timings struct {
	Queued  time.Duration // waiting for a ready pool member
	Claimed time.Duration // the claim transaction
	Ready   time.Duration // the cluster writes: ownership record and tenant credential, at once
	// Warm is true when a ready pool member was there at once.
	Warm bool
}

// Total is the whole time from request to kubeconfig.
func (t Timings) Total() time.Duration { return t.Queued + t.Claimed + t.Ready }

// Cluster is a tenant's cluster as SMEK records it.
type Cluster struct {
	ID        ID
	AccountID int64
	Account   string
	Spec      Spec
	Status    Status
	// MemberID is the pool member that serves the cluster; empty before the
	// claim and after release.
	MemberID string
	Run      RunMetadata
	// CreatedBy names the credential that asked for the cluster (an actor
	// like "token:smek_ab12"), for the event log.
	CreatedBy string
	APIServer string
	CreatedAt time.Time
	// ExpiresAt is the deadline: the sweeper stops or terminates the cluster
	// at this time.
	ExpiresAt time.Time
	StoppedAt time.Time
	// StoppedExpiresAt is the deadline of a stopped cluster: the sweeper
	// terminates it at this time (the stop plus the server's maximum
	// stopped lifetime). Zero unless the cluster is stopped.
	StoppedExpiresAt time.Time
	TerminatedAt     time.Time
	// KeptAt is when a CI job's cleanup kept the cluster for debugging
	// instead of ending it (its job failed; keep-on-failure), zero if
	// never; KeptReason is what the job said. The GitHub App leaves a
	// kept cluster alone when its run completes; the deadline ends it.
	KeptAt     time.Time
	KeptReason string
	Timings    Timings
	// ServerPhases are how long the phases of making the cluster's server
	// ready took (backend-specific names), where the backend records them.
	ServerPhases map[string]time.Duration
	// Hibernated says the stopped cluster's server is deleted and only a
	// snapshot of its disk is kept (SnapshotGB in size): a start restores
	// a server from it, which takes minutes. The seed API shows such a
	// cluster as stopped.
	Hibernated bool
	SnapshotGB float64
	// Restoring, while a start restores a hibernated cluster, is the
	// restore's last step ("" when none is under way).
	Restoring string
	// RestoredIn, in the answer of a start, is how long restoring the
	// cluster from its snapshot took (0: it was not hibernated).
	RestoredIn time.Duration
}

// Kubeconfig is a tenant's credential for a cluster.
type Kubeconfig struct {
	// YAML is the kubeconfig document.
	YAML []byte
	// APIServer is the cluster's API server URL.
	APIServer string
	// ExpiresAt is when the credential stops working.
	ExpiresAt time.Time
}

var _ fmt.Stringer = Flavor{}
