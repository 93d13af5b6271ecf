package k3snode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/smek/action/internal/imagearchive"
)

// The image store of k3s's containerd, for `k3s ctr`: what `ctr images
// import`, `ls` and `rm` see in the k8s.io namespace. It lives on the
// machine's disk (wiped by a rebuild, kept across reboots) in
// imagesFile; the content an image holds counts against
// Config.ImageStoreBytes.
const (
	imagesFile = "/var/lib/rancher/k3s/agent/containerd/smek-fake-images.json"
	// containerdSocket is where k3s's ctr dials by default.
	containerdSocket = "/run/k3s/containerd/containerd.sock"
	// defaultImageStore is the content store's room without
	// Config.ImageStoreBytes.
	defaultImageStore = 10 << 30
)

// storedImage is one image record of the store.
type storedImage struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Size is the content the image holds (the archive's bytes, a bound
	// of its blobs).
	Size int64 `json:"size"`
}

// ctr runs `k3s ctr ARGS`: the subcommands SMEK sends, `-n k8s.io images
// import [--snapshotter S] [--platform P] -`, `images ls [-q]` and
// `images rm NAME...`. Like the real one it needs k3s (whose containerd
// it talks to) running.
func (n *Node) ctr(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "ctr: "+format+"\n", a...)
		return 1
	}
	ns := "default"
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case (args[0] == "-n" || args[0] == "--namespace") && len(args) > 1:
			ns, args = args[1], args[2:]
		case strings.HasPrefix(args[0], "--namespace="):
			ns, args = strings.TrimPrefix(args[0], "--namespace="), args[1:]
		default:
			return fail("flag provided but not defined: %s", args[0])
		}
	}
	if len(args) < 2 || args[0] != "images" && args[0] != "image" && args[0] != "i" {
		return fail("only the images command is simulated")
	}
	if !n.K3sRunning() {
		return fail("failed to dial %q: context deadline exceeded", containerdSocket)
	}
	if ns != "k8s.io" {
		// Another namespace is another (empty) store, which the kubelet
		// never sees; SMEK has no business there.
		return fail("the simulated node keeps images in namespace k8s.io only, got %q", ns)
	}
	n.images.Lock()
	defer n.images.Unlock()
	switch sub, rest := args[1], args[2:]; sub {
	case "import":
		return n.ctrImport(rest, stdin, stdout, fail)
	case "ls", "list":
		return n.ctrList(rest, stdout, fail)
	case "rm", "remove", "delete", "del":
		return n.ctrRemove(rest, stdout, stderr, fail)
	default:
		return fail("images %s is not simulated", sub)
	}
}

func (n *Node) ctrImport(args []string, stdin io.Reader, stdout io.Writer, fail func(string, ...any) int) int {
	var in string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--snapshotter" || a == "--platform" || a == "--base-name" || a == "--index-name":
			i++
		case strings.HasPrefix(a, "--snapshotter=") || strings.HasPrefix(a, "--platform=") || a == "--all-platforms" || a == "--no-unpack":
		case strings.HasPrefix(a, "-") && a != "-":
			return fail("flag provided but not defined: %s", a)
		default:
			if in != "" {
				return fail("import takes one archive, got %q and %q", in, a)
			}
			in = a
		}
	}
	if in != "-" {
		return fail("the simulated node imports from stdin (-) only, got %q", in)
	}
	store, err := n.loadImages()
	if err != nil {
		return fail("%v", err)
	}
	room := n.cfg.ImageStoreBytes
	if room <= 0 {
		room = defaultImageStore
	}
	used := storeSize(store)
	// Content is written as it streams in: a stream bigger than the room
	// left fails the write of its blob, as on a full disk, and the
	// partial ingest is discarded.
	counted := &countingReader{r: stdin}
	imgs, err := imagearchive.Read(io.LimitReader(counted, room-used+1))
	if counted.n > room-used {
		return fail("failed to ingest \"tar-blob\": failed to copy: write /var/lib/rancher/k3s/agent/containerd/io.containerd.content.v1.content/ingest/0/data: no space left on device")
	}
	if err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), imagearchive.ErrInvalid.Error()+": "))
	}
	io.Copy(io.Discard, stdin)
	for _, im := range imgs {
		store[im.Name] = storedImage{Name: im.Name, Digest: im.Digest, Size: counted.n}
		fmt.Fprintf(stdout, "unpacking %s (%s)...done\n", im.Name, im.Digest)
	}
	if err := n.saveImages(store); err != nil {
		return fail("%v", err)
	}
	return 0
}

func (n *Node) ctrList(args []string, stdout io.Writer, fail func(string, ...any) int) int {
	quiet := false
	for _, a := range args {
		if a != "-q" && a != "--quiet" {
			return fail("flag provided but not defined: %s", a)
		}
		quiet = true
	}
	store, err := n.loadImages()
	if err != nil {
		return fail("%v", err)
	}
	names := make([]string, 0, len(store))
	for name := range store {
		names = append(names, name)
	}
	sort.Strings(names)
	if quiet {
		for _, name := range names {
			fmt.Fprintln(stdout, name)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 1, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t")
	for _, name := range names {
		im := store[name]
		fmt.Fprintf(tw, "%s\tapplication/vnd.docker.distribution.manifest.v2+json\t%s\t%.1f KiB\tlinux/amd64\t-\t\n", im.Name, im.Digest, float64(im.Size)/1024)
	}
	tw.Flush()
	return 0
}

func (n *Node) ctrRemove(args []string, stdout, stderr io.Writer, fail func(string, ...any) int) int {
	store, err := n.loadImages()
	if err != nil {
		return fail("%v", err)
	}
	for _, name := range args {
		if strings.HasPrefix(name, "-") {
			continue // --sync
		}
		if _, ok := store[name]; !ok {
			// ctr warns and goes on; the exit status stays 0.
			fmt.Fprintf(stderr, "WARN[0000] %s: image not found\n", name)
			continue
		}
		delete(store, name)
		fmt.Fprintln(stdout, name)
	}
	if err := n.saveImages(store); err != nil {
		return fail("%v", err)
	}
	return 0
}

// Images lists the names and digests in the machine's image store, for
// tests.
func (n *Node) Images() (map[string]string, error) {
	n.images.Lock()
	defer n.images.Unlock()
	store, err := n.loadImages()
	out := map[string]string{}
	for name, im := range store {
		out[name] = im.Digest
	}
	return out, err
}

func (n *Node) loadImages() (map[string]storedImage, error) {
	store := map[string]storedImage{}
	b, err := n.readFile(imagesFile)
	if err != nil {
		return store, nil // none yet
	}
	if err := json.Unmarshal(b, &store); err != nil {
		return nil, errors.New("failed to open the metadata store: " + err.Error())
	}
	return store, nil
}

func (n *Node) saveImages(store map[string]storedImage) error {
	b, err := json.Marshal(store)
	if err != nil {
		return err
	}
	return n.writeFile(imagesFile, b, 0o600)
}

// storeSize is the content the images hold; images of one digest share it.
func storeSize(store map[string]storedImage) int64 {
	seen := map[string]bool{}
	var total int64
	for _, im := range store {
		if !seen[im.Digest] {
			seen[im.Digest] = true
			total += im.Size
		}
	}
	return total
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
