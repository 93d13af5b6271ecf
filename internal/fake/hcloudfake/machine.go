package hcloudfake

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/smek/action/internal/logkey"
)

// Machine is the simulated computer behind a fake server. The fake calls
// it as actions complete, one call at a time and in the order the API
// decided them.
type Machine interface {
	// PowerOn boots the machine: its SSH server starts listening.
	PowerOn() error
	// PowerOff stops everything running on it; the disk stays.
	PowerOff() error
	// Reimage replaces the disk as a rebuild does and keeps the machine
	// powered off; the next power-on is the new system's first boot.
	Reimage(d Disk) error
	// Snapshot copies the disk into dir.
	Snapshot(dir string) error
	// Destroy powers off and deletes the disk.
	Destroy() error
	// Ports maps each public port the machine listens on (22 for SSH,
	// 6443 for k3s, a LoadBalancer Service's port) to the loopback
	// host:port standing for it; empty while powered off.
	Ports() map[int]string
}

// Disk is what a create or a rebuild puts on a machine.
type Disk struct {
	// ImageDir holds the disk contents of the image ("" for a system image).
	ImageDir string
	// Inconsistent says the image was taken of a server that was not off
	// (create_image of a running server: the docs warn that such an image
	// "may not be readable"). A system on it fails as a damaged file
	// system would; the machine decides how.
	Inconsistent bool
	// UserData is the server's cloud-init user data as of this (re)build:
	// given at create, replaced by a rebuild that gives one, else kept.
	UserData string
}

// MachineSpec is what a MachineFactory is told about a new server.
type MachineSpec struct {
	ServerID int64
	Name     string
	// ImageDir holds the disk contents of the image ("" for a system image).
	ImageDir string
	// ImageInconsistent: see Disk.Inconsistent.
	ImageInconsistent bool
	// AuthorizedKeys are the public keys of the server's ssh_keys, in
	// authorized_keys format.
	AuthorizedKeys []string
	// UserData is the cloud-init user data given at create.
	UserData string
	// HostKeyLag is how many SSH connections the first boot of a fresh
	// disk answers with the host key the image carries (cloud-init has
	// not yet replaced it); 0 models cloud-init running before sshd.
	HostKeyLag int
	// Admit says whether the firewalls applied to the server let a TCP
	// connection from src reach public port; nil admits everything.
	// The machine asks at every connection.
	Admit func(port int, src netip.Addr) bool
}

// MachineFactory makes the machine for a new server.
type MachineFactory func(spec MachineSpec) (Machine, error)

// machineOp queues an operation on a server's machine. The fake's mutex is
// held; the operation runs after it is released, under effMu.
func (f *Fake) machineOp(id int64, name string, op func(Machine) error) {
	if f.cfg.Machines == nil {
		return
	}
	f.effects = append(f.effects, func() {
		m := f.machines[id]
		if m == nil {
			return
		}
		if err := op(m); err != nil {
			f.log.Error("machine operation failed", logkey.Server, id, "op", name, logkey.Err, err)
		}
	})
}

// MachineOf returns the machine of server id, or nil. Tests use it to look
// inside the simulated node.
func (f *Fake) MachineOf(id int64) Machine {
	f.effMu.Lock()
	defer f.effMu.Unlock()
	return f.machines[id]
}

// Ports returns the public ports of server id's machine (see
// Machine.Ports), empty when it has none or is off. It is the test hook
// behind GET /_hcloudfake/servers/{id}.
func (f *Fake) Ports(id int64) map[int]string {
	if m := f.MachineOf(id); m != nil {
		return m.Ports()
	}
	return map[int]string{}
}

// SSHAddr returns the SSH address of server id's machine, or "" when it has
// none or is off.
func (f *Fake) SSHAddr(id int64) string { return f.Ports(id)[22] }

// hookServer answers the fake-only GET /_hcloudfake/servers/{id} with
// {"ssh": "127.0.0.1:port", "ports": {"22": "127.0.0.1:port", ...}}: on a
// real cloud SSH is on port 22 of the public address, k3s on 6443 and a
// LoadBalancer Service on its own port; in the fake every machine has a
// loopback port for each. It is neither counted nor rate limited.
func (f *Fake) hookServer(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, invalidField("id", "must be a positive integer"))
		return
	}
	f.Settle()
	f.mu.Lock()
	_, ok := f.servers[id]
	f.mu.Unlock()
	if !ok {
		writeError(w, notFound("server", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	ports := f.Ports(id)
	body := struct {
		SSH   string            `json:"ssh"`
		Ports map[string]string `json:"ports"`
	}{SSH: ports[22], Ports: map[string]string{}}
	for p, addr := range ports {
		body.Ports[strconv.Itoa(p)] = addr
	}
	_ = json.NewEncoder(w).Encode(body)
}
