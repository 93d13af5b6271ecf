package hetzner

import (
	"context"
	"fmt"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
)

var _ pool.HealthChecker = (*Backend)(nil)

// Healthy implements pool.HealthChecker: the cluster's /readyz, asked
// with the member's admin client (the credential sealed at bootstrap, CA
// pinned; see admin) at the server's API address. It makes no Hetzner API
// request, and its request every 30 s is what keeps the client's
// connection open for the member's claim (see admins).
func (b *Backend) Healthy(ctx context.Context, m cluster.Member) error {
	a, err := b.admin(ctx, m)
	if err != nil {
		return err
	}
	if _, err := a.Clientset().Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("readyz of member %s: %w", m.ID, err)
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
