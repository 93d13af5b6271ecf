package hetzner

import (
	"context"
	"errors"
	"fmt"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/pool"
)

var _ pool.Hibernator = (*Backend)(nil)

// roleHibernation labels the snapshot of a hibernated member.
const roleHibernation = "hibernation"

// Hibernate snapshots a stopped member's server (create_image, type
// snapshot, labelled with the installation and the member) and deletes
// the server: a powered-off server is billed in full, a snapshot by its
// size. A call for a member whose hibernation a restart interrupted finds
// the snapshot the first call took (by its labels) and goes on from
// there. Requests: the create_image, the action's polls, a GET of the
// image for its size, the delete; plus a list of images.
func (b *Backend) Hibernate(ctx context.Context, m cluster.Member) ([]byte, float64, error) {
	b.admins.drop(m.ID)
	d, err := parseData(m.Data)
	if err != nil {
		return nil, 0, err
	}
	img, err := b.hibernationImage(ctx, m)
	if err != nil {
		return nil, 0, err
	}
	srv, _, err := b.server(ctx, m)
	if err != nil {
		return nil, 0, err
	}
	if img == nil {
		if srv == nil {
			return nil, 0, fmt.Errorf("hibernate member %s: %w, and it has no snapshot", m.ID, errServerGone)
		}
		if img, err = b.snapshotServer(ctx, m, srv); err != nil {
			return nil, 0, err
		}
	}
	if img.Status != hcloud.ImageStatusAvailable {
		if img, err = b.waitImage(ctx, img.ID); err != nil {
			return nil, 0, err
		}
	}
	if srv != nil {
		if err := b.delete(ctx, srv); err != nil {
			return nil, 0, err
		}
	}
	// The address is kept: the restore tells whether it changed.
	d.ServerID, d.APIServer = 0, ""
	d.Snapshot, d.SnapshotGB = img.ID, float64(img.ImageSize)
	b.log.Info("member hibernated", logkey.Member, m.ID, "image", img.ID, "snapshot-gb", img.ImageSize)
	return d.marshal(), d.SnapshotGB, nil
}

// snapshotServer makes sure the server is off (a snapshot of a running
// disk may not be readable, say the docs), then takes the snapshot and
// waits for its action.
func (b *Backend) snapshotServer(ctx context.Context, m cluster.Member, srv *hcloud.Server) (*hcloud.Image, error) {
	if srv.Status != hcloud.ServerStatusOff {
		if err := b.shutdown(ctx, srv); err != nil {
			return nil, fmt.Errorf("shut down server %d to snapshot it: %w", srv.ID, err)
		}
	}
	labels := b.labels(m)
	labels[LabelRole] = roleHibernation
	var res hcloud.ServerCreateImageResult
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		res, resp, err = b.cfg.Client.Server.CreateImage(ctx, srv, &hcloud.ServerCreateImageOpts{
			Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("SMEK hibernated member " + m.ID + " (cluster " + string(m.ClusterID) + ")"),
			Labels: labels,
		})
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot server %d: %w", srv.ID, err)
	}
	if err := b.watch.wait(ctx, b.cfg.ExpectRebuild, res.Action); err != nil {
		return nil, fmt.Errorf("snapshot server %d: %w", srv.ID, err)
	}
	return b.getImage(ctx, res.Image.ID)
}

// hibernationImage finds the member's hibernation snapshot by its labels
// (nil when there is none): the newest, in any status.
func (b *Backend) hibernationImage(ctx context.Context, m cluster.Member) (*hcloud.Image, error) {
	imgs, err := b.listImages(ctx, b.hibernationSelector()+","+LabelMember+"="+sanitize(m.ID))
	if err != nil {
		return nil, fmt.Errorf("list snapshots of member %s: %w", m.ID, err)
	}
	if len(imgs) == 0 {
		return nil, nil
	}
	return imgs[0], nil
}

func (b *Backend) hibernationSelector() string {
	return LabelInstall + "=" + b.cfg.Installation + "," + LabelRole + "=" + roleHibernation
}

func (b *Backend) getImage(ctx context.Context, id int64) (*hcloud.Image, error) {
	var img *hcloud.Image
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		img, resp, err = b.cfg.Client.Image.GetByID(ctx, id)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("get image %d: %w", id, err)
	}
	if img == nil {
		return nil, fmt.Errorf("image %d: %w", id, errImageGone)
	}
	return img, nil
}

// waitImage polls an image until it is available (an image whose
// create_image action a restart made us lose).
func (b *Backend) waitImage(ctx context.Context, id int64) (*hcloud.Image, error) {
	delay := b.cfg.ExpectRebuild
	deadline := b.cfg.Clock.Now().Add(b.cfg.ReadyTimeout + b.cfg.ExpectRebuild*4)
	for {
		img, err := b.getImage(ctx, id)
		if err != nil {
			return nil, err
		}
		if img.Status == hcloud.ImageStatusAvailable {
			return img, nil
		}
		if b.cfg.Clock.Now().After(deadline) {
			return nil, fmt.Errorf("image %d: still %s", id, img.Status)
		}
		if err := b.cfg.Sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(b.cfg.PollMax, delay*2)
	}
}

