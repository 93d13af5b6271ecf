package hetzner

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/logkey"
)

// Provision creates a server from the flavor's golden snapshot, boots and
// bootstraps it, and returns once the cluster is ready. A retried
// Provision for the same member adopts the server the first attempt made.
func (b *Backend) Provision(ctx context.Context, m cluster.Member) ([]byte, error) {
	t0 := b.cfg.Clock.Now()
	img, err := b.snapshotFor(ctx, m.Flavor.K8sVersion)
	if err != nil {
		return nil, err
	}
	srv, hk, err := b.createMember(ctx, m, img)
	if err != nil {
		return nil, err
	}
	d := data{ServerID: srv.ID, Name: srv.Name, IP: srv.PublicNet.IPv4.IP.String(), Image: img.ID, HostKey: hk.public, Timings: map[string]int64{}}
	d.Timings["create"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	if err := b.node.bootstrap(ctx, m, srv, &d); err != nil {
		return d.marshal(), err
	}
	d.Timings["total"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	b.log.Info("server ready", logkey.Member, m.ID, logkey.Server, srv.ID, logkey.Flavor, m.Flavor.String(), "timings_ms", d.Timings)
	return d.marshal(), nil
}

// createMember creates m's server from img, with the server type of its
// size, the project's SSH key, behind the node firewall, and returns it
// with the host key the member's system is given.
func (b *Backend) createMember(ctx context.Context, m cluster.Member, img *hcloud.Image) (*hcloud.Server, hostKey, error) {
	stype, ok := b.cfg.ServerTypes[m.Flavor.Size]
	if !ok {
		return nil, hostKey{}, cluster.Errorf(cluster.EINVALID, "cluster-size", "cluster-size %q is not offered on Hetzner", m.Flavor.Size)
	}
	key, err := b.ensureSSHKey(ctx)
	if err != nil {
		return nil, hostKey{}, err
	}
	if err := b.ensureFirewall(ctx); err != nil {
		return nil, hostKey{}, err
	}
	hk, err := b.memberHostKey(m)
	if err != nil {
		return nil, hostKey{}, err
	}
	srv, err := b.create(ctx, m, img, stype, key)
	return srv, hk, err
}

// create makes the server, its user data installing the member's host key
// (memberHostKey), and waits until it runs. A location that cannot take it
// (placement_error, resource_unavailable, a limit) passes on to the next.
func (b *Backend) create(ctx context.Context, m cluster.Member, img *hcloud.Image, stype string, key *hcloud.SSHKey) (*hcloud.Server, error) {
	name := b.serverName(m)
	hk, err := b.memberHostKey(m)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, loc := range b.cfg.Locations {
		var res hcloud.ServerCreateResult
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			res, resp, err = b.cfg.Client.Server.Create(ctx, hcloud.ServerCreateOpts{
				Name: name, ServerType: &hcloud.ServerType{Name: stype}, Image: &hcloud.Image{ID: img.ID},
				Location: &hcloud.Location{Name: loc}, SSHKeys: []*hcloud.SSHKey{key}, Labels: b.labels(m),
				StartAfterCreate: hcloud.Ptr(true), UserData: hk.userData,
			})
			return resp, err
		})
		switch {
		case err == nil:
			if err := b.watch.wait(ctx, b.cfg.ExpectCreate, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
				return nil, fmt.Errorf("create server %s: %w", name, err)
			}
			res.Server.Status = hcloud.ServerStatusRunning
			return res.Server, nil
		case hcloud.IsError(err, hcloud.ErrorCodeUniquenessError):
			// An earlier attempt created it (its answer was lost, or the
			// provisioner restarted): adopt it.
			return b.adopt(ctx, m, name)
		case hcloud.IsError(err, hcloud.ErrorCodePlacementError, hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodeResourceLimitExceeded):
			b.log.Warn("cannot create the server here, trying the next location", logkey.Server, name, "location", loc, logkey.Err, err)
			lastErr = err
			continue
		default:
			return nil, fmt.Errorf("create server %s: %w", name, err)
		}
	}
	return nil, fmt.Errorf("create server %s in %v: %w", name, b.cfg.Locations, lastErr)
}

