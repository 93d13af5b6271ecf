package hcloudfake

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/smek/action/internal/logkey"
)

// server is a fake cloud server. The fake's mutex guards it.
type server struct {
	id        int64
	name      string
	status    string // initializing, starting, running, stopping, off, rebuilding
	created   time.Time
	typ       schema.ServerType
	loc       schema.Location
	imageID   int64
	labels    map[string]string
	sshKeys   []int64
	firewalls []int64 // applied directly (not through a label selector)
	busy      *action // the running action that locks the server
	// userData is the cloud-init user data the metadata service serves:
	// given at create, replaced by a rebuild that gives one.
	userData string
	// power counts the changes of the power state; a pending ACPI
	// shutdown only takes effect if none happened since it was sent.
	power int
}

// maxUserData is the documented limit of user_data ("limited to 32KiB").
const maxUserData = 32 << 10

func (f *Fake) serverSchema(s *server) schema.Server {
	out := schema.Server{
		ID: s.id, Name: s.name, Status: s.status, Created: s.created,
		PublicNet: schema.ServerPublicNet{
			IPv4:        schema.ServerPublicNetIPv4{ID: s.id, IP: f.cfg.PublicIPv4, DNSPtr: fmt.Sprintf("static.%d.clients.your-server.de", s.id)},
			IPv6:        schema.ServerPublicNetIPv6{ID: s.id, IP: fmt.Sprintf("2001:db8:%x::/64", s.id), DNSPtr: []schema.ServerPublicNetIPv6DNSPtr{}},
			FloatingIPs: []int64{},
			Firewalls:   []schema.ServerFirewall{},
		},
		PrivateNet:      []schema.ServerPrivateNet{},
		ServerType:      s.typ,
		IncludedTraffic: 21990232555520,
		Location:        s.loc,
		Datacenter:      datacenter(s.loc), //lint:ignore SA1019 the fake serves the field while the API still documents it
		Protection:      schema.ServerProtection{},
		Labels:          cloneLabels(s.labels),
		Volumes:         []int64{},
		LoadBalancers:   []int64{},
		PrimaryDiskSize: s.typ.Disk,
		Locked:          s.busy != nil,
	}
	var zero uint64
	out.OutgoingTraffic, out.IngoingTraffic = &zero, &zero
	if img, ok := f.images[s.imageID]; ok {
		is := img.schema()
		out.Image = &is
	}
	for _, fw := range f.firewallsOf(s) {
		out.PublicNet.Firewalls = append(out.PublicNet.Firewalls, schema.ServerFirewall{ID: fw, Status: "applied"})
	}
	return out
}

func (f *Fake) lookupServer(r *http.Request) (*server, *apiError) {
	id, err := pathID(r, "server")
	if err != nil {
		return nil, err
	}
	s, ok := f.servers[id]
	if !ok {
		return nil, notFound("server", id)
	}
	return s, nil
}

func (f *Fake) listServers(r *http.Request, _ time.Time) (int, any, *apiError) {
	q := r.URL.Query()
	var items []*server
	for _, s := range f.servers {
		if n := q.Get("name"); n != "" && s.name != n {
			continue
		}
		if st := q["status"]; len(st) > 0 && !slices.Contains(st, s.status) {
			continue
		}
		items = append(items, s)
	}
	items, apiErr := filterLabels(r, items, func(s *server) map[string]string { return s.labels })
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if apiErr := sortBy(r, items, map[string]func(a, b *server) int{
		"id":      func(a, b *server) int { return cmp.Compare(a.id, b.id) },
		"name":    func(a, b *server) int { return cmp.Compare(a.name, b.name) },
		"created": func(a, b *server) int { return a.created.Compare(b.created) },
	}); apiErr != nil {
		return 0, nil, apiErr
	}
	items, meta, apiErr := page(r, items)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	out := []schema.Server{}
	for _, s := range items {
		out = append(out, f.serverSchema(s))
	}
	return http.StatusOK, struct {
		Servers []schema.Server `json:"servers"`
		Meta    schema.Meta     `json:"meta"`
	}{out, meta}, nil
}

