package lifecycle

import (
	"context"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// maxImageLoad bounds one import into a node, once the archive is on the
// server's disk.
const maxImageLoad = 30 * time.Minute

// CheckImageLoad says whether an image archive can be loaded into one of
// p's clusters now, before the archive is received: the cluster is p's
// (ENOTFOUND), the backend can (EUNSUPPORTED), and it runs (ECONFLICT).
func (s *Service) CheckImageLoad(ctx context.Context, p cluster.Principal, id cluster.ID) error {
	_, err := s.imageTarget(ctx, p, id)
	return err
}

func (s *Service) imageTarget(ctx context.Context, p cluster.Principal, id cluster.ID) (cluster.Cluster, error) {
	c, err := s.Get(ctx, p, id)
	if err != nil {
		return c, err
	}
	if !s.pool.CanLoadImages() {
		return c, cluster.Errorf(cluster.EUNSUPPORTED, "", "this server's backend cannot load images into its clusters")
	}
	if c.Status != cluster.Running || c.MemberID == "" {
		return c, cluster.Errorf(cluster.ECONFLICT, "cluster-id", "cluster %s is %s; images are loaded into running clusters only", c.ID, c.Status)
	}
	return c, nil
}

// LoadImages imports archive a, checked and on the server's disk, into
// the node of one of p's running clusters and returns the images it
// holds there. Loads into one cluster run one at a time; once started, a
// load runs to its end (or its cleanup) even when the caller goes away,
// so that nothing is left half-imported.
func (s *Service) LoadImages(ctx context.Context, p cluster.Principal, id cluster.ID, a cluster.ImageArchive) ([]cluster.Image, error) {
	if err := s.recovered(ctx); err != nil {
		return nil, err
	}
	done, err := s.loadTurn(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := s.imageTarget(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxImageLoad)
	defer cancel()
	imgs, err := s.pool.LoadImages(ctx, c.MemberID, a)
	s.cfg.Metrics.ClusterOp("load-images", outcome(err))
	if err != nil {
		return nil, err
	}
	s.log.Info("images loaded", logkey.Cluster, c.ID, "images", len(imgs))
	return imgs, nil
}

// loadTurn waits until no other image load runs into cluster id.
func (s *Service) loadTurn(ctx context.Context, id cluster.ID) (done func(), err error) {
	for {
		s.loadsMu.Lock()
		busy, ok := s.loads[id]
		if !ok {
			ch := make(chan struct{})
			s.loads[id] = ch
			s.loadsMu.Unlock()
			return func() {
				s.loadsMu.Lock()
				delete(s.loads, id)
				s.loadsMu.Unlock()
				close(ch)
			}, nil
		}
		s.loadsMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
