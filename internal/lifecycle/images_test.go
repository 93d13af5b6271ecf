package lifecycle_test

import (
	"context"
	"sync"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
)

// imageBackend loads images into its fake members, holding each load
// until release gets a value.
type imageBackend struct {
	*fakeBackend
	started chan string
	release chan struct{}

	mu sync.Mutex
	// running counts loads under way per member; most is the most ever.
	running map[string]int
	most    int
}

func (b *imageBackend) CanLoadImages() bool { return true }

func (b *imageBackend) LoadImages(ctx context.Context, m cluster.Member, a cluster.ImageArchive) ([]cluster.Image, error) {
	b.mu.Lock()
	b.running[m.ID]++
	b.most = max(b.most, b.running[m.ID])
	b.mu.Unlock()
	b.started <- m.ID
	<-b.release
	b.mu.Lock()
	b.running[m.ID]--
	b.mu.Unlock()
	return []cluster.Image{{Name: a.Names[0], Digest: "sha256:loaded"}}, nil
}

// Loads into one cluster run one after the other; another account's
// cluster is not found and a stopped one is a conflict, before the
// backend is asked.
func TestLoadImages(t *testing.T) {
	ib := &imageBackend{started: make(chan string), release: make(chan struct{}), running: map[string]int{}}
	e := newEnvWith(t, lifecycle.Config{}, func(f *fakeBackend) pool.Backend { ib.fakeBackend = f; return ib })
	p := e.principal(t, "acme", limitsOf(5))
	c := e.create(t, p, true)
	a := cluster.ImageArchive{Path: "/spool/a.tar", Names: []string{"docker.io/library/app:dev"}}

	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := e.svc.LoadImages(context.Background(), p, c.ID, a)
			errs <- err
		}()
	}
	for range 2 {
		<-ib.started
		ib.release <- struct{}{}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ib.most != 1 {
		t.Errorf("%d loads ran at once into one cluster, want 1", ib.most)
	}

	other := e.principal(t, "other", limitsOf(5))
	if _, err := e.svc.LoadImages(context.Background(), other, c.ID, a); cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Errorf("another account's cluster: got %v, want not found", err)
	}
	e.stop(t, p, c.ID)
	if err := e.svc.CheckImageLoad(context.Background(), p, c.ID); cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Errorf("stopped cluster: got %v, want a conflict", err)
	}
}
