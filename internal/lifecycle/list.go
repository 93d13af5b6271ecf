package lifecycle

import (
	"context"

	"github.com/smek/action/internal/cluster"
)

// This file holds the lifecycle's reads of lists: every route that lists
// clusters or events comes through here, so that the principal's scope is
// applied in one place.

// List returns p's clusters that match f. A principal of an account sees
// only that account's clusters, whatever f.AccountID says.
func (s *Service) List(ctx context.Context, p cluster.Principal, f cluster.Filter) ([]cluster.Cluster, error) {
	if !p.Service {
		f.AccountID = p.Account.ID
	}
	cs, err := s.db.Clusters(ctx, f)
	for i := range cs {
		if cs[i].Status == cluster.Stopped {
			s.withMember(ctx, &cs[i]) // hibernated or not
		}
	}
	return cs, err
}

// Listed returns what the seed API's /list shows of p's account, newest
// first: its pending, running and stopped clusters, and those lost while
// running until their deadline (sqlite.ListedClusters). A service
// principal has no account of its own and lists nothing.
func (s *Service) Listed(ctx context.Context, p cluster.Principal) ([]cluster.Summary, error) {
	return s.db.ListedClusters(ctx, p.Account.ID)
}

// Events returns the recorded changes of one of p's clusters, oldest first.
func (s *Service) Events(ctx context.Context, p cluster.Principal, id cluster.ID) ([]cluster.Event, error) {
	if _, err := s.Get(ctx, p, id); err != nil {
		return nil, err
	}
	return s.db.Events(ctx, string(id))
}
