// Package jobs is what SMEK keeps of CI jobs to pre-warm clusters for
// them: the workflow jobs GitHub said were queued, and the flavor each
// job (by installation, repository, workflow and job name) asked for the
// last time it made a cluster. The GitHub App records them and SQLite
// keeps them. It depends on the cluster package only.
package jobs

import (
	"strconv"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Key names a job across its runs: the workflow_job deliveries' installation,
// repository id, workflow_name and name. A matrix job's name includes its
// matrix values ("test (1.36)"), so each leg is learned on its own.
type Key struct {
	InstallationID int64
	RepositoryID   int64
	Workflow       string
	Job            string
}

// Learned is the flavor a job asked for when it last made a cluster.
type Learned struct {
	Key
	Flavor cluster.Flavor
	// AccountID is the account whose create taught it: the flavor is only
	// pre-warmed while the installation is linked to that account.
	AccountID int64
	LearnedAt time.Time
	// Creates counts the creates that taught it.
	Creates int
}

// State is where a queued job stands.
type State string

const (
	// Queued: GitHub said the job was queued; its create has not come.
	Queued State = "queued"
	// Created: the job made a cluster (its pre-warm, if any, was a hit).
	Created State = "created"
	// Completed: the job completed without making a cluster (its
	// pre-warm, if any, was a miss).
	Completed State = "completed"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool { return s == Queued || s == Created || s == Completed }

// Job is a queued workflow job as recorded.
type Job struct {
	// ID is workflow_job.id, which is also its check run id: the id the
	// Action sends as the cluster's job-id.
	ID int64
	Key
	// Repository is the repository's full name, for logs.
	Repository string
	RunID      int64
	RunAttempt int64
	QueuedAt   time.Time
	State      State
	// Flavor and Until are the job's pre-warm: Until is zero when none
	// was started.
	Flavor cluster.Flavor
	Until  time.Time
}

// Prewarming reports whether the job holds a pre-warm at now: it is
// still queued and its pre-warm has not expired.
func (j Job) Prewarming(now time.Time) bool {
	return j.State == Queued && !j.Until.IsZero() && now.Before(j.Until)
}

// PrewarmKey is the key of the job's pre-warm in the pool.
func PrewarmKey(jobID int64) string { return "job:" + strconv.FormatInt(jobID, 10) }
