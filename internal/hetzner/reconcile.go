package hetzner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Reconcile compares the servers labelled with this installation with the
// members the database knows: servers of no live member (orphans: a crash
// between create and the database write, a failed delete) are deleted once
// older than OrphanGrace; builders left by an interrupted image build after
// two hours. It returns the ghosts: live members (ready, claimed, stopped,
// dirty) whose server is gone; the pool marks them failed and replaces
// them. One list request (per 50 servers) plus one per delete.
func (b *Backend) Reconcile(ctx context.Context, known []cluster.Member) (ghosts []string, err error) {
	servers, err := b.listServers(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]cluster.Member{}
	for _, m := range known {
		if m.State != cluster.MemberDeleted {
			live[sanitize(m.ID)] = m
		}
	}
	byID := map[int64]bool{}
	now := b.cfg.Clock.Now()
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
		b.log.Warn("deleting orphan server", logkey.Server, s.ID, logkey.Name, s.Name, logkey.Member, s.Labels[LabelMember], logkey.Role, s.Labels[LabelRole])
		if err := b.delete(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range live {
		switch m.State {
		case cluster.MemberReady, cluster.MemberClaimed, cluster.MemberStopped, cluster.MemberDirty:
		default:
			continue
		}
		d, err := parseData(m.Data)
		if err != nil || d.ServerID == 0 || !byID[d.ServerID] {
			ghosts = append(ghosts, m.ID)
		}
	}
	if err := b.reconcileSnapshots(ctx, known); err != nil {
		errs = append(errs, err)
	}
	slices.Sort(ghosts)
	if len(ghosts) > 0 {
		b.log.Warn("ghost members: their servers are gone", "members", ghosts)
	}
	return ghosts, errors.Join(errs...)
}

// listServers lists the installation's servers, 50 a page, each page
// retried on its own.
func (b *Backend) listServers(ctx context.Context) ([]*hcloud.Server, error) {
	var all []*hcloud.Server
	opts := hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{Page: 1, PerPage: 50, LabelSelector: LabelInstall + "=" + b.cfg.Installation}}
	for {
		var page []*hcloud.Server
		var resp *hcloud.Response
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var err error
			page, resp, err = b.cfg.Client.Server.List(ctx, opts)
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("list servers: %w", err)
		}
		all = append(all, page...)
		if resp == nil || resp.Meta.Pagination == nil || resp.Meta.Pagination.NextPage == 0 {
			return all, nil
		}
		opts.Page = resp.Meta.Pagination.NextPage
	}
}
