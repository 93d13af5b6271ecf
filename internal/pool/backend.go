// Package pool keeps warm, ready pool members (servers or local control
// planes) per flavor, so that a create is a claim transaction and a few API
// calls rather than a boot. It owns the member's life cycle, whose steps
// are listed once in package cluster (cluster.MemberState.CanBecome): it
// provisions, claims, stops, starts, releases and destroys members, and
// declares the Backend it needs from whatever runs them.
package pool

import (
	"context"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Backend runs pool members.
type Backend interface {
	// Name is stored with every member ("local", "hetzner").
	Name() string
	// Versions lists the Kubernetes versions the backend runs, newest first.
	Versions(ctx context.Context) ([]string, error)
	// Provision makes a new member ready to be claimed: create, boot,
	// bootstrap, apply the tenant policy, label the node with
	// m.ReservedID, check readiness. It returns the backend's data to
	// store with the member. On error the pool calls Destroy.
	Provision(ctx context.Context, m cluster.Member) (data []byte, err error)
	// Claim hands a ready member to a cluster: record ownership, mint the
	// tenant credential, in as few round trips as it can; label the node
	// too when it does not carry c's id (m.ReservedID is another).
	Claim(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error)
	// Credential mints a fresh tenant kubeconfig for a claimed, running
	// member.
	Credential(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error)
	// Stop stops a claimed member, keeping its data.
	Stop(ctx context.Context, m cluster.Member) error
	// Start brings a stopped member back.
	Start(ctx context.Context, m cluster.Member) (data []byte, err error)
	// Release makes a member that served a cluster clean again, its node
	// labelled with m.ReservedID (the next cluster's). reusable says it
	// is ready for the next cluster (rebuilt); otherwise it is gone.
	Release(ctx context.Context, m cluster.Member) (reusable bool, data []byte, err error)
	// Destroy removes a member and everything it holds.
	Destroy(ctx context.Context, m cluster.Member) error
}

// Resumer is implemented by backends whose members do not survive a restart
// of the provisioner (the local backend's child processes). The pool calls
// Resume at start for members that should be running.
type Resumer interface {
	Resume(ctx context.Context, m cluster.Member) (data []byte, err error)
}

// PhaseTimer is implemented by backends that record how long each phase of
// making a member ready took (create, boot, bootstrap...), in its data.
type PhaseTimer interface {
	PhaseTimings(data []byte) map[string]time.Duration
}

// Reconciler is implemented by backends whose resources can outlive the
// database's knowledge of them (cloud servers, processes and folders left by
// a crash). The pool calls it at start and every Config.ReconcileEvery with
// every member the database knows (deleted ones excluded). The backend
// removes what belongs to no member; it returns the ids of ghosts: members
// the database holds as live (ready, claimed, stopped, dirty) whose
// resources are gone. The pool marks ghosts failed, so they are destroyed
// and replaced. err reports what could not be checked or removed; ghosts
// are valid with it.
type Reconciler interface {
	Reconcile(ctx context.Context, known []cluster.Member) (ghosts []string, err error)
}

// HealthChecker is implemented by backends that can tell whether a
// claimed member's cluster still answers (its API's /readyz with SMEK's
// admin credential). The pool asks every Config.HealthEvery; a member
// that fails Config.LostAfter checks in a row is reported lost (OnLost).
type HealthChecker interface {
	Healthy(ctx context.Context, m cluster.Member) error
}

// Revoker is implemented by backends that can take a tenant's access
// away from a member's cluster at once, before the member is released:
// the kubeconfigs handed out for it stop working.
type Revoker interface {
	Revoke(ctx context.Context, m cluster.Member) error
}

// ImageLoader is implemented by backends that can import image archives
// into a member's node. CanLoadImages says whether this backend's members
// have a node that runs pods; LoadImages imports a.Path, a tar archive
// already checked, and answers the images a.Names now are. It leaves none
// of a.Names behind that the archive created when it fails; a full disk
// is a cluster.ENOSPACE error.
type ImageLoader interface {
	CanLoadImages() bool
	LoadImages(ctx context.Context, m cluster.Member, a cluster.ImageArchive) ([]cluster.Image, error)
}