func (b *Backend) adopt(ctx context.Context, m cluster.Member, name string) (*hcloud.Server, error) {
	deadline := b.cfg.Clock.Now().Add(b.cfg.ReadyTimeout)
	delay := b.cfg.PollMin
	for {
		srv, err := b.getByName(ctx, name)
		if err != nil {
			return nil, err
		}
		if srv == nil || srv.Labels[LabelMember] != sanitize(m.ID) || srv.Labels[LabelInstall] != b.cfg.Installation {
			return nil, fmt.Errorf("create server %s: the name is taken by a server SMEK did not make for member %s", name, m.ID)
		}
		if srv.Status == hcloud.ServerStatusRunning {
			return srv, nil
		}
		if srv.Status == hcloud.ServerStatusOff {
			a, err := b.power(ctx, srv, b.cfg.Client.Server.Poweron)
			if err == nil {
				err = b.watch.wait(ctx, b.cfg.ExpectPower, a)
			}
			if err != nil {
				return nil, fmt.Errorf("power on adopted server %s: %w", name, err)
			}
			srv.Status = hcloud.ServerStatusRunning
			return srv, nil
		}
		if b.cfg.Clock.Now().After(deadline) {
			return nil, fmt.Errorf("adopt server %s: still %s", name, srv.Status)
		}
		if err := b.cfg.Sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(b.cfg.PollMax, delay*2)
	}
}

func (b *Backend) getByName(ctx context.Context, name string) (*hcloud.Server, error) {
	var srv *hcloud.Server
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		srv, resp, err = b.cfg.Client.Server.GetByName(ctx, name)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("get server %s: %w", name, err)
	}
	return srv, nil
}

func (b *Backend) getByID(ctx context.Context, id int64) (*hcloud.Server, error) {
	var srv *hcloud.Server
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		srv, resp, err = b.cfg.Client.Server.GetByID(ctx, id)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("get server %d: %w", id, err)
	}
	return srv, nil
}

// server finds a member's server: by the id in its data, or by its name
// when the data was never written (a crash right after the create).
func (b *Backend) server(ctx context.Context, m cluster.Member) (*hcloud.Server, data, error) {
	d, err := parseData(m.Data)
	if err != nil {
		return nil, d, err
	}
	if d.ServerID != 0 {
		srv, err := b.getByID(ctx, d.ServerID)
		return srv, d, err
	}
	srv, err := b.getByName(ctx, b.serverName(m))
	if srv != nil && srv.Labels[LabelMember] != sanitize(m.ID) {
		srv = nil
	}
	return srv, d, err
}

// ref returns the member's server without a request when its data holds
// the id (the API only needs the id for actions and deletes).
func (b *Backend) ref(ctx context.Context, m cluster.Member) (*hcloud.Server, data, error) {
	d, err := parseData(m.Data)
	if err != nil {
		return nil, d, err
	}
	if d.ServerID != 0 {
		srv := &hcloud.Server{ID: d.ServerID, Name: d.Name}
		srv.PublicNet.IPv4.IP = net.ParseIP(d.IP)
		return srv, d, nil
	}
	return b.server(ctx, m)
}

func (b *Backend) power(ctx context.Context, srv *hcloud.Server, fn func(context.Context, *hcloud.Server) (*hcloud.Action, *hcloud.Response, error)) (*hcloud.Action, error) {
	var a *hcloud.Action
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		a, resp, err = fn(ctx, srv)
		return resp, err
	})
	return a, err
}

// Claim records ownership and mints the tenant's credential (and labels
// the node when the bootstrap could not: see kube.Admin.Claim): Kubernetes
// calls only, no cloud request.
func (b *Backend) Claim(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	a, err := b.admin(ctx, m)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return a.Claim(ctx, c, m.ReservedID == c.ID)
}

// Credential mints a fresh tenant kubeconfig.
func (b *Backend) Credential(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	a, err := b.admin(ctx, m)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return a.Credential(ctx, c)
}

// admin acts on the member's cluster with the sealed admin credential, at
// the address where the server's API listens now (ip:6443 on a real
// server, so no request; the fake's machines get a new loopback port at
// every boot). The client is kept for the member (see admins), so its
// connection is open when the next call comes.
func (b *Backend) admin(ctx context.Context, m cluster.Member) (*kube.Admin, error) {
	srv, d, err := b.ref(ctx, m)
	if err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, fmt.Errorf("member %s: %w", m.ID, errServerGone)
	}
	if d.APIServer, err = b.apiServer(ctx, srv); err != nil {
		return nil, err
	}
	key := keyOf(d)
	if a := b.admins.get(m.ID, key); a != nil {
		return a, nil
	}
	cfg, err := b.adminConfig(m, d)
	if err != nil {
		return nil, err
	}
	a, err := kube.NewAdmin(cfg)
	if err != nil {
		return nil, err
	}
	return b.admins.put(m.ID, key, a), nil
}

