package hetzner

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
)

var _ pool.HealthChecker = (*Backend)(nil)

// Healthy implements pool.HealthChecker: the cluster's /readyz, asked
// with the admin credential sealed at bootstrap (CA pinned) at the
// server's API address. It makes no Hetzner API request.
func (b *Backend) Healthy(ctx context.Context, m cluster.Member) error {
	srv, d, err := b.ref(ctx, m)
	if err != nil {
		return err
	}
	if srv == nil {
		return fmt.Errorf("member %s: %w", m.ID, errServerGone)
	}
	if d.APIServer, err = b.apiServer(ctx, srv); err != nil {
		return err
	}
	cfg, err := b.adminConfig(m, d)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("readyz of %s: %w", d.APIServer, err)
	}
	return nil
}

var _ pool.Revoker = (*Backend)(nil)

// Revoke implements pool.Revoker: the tenant's bindings and
// ServiceAccount are deleted with the sealed admin credential (see
// kube.Admin.Revoke). It makes no Hetzner API request.
func (b *Backend) Revoke(ctx context.Context, m cluster.Member) error {
	a, err := b.admin(ctx, m)
	if err != nil {
		return err
	}
	return a.Revoke(ctx)
}
