package lifecycle

import "github.com/smek/action/internal/cluster"

// LockStripe is the lock id's changes take, among the service's 64.
func LockStripe(id cluster.ID) int { return stripe(id, len(Service{}.locks)) }
