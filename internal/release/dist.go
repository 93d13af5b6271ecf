package release

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Names in the dist folder. The Dockerfile's action target copies
// ImageDir/linux-$TARGETARCH, so that the image carries the very binary
// the release attaches and SHA256SUMS names.
const (
	SumsFile = "SHA256SUMS"
	ImageDir = "image"
	// postLink is the post step's name of the binary in the image, as
	// action.yml's post-entrypoint calls it.
	postLink = "smek-post"
	caPath   = "etc/ssl/certs/ca-certificates.crt"
	// DefaultCABundle is where Debian and Ubuntu, GitHub's runners
	// included, keep the CA bundle the image copies.
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

// ParsePlatform parses "linux/amd64".
func ParsePlatform(s string) (Platform, error) {
	os, arch, ok := strings.Cut(s, "/")
	if !ok || os == "" || arch == "" || strings.Contains(arch, "/") {
		return Platform{}, fmt.Errorf("platform %q: want GOOS/GOARCH", s)
	}
	return Platform{os, arch}, nil
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Asset is the release asset of the CLI for p: smek-linux-amd64,
// smek-windows-amd64.exe.
func (p Platform) Asset() string {
	name := "smek-" + p.OS + "-" + p.Arch
	if p.OS == "windows" {
		name += ".exe"
	}
	return name
}

// ImageRoot is the action image's root filesystem for p, relative to the
// dist folder; only Linux has one.
func (p Platform) ImageRoot() string { return filepath.Join(ImageDir, p.OS+"-"+p.Arch) }

// DistOptions say what Build builds.
type DistOptions struct {
	// ModuleDir is the module's root, where ./action is.
	ModuleDir string
	// Out is the dist folder; it is created when missing.
	Out       string
	Version   Version
	Platforms []Platform
	// CABundle is a PEM file of CA certificates for the image, which has
	// no other way to trust the SMEK server's certificate.
	CABundle string
	// Go is the go command; "go" when empty.
	Go string
}

// Dist is what Build made.
type Dist struct {
	Dir string
	// Sums maps each asset to its SHA-256, hex, as SHA256SUMS has it.
	Sums map[string]string
}

// Build compiles the CLI for every platform the way the release does
// (static, trimmed, stripped, the version stamped in), writes SHA256SUMS
// in sha256sum's format, and lays out the action image's root filesystem
// for the Linux platforms: /smek, /smek-post (a link the post step runs)
// and the CA bundle.
func Build(ctx context.Context, o DistOptions) (*Dist, error) {
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("build dist: no platforms")
	}
	gocmd := cmp.Or(o.Go, "go")
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return nil, fmt.Errorf("build dist: read the CA bundle: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("build dist: %s holds no PEM certificate", o.CABundle)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("build dist: %w", err)
	}
	d := &Dist{Dir: o.Out, Sums: map[string]string{}}
	for _, p := range o.Platforms {
		bin := filepath.Join(o.Out, p.Asset())
		cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath",
			"-ldflags", "-s -w -X main.version="+o.Version.String(),
			"-o", bin, "./action")
		cmd.Dir = o.ModuleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build dist: go build for %s: %w\n%s", p, err, out)
		}
		sum, err := fileSHA256(bin)
		if err != nil {
			return nil, fmt.Errorf("build dist: %w", err)
		}
		d.Sums[p.Asset()] = sum
		if p.OS == "linux" {
			if err := imageRoot(filepath.Join(o.Out, p.ImageRoot()), bin, ca); err != nil {
				return nil, fmt.Errorf("build dist: image root for %s: %w", p, err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(o.Out, SumsFile), d.sumsFile(), 0o644); err != nil {
		return nil, fmt.Errorf("build dist: %w", err)
	}
	return d, nil
}

// sumsFile is SHA256SUMS as `sha256sum smek-*` writes it: "<hex>  <name>",
// sorted by name, which `sha256sum -c` and `shasum -a 256 -c` read.
func (d *Dist) sumsFile() []byte {
	var b bytes.Buffer
	names := make([]string, 0, len(d.Sums))
	for n := range d.Sums {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", d.Sums[n], n)
	}
	return b.Bytes()
}

// imageRoot lays out the image's files under dir, afresh.
func imageRoot(dir, bin string, ca []byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(caPath)), 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(dir, "smek"), bin, 0o755); err != nil {
		return err
	}
	// The runner passes a container action's args to every stage alike,
	// so the post step is a second name of the binary (see action/main.go).
	if err := os.Symlink("smek", filepath.Join(dir, postLink)); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, caPath), ca, 0o644)
}

func copyFile(dst, src string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFile(dst, b, mode)
}

// writeFile writes b with exactly mode, whatever the umask.
func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