// Stop shuts the server down gracefully; the disk and the cluster on it
// stay. A server that does not go off in time is powered off.
func (b *Backend) Stop(ctx context.Context, m cluster.Member) error {
	b.admins.drop(m.ID)
	srv, _, err := b.ref(ctx, m)
	if err != nil {
		return err
	}
	if srv == nil {
		return fmt.Errorf("stop member %s: %w", m.ID, errServerGone)
	}
	if err := b.shutdown(ctx, srv); err != nil {
		if errors.Is(err, errServerGone) {
			return fmt.Errorf("stop member %s: %w", m.ID, err)
		}
		return fmt.Errorf("shut down server %d: %w", srv.ID, err)
	}
	return nil
}

// shutdown sends the ACPI shutdown and waits until the server is off. The
// action only says that the request was delivered (docs: "It does not mean
// that the server actually shut down successfully. If you need to ensure
// that the server is off, use the poweroff action"), so it is not polled:
// the server is, first after ExpectShutdown, and powered off when it is still
// not off after ShutdownTimeout (an OS that ignores ACPI, a hung
// shutdown, a failed action). Requests: the shutdown and a GET per poll.
func (b *Backend) shutdown(ctx context.Context, srv *hcloud.Server) error {
	_, err := b.power(ctx, srv, b.cfg.Client.Server.Shutdown)
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return errServerGone
	}
	if err != nil {
		return err
	}
	delay := b.cfg.ExpectShutdown
	deadline := b.cfg.Clock.Now().Add(b.cfg.ShutdownTimeout)
	for {
		if err := b.cfg.Sleep(ctx, delay); err != nil {
			return err
		}
		got, err := b.getByID(ctx, srv.ID)
		if err != nil {
			return err
		}
		if got == nil || got.Status == hcloud.ServerStatusOff {
			return nil // gone meanwhile: off too
		}
		if b.cfg.Clock.Now().After(deadline) {
			b.log.Warn("the server did not shut down in time: powering it off", logkey.Server, srv.ID, logkey.Status, got.Status, "after", b.cfg.ShutdownTimeout)
			a, err := b.power(ctx, srv, b.cfg.Client.Server.Poweroff)
			if err == nil {
				err = b.watch.wait(ctx, b.cfg.ExpectPower, a)
			}
			return err
		}
		delay = min(b.cfg.PollMax, delay*2)
	}
}

// Start powers the server on, starts k3s again and waits for readiness.
func (b *Backend) Start(ctx context.Context, m cluster.Member) ([]byte, error) {
	t0 := b.cfg.Clock.Now()
	srv, d, err := b.ref(ctx, m)
	if err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, fmt.Errorf("start member %s: %w", m.ID, errServerGone)
	}
	// Powering on a running server is harmless: no GET to check first.
	a, err := b.power(ctx, srv, b.cfg.Client.Server.Poweron)
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return nil, fmt.Errorf("start member %s: %w", m.ID, errServerGone)
	}
	if err == nil {
		err = b.watch.wait(ctx, b.cfg.ExpectPower, a)
	}
	if err != nil {
		return nil, fmt.Errorf("power on server %d: %w", srv.ID, err)
	}
	if err := b.node.restart(ctx, m, srv, &d); err != nil {
		return nil, err
	}
	if d.Timings == nil {
		d.Timings = map[string]int64{}
	}
	d.Timings["start"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	return d.marshal(), nil
}

