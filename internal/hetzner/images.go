package hetzner

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/ctrimport"
	"github.com/smek/action/internal/pool"
)

var _ pool.ImageLoader = (*Backend)(nil)

// CanLoadImages implements pool.ImageLoader: every server runs k3s.
func (b *Backend) CanLoadImages() bool { return true }

// LoadImages implements pool.ImageLoader: the archive streams over SSH
// (the host key pinned at bootstrap) into `k3s ctr images import -`, which
// imports it into k3s's containerd and unpacks it for its default
// snapshotter, the one the kubelet uses.
func (b *Backend) LoadImages(ctx context.Context, m cluster.Member, a cluster.ImageArchive) ([]cluster.Image, error) {
	srv, d, err := b.ref(ctx, m)
	if err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, fmt.Errorf("member %s: %w", m.ID, errServerGone)
	}
	conn, err := b.dial(ctx, srv, &d)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	run := func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
		// The words are SMEK's own (flags, normalized image names): no
		// shell quoting is needed, and shellQuote makes sure.
		cmd := "k3s ctr"
		for _, a := range args {
			cmd += " " + shellQuote(a)
		}
		return streamSSH(ctx, conn, cmd, stdin, stdout)
	}
	return ctrimport.Load(ctx, run, nil, a)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and the punctuation of image names and flags.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