var errImageGone = errors.New("image no longer exists at Hetzner")

// Restore creates the member's server again from its hibernation
// snapshot (same server type, labels, SSH key and host key as a
// provision; the firewall applies by label), writes k3s's config with the
// new server's address (the public IP changes: k3s adds it to its serving
// certificate's names and the node's address), starts k3s and waits until
// the cluster is ready. The cluster keeps its CA and SMEK's admin
// credential; the tenant's kubeconfig names the new address, so the old
// one no longer works (the start answers a new one). A server left by a
// restore a restart interrupted is adopted. The snapshot is kept: the pool
// deletes it once the start is recorded.
func (b *Backend) Restore(ctx context.Context, m cluster.Member, progress func(string)) ([]byte, error) {
	t0 := b.cfg.Clock.Now()
	old, err := parseData(m.Data)
	if err != nil {
		return nil, err
	}
	if old.Snapshot == 0 {
		return nil, fmt.Errorf("restore member %s: its data names no snapshot", m.ID)
	}
	img, err := b.getImage(ctx, old.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("restore member %s: %w", m.ID, err)
	}
	progress(fmt.Sprintf("creating a server from snapshot %d", img.ID))
	srv, hk, err := b.createMember(ctx, m, img)
	if err != nil {
		return nil, err
	}
	d := old
	d.ServerID, d.Name, d.IP, d.HostKey = srv.ID, srv.Name, srv.PublicNet.IPv4.IP.String(), hk.public
	d.Snapshot, d.SnapshotGB = 0, 0
	d.Timings = map[string]int64{"create": b.cfg.Clock.Now().Sub(t0).Milliseconds()}
	progress(fmt.Sprintf("server %d runs at %s; starting k3s with the restored data", srv.ID, d.IP))
	if err := b.node.restore(ctx, m, srv, &d); err != nil {
		return d.marshal(), err
	}
	d.Timings["restore"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	if d.IP != old.IP {
		progress("the cluster is ready at " + d.APIServer + "; its address changed (it was " + old.IP + "), so only the kubeconfig handed out now works")
	} else {
		progress("the cluster is ready at " + d.APIServer)
	}
	return d.marshal(), nil
}

// restoreK3s writes k3s's config for the restored server's name and
// address, then starts k3s and waits for readiness as after a power-on.
func (b *Backend) restoreK3s(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
	dctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	conn, err := b.dial(dctx, srv, d)
	if err != nil {
		cancel()
		return err
	}
	err = runSSH(dctx, conn, "install -D -m 0600 /dev/stdin "+k3sConfigPath, k3sConfig(srv.Name, d.IP, m.ID, m.Flavor), nil)
	if err == nil {
		err = b.writeRegistries(dctx, conn)
	}
	conn.Close()
	cancel()
	if err != nil {
		return fmt.Errorf("write k3s config: %w", err)
	}
	return b.restartK3s(ctx, m, srv, d)
}

// DeleteSnapshot deletes a member's hibernation snapshot; one gone
// already is no error.
func (b *Backend) DeleteSnapshot(ctx context.Context, m cluster.Member) error {
	d, err := parseData(m.Data)
	if err != nil {
		return err
	}
	if d.Snapshot == 0 {
		return nil
	}
	return b.deleteImage(ctx, d.Snapshot)
}

func (b *Backend) deleteImage(ctx context.Context, id int64) error {
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		return b.cfg.Client.Image.Delete(ctx, &hcloud.Image{ID: id})
	})
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete image %d: %w", id, err)
	}
	return nil
}

// reconcileSnapshots deletes the hibernation snapshots that belong to no
// member holding one (a restore whose delete failed, a member destroyed
// meanwhile) once older than OrphanGrace. One list request, one per
// delete.
func (b *Backend) reconcileSnapshots(ctx context.Context, known []cluster.Member) error {
	imgs, err := b.listImages(ctx, b.hibernationSelector())
	if err != nil {
		return fmt.Errorf("list hibernation snapshots: %w", err)
	}
	keep := map[int64]bool{}
	hibernating := map[string]bool{}
	for _, m := range known {
		if m.State == cluster.MemberHibernating {
			hibernating[sanitize(m.ID)] = true // its snapshot may not be recorded yet
		}
		if !m.Snapshot {
			continue
		}
		if d, err := parseData(m.Data); err == nil && d.Snapshot != 0 {
			keep[d.Snapshot] = true
		}
	}
	now := b.cfg.Clock.Now()
	var errs []error
	for _, img := range imgs {
		if keep[img.ID] || hibernating[img.Labels[LabelMember]] || now.Sub(img.Created) < b.cfg.OrphanGrace || img.Status != hcloud.ImageStatusAvailable {
			continue
		}
		b.log.Warn("deleting orphan hibernation snapshot", "image", img.ID, logkey.Member, img.Labels[LabelMember])
		if err := b.deleteImage(ctx, img.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
