package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/ctrimport"
	"github.com/smek/action/internal/pool"
)

// ctrBinary is Debian's containerd client, of the containerd package the
// nodes run.
const ctrBinary = "/usr/bin/ctr"

// nodeSnapshotter is the snapshotter of the nodes' CRI (containerdConfig):
// an import unpacks for it so that the kubelet starts the image at once.
const nodeSnapshotter = "overlayfs"

var _ pool.ImageLoader = (*Backend)(nil)

// CanLoadImages implements pool.ImageLoader: clusters with a kubelet node
// can (Config.Nodes).
func (b *Backend) CanLoadImages() bool { return b.cfg.Nodes }

// LoadImages implements pool.ImageLoader: ctr on this machine imports the
// archive through the node's containerd socket, reached in the node's
// mount namespace through /proc/PID/root.
func (b *Backend) LoadImages(ctx context.Context, m cluster.Member, a cluster.ImageArchive) ([]cluster.Image, error) {
	mem, err := b.member(m)
	if err != nil {
		return nil, err
	}
	if mem.node == nil {
		return nil, cluster.Errorf(cluster.EUNSUPPORTED, "", "this cluster has no kubelet node to load images into")
	}
	sock := mem.node.containerdSocket()
	run := func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, ctrBinary, append([]string{"--address", sock}, args...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ctr %s: %w: %s", strings.Join(args[2:min(4, len(args))], " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	return ctrimport.Load(ctx, run, []string{"--snapshotter", nodeSnapshotter}, a)
}

// containerdSocket is the node's containerd socket as this machine's
// processes reach it.
func (node *Node) containerdSocket() string {
	return fmt.Sprintf("/proc/%d/root/run/containerd/containerd.sock", node.procs[0].cmd.Process.Pid)
}