func (f *Fake) getServer(r *http.Request, _ time.Time) (int, any, *apiError) {
	s, err := f.lookupServer(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, schema.ServerGetResponse{Server: f.serverSchema(s)}, nil
}

func validName(name string) *apiError {
	if name == "" {
		return invalidField("name", "is required")
	}
	if len(name) > 63 {
		return invalidField("name", "is too long")
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok || (i == 0 && c == '-') {
			return invalidField("name", "must be a valid hostname")
		}
	}
	return nil
}

func (f *Fake) createServer(r *http.Request, now time.Time) (int, any, *apiError) {
	var req schema.ServerCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := validName(req.Name); err != nil {
		return 0, nil, err
	}
	for _, s := range f.servers {
		if s.name == req.Name {
			return 0, nil, uniqueField("name", "server name is already used")
		}
	}
	if req.ServerType.ID == 0 && req.ServerType.Name == "" {
		return 0, nil, invalidField("server_type", "is required")
	}
	st, ok := findServerType(req.ServerType)
	if !ok {
		return 0, nil, invalidField("server_type", "server type not found")
	}
	img, apiErr := f.findImage(req.Image)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	locName := req.Location
	//lint:ignore SA1019 the fake accepts the field while the API still documents it
	if locName == "" && req.Datacenter != "" {
		for l, dc := range datacenterNames {
			//lint:ignore SA1019 as above
			if dc == req.Datacenter {
				locName = l
			}
		}
		if locName == "" {
			return 0, nil, invalidField("datacenter", "datacenter not found")
		}
	}
	if locName == "" {
		locName = "fsn1"
	}
	loc, ok := findLocation(locName)
	if !ok {
		return 0, nil, invalidField("location", "location not found")
	}
	if code := f.placement[loc.Name]; code != "" {
		// The docs list placement_error for this call ("An error during
		// the placement occurred"); in the wild the same failure has also
		// been answered as resource_unavailable "error during placement",
		// both with 412.
		return 0, nil, &apiError{Code: code, Message: "error during placement", Status: http.StatusPreconditionFailed}
	}
	if len(req.UserData) > maxUserData {
		return 0, nil, invalidField("user_data", "is limited to 32KiB")
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = cloneLabels(*req.Labels)
	}
	if err := validLabels(labels); err != nil {
		return 0, nil, err
	}
	var keys []string
	for _, k := range req.SSHKeys {
		key, ok := f.sshKeys[k]
		if !ok {
			return 0, nil, invalidField("ssh_keys", fmt.Sprintf("ssh key %d not found", k))
		}
		keys = append(keys, key.publicKey)
	}
	var fws []int64
	for _, fw := range req.Firewalls {
		if _, ok := f.firewalls[fw.Firewall]; !ok {
			return 0, nil, invalidField("firewalls", fmt.Sprintf("firewall %d not found", fw.Firewall))
		}
		fws = append(fws, fw.Firewall)
	}
	if len(f.servers) >= f.cfg.MaxServers {
		return 0, nil, &apiError{
			Code: CodeResourceLimitExceeded, Message: "server limit exceeded",
			Details: map[string]any{"limits": []map[string]string{{"name": "server_limit"}}},
		}
	}
	s := &server{
		id: f.id(), name: req.Name, status: "initializing", created: now, typ: st, loc: loc,
		imageID: img.id, labels: labels, sshKeys: req.SSHKeys, firewalls: fws, userData: req.UserData,
	}
	f.servers[s.id] = s
	start := req.StartAfterCreate == nil || *req.StartAfterCreate
	if f.cfg.Machines != nil {
		id := s.id
		spec := MachineSpec{
			ServerID: s.id, Name: s.name, ImageDir: img.dir, ImageInconsistent: img.inconsistent,
			AuthorizedKeys: keys, UserData: req.UserData, HostKeyLag: f.cfg.HostKeyLag,
			Admit: func(port int, src netip.Addr) bool { return f.Admits(id, port, src) },
		}
		f.effects = append(f.effects, func() {
			m, err := f.cfg.Machines(spec)
			if err != nil {
				f.log.Error("create machine", logkey.Server, spec.ServerID, logkey.Err, err)
				return
			}
			f.machines[spec.ServerID] = m
		})
	}
	create := f.startAction(now, "create_server", func(ok bool) {
		s.busy = nil
		if !ok || !start {
			s.status = "off"
			return
		}
		s.status = "running"
		s.power++
		f.machineOp(s.id, "power on", Machine.PowerOn)
	}, serverRef(s.id))
	s.busy = create
	resp := schema.ServerCreateResponse{Server: f.serverSchema(s), Action: create.schema(now), NextActions: []schema.Action{}}
	if start {
		// The start is part of the create in the fake; it finishes with it.
		next := f.startAction(now, "start_server", nil, serverRef(s.id))
		next.finishAt = create.finishAt
		resp.NextActions = append(resp.NextActions, next.schema(now))
	}
	if len(keys) == 0 {
		pw := rand.Text()[:20]
		resp.RootPassword = &pw
	}
	return http.StatusCreated, resp, nil
}

func (f *Fake) updateServer(r *http.Request, _ time.Time) (int, any, *apiError) {
	s, apiErr := f.lookupServer(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	var req schema.ServerUpdateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name != "" && req.Name != s.name {
		if err := validName(req.Name); err != nil {
			return 0, nil, err
		}
		for _, o := range f.servers {
			if o.name == req.Name {
				return 0, nil, uniqueField("name", "server name is already used")
			}
		}
		s.name = req.Name
	}
	if req.Labels != nil {
		if err := validLabels(*req.Labels); err != nil {
			return 0, nil, err
		}
		s.labels = cloneLabels(*req.Labels)
	}
	return http.StatusOK, schema.ServerUpdateResponse{Server: f.serverSchema(s)}, nil
}

func (f *Fake) deleteServer(r *http.Request, now time.Time) (int, any, *apiError) {
	s, apiErr := f.lookupServer(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	delete(f.servers, s.id)
	if s.busy != nil {
		s.busy.done = nil // the server is gone; its running action changes nothing
	}
	a := f.startAction(now, "delete_server", nil, serverRef(s.id))
	if f.cfg.Machines != nil {
		id := s.id
		f.effects = append(f.effects, func() {
			if m := f.machines[id]; m != nil {
				if err := m.Destroy(); err != nil {
					f.log.Error("destroy machine", logkey.Server, id, logkey.Err, err)
				}
				delete(f.machines, id)
			}
		})
	}
	return http.StatusOK, schema.ServerDeleteResponse{Action: a.schema(now)}, nil
}

// serverAction answers POST /servers/{id}/actions/{action}.
func (f *Fake) serverAction(r *http.Request, now time.Time) (int, any, *apiError) {
	s, apiErr := f.lookupServer(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	name := r.PathValue("action")
	switch name {
	case "poweron", "poweroff", "shutdown", "reboot", "reset", "rebuild", "create_image":
	default:
		return 0, nil, errf(CodeNotFound, "server action %q not found", name)
	}
	if s.busy != nil {
		return 0, nil, errf(CodeLocked, "server %d is locked by action %d (%s)", s.id, s.busy.id, s.busy.command)
	}
	switch name {
	case "poweron":
		return f.power(s, now, "start_server", "starting", "running", Machine.PowerOn)
	case "poweroff":
		return f.power(s, now, "stop_server", "stopping", "off", Machine.PowerOff)
	case "shutdown":
		return f.shutdown(s, now)
	case "reboot", "reset":
		return f.power(s, now, name+"_server", s.status, "running", func(m Machine) error {
			if err := m.PowerOff(); err != nil {
				return err
			}
			return m.PowerOn()
		})
	case "rebuild":
		return f.rebuild(r, s, now)
	default:
		return f.createImage(r, s, now)
	}
}

func (f *Fake) power(s *server, now time.Time, command, during, after string, op func(Machine) error) (int, any, *apiError) {
	before := s.status
	s.status = during
	a := f.startAction(now, command, func(ok bool) {
		s.busy = nil
		if !ok {
			s.status = before
			return
		}
		s.status = after
		s.power++
		f.machineOp(s.id, command, op)
	}, serverRef(s.id))
	s.busy = a
	return http.StatusCreated, schema.ServerActionPoweronResponse{Action: a.schema(now)}, nil
}

// shutdown sends the ACPI request. The action succeeds once the request
// is delivered and says nothing about the OS (docs: "the action status in
// this case only reflects whether the action was sent to the server"):
// the server stays running, and its OS powers it off ShutdownDelay later
// on the clock, or never when it ignores ACPI. A power change in between
// (a power off or on, a rebuild) overtakes the pending shutdown.
func (f *Fake) shutdown(s *server, now time.Time) (int, any, *apiError) {
	var a *action
	a = f.startAction(now, "shutdown_server", func(ok bool) {
		s.busy = nil
		if !ok || s.status != "running" || f.cfg.IgnoreACPI || f.ignoreACPI[s.id] {
			return
		}
		power := s.power
		f.after(a.finishAt.Add(f.cfg.ShutdownDelay), func() {
			if f.servers[s.id] != s || s.power != power || s.status != "running" {
				return
			}
			s.status = "off"
			s.power++
			f.machineOp(s.id, "acpi shutdown", Machine.PowerOff)
		})
	}, serverRef(s.id))
	s.busy = a
	return http.StatusCreated, schema.ServerActionShutdownResponse{Action: a.schema(now)}, nil
}

// rebuild overwrites the disk with the image. The docs say the server "will
// automatically be powered off before the rebuild command executes" and
// promise nothing about powering it on afterwards: the fake gives the
// server back in the power state it had, so a server that was off stays
// off. A user_data in the request replaces the server's (the metadata
// service serves it from then on); without one the server keeps the one
// it had, and cloud-init finds it on the new system's first boot.
func (f *Fake) rebuild(r *http.Request, s *server, now time.Time) (int, any, *apiError) {
	var req schema.ServerActionRebuildRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	img, apiErr := f.findImage(req.Image)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if req.UserData != nil {
		if len(*req.UserData) > maxUserData {
			return 0, nil, invalidField("user_data", "is limited to 32KiB")
		}
		s.userData = *req.UserData
	}
	wasOn := s.status == "running"
	s.status = "rebuilding"
	s.power++
	f.machineOp(s.id, "power off for rebuild", Machine.PowerOff)
	disk := Disk{ImageDir: img.dir, Inconsistent: img.inconsistent, UserData: s.userData}
	a := f.startAction(now, "rebuild_server", func(ok bool) {
		s.busy = nil
		s.power++
		if !ok {
			s.status = "off"
			return
		}
		s.imageID = img.id
		if !wasOn {
			s.status = "off"
			f.machineOp(s.id, "reimage", func(m Machine) error { return m.Reimage(disk) })
			return
		}
		s.status = "running"
		f.machineOp(s.id, "reimage", func(m Machine) error {
			if err := m.Reimage(disk); err != nil {
				return err
			}
			return m.PowerOn()
		})
	}, serverRef(s.id))
	s.busy = a
	return http.StatusCreated, schema.ServerActionRebuildResponse{Action: a.schema(now)}, nil
}

func (f *Fake) createImage(r *http.Request, s *server, now time.Time) (int, any, *apiError) {
	var req schema.ServerActionCreateImageRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	typ := "snapshot"
	if req.Type != nil {
		typ = *req.Type
	}
	if typ != "snapshot" && typ != "backup" {
		return 0, nil, invalidField("type", "must be snapshot or backup")
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = cloneLabels(*req.Labels)
	}
	if err := validLabels(labels); err != nil {
		return 0, nil, err
	}
	img := &image{
		id: f.id(), typ: typ, status: "creating", created: now, labels: labels,
		createdFrom: &schema.ImageCreatedFrom{ID: s.id, Name: s.name}, diskSize: float32(s.typ.Disk),
		osFlavor: "ubuntu", osVersion: "24.04",
		// "If the Server is currently running you must make sure that its
		// disk content is consistent. Otherwise, the created Image may not
		// be readable." (docs): taken of anything but an off server, the
		// image is marked, and systems built from it fail.
		inconsistent: s.status != "off",
	}
	if base, ok := f.images[s.imageID]; ok && base.inconsistent {
		img.inconsistent = true
	}
	if req.Description != nil {
		img.description = *req.Description
	}
	if base, ok := f.images[s.imageID]; ok {
		img.osFlavor, img.osVersion = base.osFlavor, base.osVersion
	}
	f.images[img.id] = img
	if f.cfg.Machines != nil && f.cfg.DataDir != "" {
		img.dir = fmt.Sprintf("%s/images/%d", f.cfg.DataDir, img.id)
		dir := img.dir
		f.machineOp(s.id, "snapshot", func(m Machine) error { return m.Snapshot(dir) })
	}
	a := f.startAction(now, "create_image", func(ok bool) {
		s.busy = nil
		if !ok {
			delete(f.images, img.id)
			return
		}
		img.status = "available"
		size := float32(1.5)
		img.imageSize = &size
	}, serverRef(s.id), schema.ActionResourceReference{ID: img.id, Type: "image"})
	s.busy = a
	return http.StatusCreated, schema.ServerActionCreateImageResponse{Action: a.schema(now), Image: img.schema()}, nil
}
