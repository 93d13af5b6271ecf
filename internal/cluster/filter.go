package cluster

// Filter selects clusters for a list. Zero fields do not filter.
type Filter struct {
	// AccountID selects one account's clusters; lifecycle sets it from
	// the principal, so a caller cannot widen its own scope.
	AccountID      int64
	Statuses       []Status
	RepositoryID   int64
	RunID          int64
	RunAttempt     int64
	Runner         string
	PullRequest    int64
	InstallationID int64
	// RepositoryOwner selects the clusters whose run's repository is
	// RepositoryOwner/..., without regard to case (ASCII).
	RepositoryOwner string
	// Limit bounds the answer (0: no bound).
	Limit int
}

// Summary is a cluster's id and status: all that the seed API's /list
// shows. Lists of it stay small where a list of Cluster would not (an
// account may have 10,000 clusters).
type Summary struct {
	ID     ID
	Status Status
}