// Release rebuilds the server from the current golden snapshot of its
// version, with a new host key in its user data, and bootstraps it again: a
// clean, ready member. A rebuild powers the server off first and the docs
// promise nothing about powering it on: a server that is not running
// afterwards (it was stopped) is powered on. A server that is gone is not
// reusable.
func (b *Backend) Release(ctx context.Context, m cluster.Member) (bool, []byte, error) {
	b.admins.drop(m.ID)
	t0 := b.cfg.Clock.Now()
	srv, old, err := b.ref(ctx, m)
	if err != nil {
		return false, nil, err
	}
	if srv == nil {
		return false, nil, nil
	}
	img, err := b.snapshotFor(ctx, m.Flavor.K8sVersion)
	if err != nil {
		return false, nil, err
	}
	// A new key at every rebuild: what a tenant could learn of the last
	// one (root on the node reads it, and the user data from the metadata
	// service) is worth nothing once the server is rebuilt.
	hk, err := randomHostKey()
	if err != nil {
		return false, nil, err
	}
	var res hcloud.ServerRebuildResult
	err = b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		res, resp, err = b.cfg.Client.Server.RebuildWithResult(ctx, srv, hcloud.ServerRebuildOpts{Image: img, UserData: &hk.userData})
		return resp, err
	})
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return false, nil, nil // gone: nothing to clean, not reusable
	}
	if err == nil {
		err = b.watch.wait(ctx, b.cfg.ExpectRebuild, res.Action)
	}
	if err != nil {
		return false, nil, fmt.Errorf("rebuild server %d: %w", srv.ID, err)
	}
	got, err := b.getByID(ctx, srv.ID)
	if err != nil {
		return false, nil, err
	}
	if got == nil {
		return false, nil, nil
	}
	if got.Status != hcloud.ServerStatusRunning {
		b.log.Info("powering on the rebuilt server", logkey.Member, m.ID, logkey.Server, srv.ID, logkey.Status, got.Status)
		a, err := b.power(ctx, srv, b.cfg.Client.Server.Poweron)
		if err == nil {
			err = b.watch.wait(ctx, b.cfg.ExpectPower, a)
		}
		if err != nil {
			return false, nil, fmt.Errorf("power on rebuilt server %d: %w", srv.ID, err)
		}
	}
	// Nothing of the old cluster is kept: new CA, new admin, new host key.
	d := data{ServerID: srv.ID, Name: old.Name, IP: old.IP, Image: img.ID, HostKey: hk.public, Timings: map[string]int64{}}
	if d.IP == "" {
		d.IP = got.PublicNet.IPv4.IP.String()
		d.Name = got.Name
	}
	srv.Name = d.Name
	d.Timings["rebuild"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	srv.Status = hcloud.ServerStatusRunning
	if err := b.node.bootstrap(ctx, m, srv, &d); err != nil {
		return false, d.marshal(), err
	}
	d.Timings["total"] = b.cfg.Clock.Now().Sub(t0).Milliseconds()
	return true, d.marshal(), nil
}

// Destroy deletes the member's server if there is one. It does not wait
// for the delete action: the server is gone from the API at once.
func (b *Backend) Destroy(ctx context.Context, m cluster.Member) error {
	b.admins.drop(m.ID)
	srv, _, err := b.ref(ctx, m)
	if err != nil {
		return err
	}
	if srv == nil {
		return nil
	}
	return b.delete(ctx, srv)
}

func (b *Backend) delete(ctx context.Context, srv *hcloud.Server) error {
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		_, resp, err := b.cfg.Client.Server.DeleteWithResult(ctx, srv)
		return resp, err
	})
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete server %d: %w", srv.ID, err)
	}
	return nil
}

// Resume checks at start-up that a ready or claimed member's server still
// exists and runs; a ghost (server gone) is an error, so the pool replaces
// a ready ghost. A claimed member whose server is not running had a stop
// interrupted by the restart (the cluster is still recorded running): the
// stop is rolled back by starting the server again.
func (b *Backend) Resume(ctx context.Context, m cluster.Member) ([]byte, error) {
	srv, _, err := b.server(ctx, m)
	if err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, fmt.Errorf("resume member %s: %w", m.ID, errServerGone)
	}
	if srv.Status == hcloud.ServerStatusRunning {
		return m.Data, nil
	}
	if m.State == cluster.MemberReady {
		return nil, fmt.Errorf("resume member %s: server %d is %s", m.ID, srv.ID, srv.Status)
	}
	b.log.Info("starting the server of a running cluster again", logkey.Member, m.ID, logkey.Server, srv.ID, logkey.Status, srv.Status)
	return b.Start(ctx, m)
}

var errServerGone = errors.New("server no longer exists at Hetzner")
