package hetzner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
)

// GhostError lists members the database holds as live whose server no
// longer exists at Hetzner.
type GhostError struct{ Members []string }

func (e *GhostError) Error() string { return fmt.Sprintf("ghost members (server gone): %v", e.Members) }

// Reconcile compares the servers labelled with this installation with the
// members the database knows: servers of no live member (orphans: a crash
// between create and the database write, a failed delete) are deleted once
// older than OrphanGrace; builders left by an interrupted image build after
// two hours. Members whose server is gone are reported as a *GhostError.
// One list request (per 50 servers) plus one per delete.
func (b *Backend) Reconcile(ctx context.Context, known []pool.Member) error {
	var servers []*hcloud.Server
	err := b.api.do(ctx, func() (*hcloud.Response, error) {
		var err error
		servers, err = b.cfg.Client.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{PerPage: 50, LabelSelector: LabelInstall + "=" + b.cfg.Installation}})
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("list servers: %w", err)
	}
	live := map[string]pool.Member{}
	for _, m := range known {
		if m.State != cluster.ServerDeleted {
			live[sanitize(m.ID)] = m
		}
	}
	byID := map[int64]bool{}
	now := b.cfg.Now()
	var errs []error
	for _, s := range servers {
		byID[s.ID] = true
		grace := b.cfg.OrphanGrace
		if s.Labels[LabelRole] == "builder" {
			grace = 2 * time.Hour
		} else if _, ok := live[s.Labels[LabelMember]]; ok {
			continue
		}
		if now.Sub(s.Created) < grace {
			continue
		}
		b.log.Warn("deleting orphan server", "server", s.ID, "name", s.Name, "member", s.Labels[LabelMember], "role", s.Labels[LabelRole])
		if err := b.delete(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	var ghosts []string
	for _, m := range live {
		switch m.State {
		case cluster.ServerReady, cluster.ServerClaimed, cluster.ServerStopped, cluster.ServerDirty:
		default:
			continue
		}
		d, err := parseData(m.Data)
		if err != nil || d.ServerID == 0 || !byID[d.ServerID] {
			ghosts = append(ghosts, m.ID)
		}
	}
	if len(ghosts) > 0 {
		errs = append(errs, &GhostError{Members: ghosts})
	}
	return errors.Join(errs...)
}
