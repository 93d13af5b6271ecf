// Package ctrimport imports image archives into a node's containerd with
// its ctr command (Debian's ctr on a local node, `k3s ctr` on a Hetzner
// server), in the k8s.io namespace the kubelet's CRI reads, and undoes an
// import that fails: what the archive named and the node did not have
// before is removed, and containerd collects the content nobody
// references any more.
package ctrimport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// Namespace is containerd's namespace of the kubelet's images.
const Namespace = "k8s.io"

// Run runs ctr with args (after the global flags that reach the node's
// containerd), feeding stdin, writing its standard output to stdout. Its
// error carries ctr's standard error.
type Run func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error

// Load imports the tar archive a.Path through run, with importFlags
// before the archive (the snapshotter the kubelet uses, say), and returns
// the images a.Names are after it. A full disk is a cluster.ENOSPACE
// error, an archive containerd refuses a cluster.EINVALID one; either
// way the names the import created are removed again.
func Load(ctx context.Context, run Run, importFlags []string, a cluster.ImageArchive) ([]cluster.Image, error) {
	before, err := list(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("list the node's images: %w", err)
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	args := append(append([]string{"-n", Namespace, "images", "import"}, importFlags...), "-")
	var out bytes.Buffer
	err = run(ctx, args, f, &out)
	var imgs []cluster.Image
	if err == nil {
		imgs, err = loaded(ctx, run, a.Names)
	}
	if err == nil {
		return imgs, nil
	}
	undo(context.WithoutCancel(ctx), run, a.Names, before)
	return nil, importError(err)
}

// importError classifies what ctr said. It can only be read from ctr's
// words: they come over a pipe or SSH, not as Go errors.
func importError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no space left on device"):
		return &cluster.Error{Code: cluster.ENOSPACE, Message: "the node has no room for the image: its disk is full; nothing was imported", Err: err}
	case strings.Contains(msg, "failed to dial"), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &cluster.Error{Code: cluster.EUNAVAILABLE, Message: "the node's container runtime does not answer; nothing was imported, try again", Err: err}
	case strings.Contains(msg, "ctr: "):
		_, said, _ := strings.Cut(msg, "ctr: ")
		return &cluster.Error{Code: cluster.EINVALID, Field: "body", Message: "body: not a docker save or OCI image archive: the node's containerd refused it: " + firstLine(said), Err: err}
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// undo removes the names of the archive that were not on the node before.
func undo(ctx context.Context, run Run, names []string, before map[string]string) {
	var created []string
	for _, n := range names {
		if _, ok := before[n]; !ok {
			created = append(created, n)
		}
	}
	if len(created) == 0 {
		return
	}
	args := append([]string{"-n", Namespace, "images", "rm"}, created...)
	_ = run(ctx, args, nil, io.Discard)
}

// loaded returns the node's images named names.
func loaded(ctx context.Context, run Run, names []string) ([]cluster.Image, error) {
	all, err := list(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("list the node's images: %w", err)
	}
	out := make([]cluster.Image, 0, len(names))
	for _, n := range names {
		d, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("ctr: image %s is not in the node's store after the import", n)
		}
		out = append(out, cluster.Image{Name: n, Digest: d})
	}
	return out, nil
}

// list returns the node's images, name: digest, from `ctr images ls`:
// a header, then REF TYPE DIGEST SIZE PLATFORMS LABELS.
func list(ctx context.Context, run Run) (map[string]string, error) {
	var out bytes.Buffer
	if err := run(ctx, []string{"-n", Namespace, "images", "ls"}, nil, &out); err != nil {
		return nil, err
	}
	return ParseList(&out)
}

// ParseList reads the table `ctr images ls` prints.
func ParseList(r io.Reader) (map[string]string, error) {
	imgs := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	header := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if header {
			if len(f) < 3 || !slices.Equal(f[:3], []string{"REF", "TYPE", "DIGEST"}) {
				return nil, fmt.Errorf("ctr images ls: unexpected header %q", sc.Text())
			}
			header = false
			continue
		}
		if len(f) < 3 || !strings.HasPrefix(f[2], "sha256:") {
			return nil, fmt.Errorf("ctr images ls: unexpected line %q", sc.Text())
		}
		imgs[f[0]] = f[2]
	}
	return imgs, sc.Err()
}
