package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/hetzner"
)

const imageBuildSummary = `Build a Hetzner golden snapshot for one k3s release: a builder server from
--base-image gets k3s installed but never started, the airgap images, SMEK's node
files and the tenant policy bundle as auto-deploy manifests; cloud-init is cleaned,
the server shut down and snapshotted with labels (smek.io/role=golden,
smek.io/k8s-version, smek.io/k3s-version), and the builder deleted, also when a
step fails. Several versions live side by side; the pool finds them by label.`

// hetznerFlags are the flags every command that talks to Hetzner shares
// (serve --backend hetzner should register the same).
type hetznerFlags struct {
	endpoint, token, tokenFile, installation string
	sshKeyFile, sshKeyName, location         string
	fakeSSH                                  bool
	actionWait                               time.Duration
}

func (h *hetznerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.endpoint, "hcloud-endpoint", hcloud.Endpoint, "Hetzner Cloud API endpoint (e.g. the fake: go run ./tools/hcloudfake)")
	fs.StringVar(&h.token, "hcloud-token", "", "Hetzner Cloud API token (prefer --hcloud-token-file or SMEK_HCLOUD_TOKEN)")
	fs.StringVar(&h.tokenFile, "hcloud-token-file", "", "file holding the Hetzner Cloud API token")
	fs.StringVar(&h.installation, "installation", "smek", "label value that ties cloud resources to this installation")
	fs.StringVar(&h.sshKeyFile, "ssh-key-file", "", "private SSH key (OpenSSH format) SMEK logs in to servers with (required)")
	fs.StringVar(&h.sshKeyName, "ssh-key-name", "smek", "name of that key at Hetzner (registered when missing)")
	fs.StringVar(&h.location, "location", "fsn1", "Hetzner location(s), comma-separated, tried in order")
	fs.BoolVar(&h.fakeSSH, "hcloud-fake-ssh", false, "ask the fake API (/_hcloudfake/servers/{id}) for each server's SSH and Kubernetes API ports instead of using 22 and 6443")
	fs.DurationVar(&h.actionWait, "hcloud-action-wait", 0, "first poll of an action (or of a server going off after a shutdown) after this long (0: its typical duration, 20s for create and rebuild, 5s for power, 10s for a shutdown; a fake is faster)")
}

// config turns the flags into a backend configuration.
func (h *hetznerFlags) config(logger *slog.Logger) (hetzner.Config, error) {
	cfg, err := h.apiConfig(logger)
	if err != nil {
		return cfg, err
	}
	if h.sshKeyFile == "" {
		return hetzner.Config{}, fmt.Errorf("%w: --ssh-key-file is required", errUsage)
	}
	pem, err := os.ReadFile(h.sshKeyFile)
	if err != nil {
		return hetzner.Config{}, fmt.Errorf("%w: --ssh-key-file: %v", errUsage, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return hetzner.Config{}, fmt.Errorf("%w: --ssh-key-file: %v", errUsage, err)
	}
	cfg.SSHKeyName, cfg.Signer = h.sshKeyName, signer
	return cfg, nil
}

// apiConfig is config without the SSH key, for commands that only talk to
// the API.
func (h *hetznerFlags) apiConfig(logger *slog.Logger) (hetzner.Config, error) {
	token := h.token
	if h.tokenFile != "" {
		b, err := os.ReadFile(h.tokenFile)
		if err != nil {
			return hetzner.Config{}, fmt.Errorf("%w: --hcloud-token-file: %v", errUsage, err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return hetzner.Config{}, fmt.Errorf("%w: --hcloud-token-file or SMEK_HCLOUD_TOKEN is required", errUsage)
	}
	cfg := hetzner.Config{
		// hetzner.New makes the client from Endpoint and Token (with the
		// server's Metrics when it sets them); Client is the same client
		// for code that checks it is there.
		Endpoint: h.endpoint, Token: token, Client: hetzner.NewClient(h.endpoint, token, nil),
		Installation: h.installation, Locations: strings.Split(h.location, ","), Logger: logger,
	}
	if h.fakeSSH {
		cfg.SSHAddr = hetzner.FakeSSHAddr(strings.TrimRight(h.endpoint, "/"), nil)
		cfg.APIAddr = hetzner.FakeAPIAddr(strings.TrimRight(h.endpoint, "/"), nil)
	}
	if h.actionWait < 0 {
		return hetzner.Config{}, fmt.Errorf("%w: --hcloud-action-wait must not be negative", errUsage)
	}
	if h.actionWait > 0 {
		cfg.ExpectCreate, cfg.ExpectRebuild, cfg.ExpectPower, cfg.ExpectShutdown, cfg.PollMin = h.actionWait, h.actionWait, h.actionWait, h.actionWait, h.actionWait
	}
	return cfg, nil
}

func cmdImage(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "prune" {
		return cmdImagePrune(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "build" {
		fmt.Fprintln(stderr, "Usage: provisioner image build --k3s-version vX.Y.Z+k3s1 [flags]\n       provisioner image prune [--keep N] [--dry-run] [flags]")
		return fmt.Errorf("%w: image needs the subcommand build or prune", errUsage)
	}
	fs := newFlagSet("image build", imageBuildSummary, stderr)
	var h hetznerFlags
	h.register(fs)
	version := fs.String("k3s-version", "", "k3s release to install, e.g. v1.36.3+k3s1 (required)")
	base := fs.String("base-image", "ubuntu-24.04", "system image the builder starts from")
	stype := fs.String("server-type", "ccx13", "server type of the builder")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if h.token == "" {
		h.token = getenv("SMEK_HCLOUD_TOKEN")
	}
	if _, err := hetzner.K8sVersion(*version); err != nil {
		return fmt.Errorf("%w: --k3s-version: %v", errUsage, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := h.config(logger)
	if err != nil {
		return err
	}
	// Nothing is sealed during an image build: a throwaway key will do.
	cfg.CredentialKey = make([]byte, 32)
	_, _ = rand.Read(cfg.CredentialKey)
	b, err := hetzner.New(cfg)
	if err != nil {
		return err
	}
	manifests, err := policyManifests()
	if err != nil {
		return err
	}
	img, err := b.BuildImage(ctx, hetzner.ImageConfig{
		K3sVersion: *version, BaseImage: *base, ServerType: *stype, Location: cfg.Locations[0], Manifests: manifests,
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	fmt.Fprintf(stdout, "snapshot %d: k3s %s (Kubernetes %s)\n", img.ID, *version, img.Labels[hetzner.LabelK8sVersion])
	return nil
}

// policyManifests is the tenant policy bundle (baseline) as one
// auto-deploy manifest, in force from k3s's first start; every bootstrap
// replaces it by the flavor's bundle (hetzner.PolicyManifest).
func policyManifests() (map[string][]byte, error) {
	b, err := hetzner.PolicyManifest(cluster.Flavor{})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"policy.yaml": b}, nil
}

const imagePruneSummary = `Delete the installation's old golden snapshots (snapshots are billed per GB):
of each Kubernetes version the --keep newest stay, and so does every snapshot a
pool member's server was built from (as the database in --data-dir records it);
snapshots still being made are left alone. --dry-run only lists what would go.`

func cmdImagePrune(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("image prune", imagePruneSummary, stderr)
	var h hetznerFlags
	h.register(fs)
	keep := fs.Int("keep", 2, "golden snapshots kept per Kubernetes version, newest first (at least 1)")
	dryRun := fs.Bool("dry-run", false, "list what would be deleted, delete nothing")
	dataDir := fs.String("data-dir", defaultDataDir, "the provisioner's data folder: its database says which snapshots members use")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if h.token == "" {
		h.token = getenv("SMEK_HCLOUD_TOKEN")
	}
	if *keep < 1 {
		return fmt.Errorf("%w: --keep must be at least 1: the newest snapshot of a version is the one new servers are built from", errUsage)
	}
	// Without the provisioner's database nothing says which snapshots are
	// in use: refuse rather than delete a member's image.
	if _, err := os.Stat(filepath.Join(*dataDir, "smek.db")); err != nil {
		return fmt.Errorf("%w: --data-dir %s holds no provisioner database (smek.db): it says which snapshots pool members use", errUsage, *dataDir)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := h.apiConfig(logger)
	if err != nil {
		return err
	}
	// Nothing is sealed and no server is logged in to: throwaway keys do.
	cfg.CredentialKey = make([]byte, 32)
	_, _ = rand.Read(cfg.CredentialKey)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if cfg.Signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return err
	}
	cfg.SSHKeyName = "unused"
	b, err := hetzner.New(cfg)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	members, err := db.Members(ctx, "hetzner")
	db.Close()
	if err != nil {
		return err
	}
	inUse := map[int64][]string{}
	for _, m := range members {
		if id := hetzner.MemberImage(m.Data); id != 0 {
			inUse[id] = append(inUse[id], m.ID)
		}
	}
	plan, err := b.PruneImages(ctx, *keep, inUse, *dryRun)
	deleted := 0
	for _, p := range plan {
		what := fmt.Sprintf("snapshot %d  k8s %s  %s  created %s", p.ID, p.K8sVersion, p.K3sVersion, p.Created.UTC().Format(time.RFC3339))
		switch {
		case !p.Delete:
			fmt.Fprintf(stdout, "keep    %s  (%s)\n", what, p.Reason)
		case *dryRun:
			fmt.Fprintf(stdout, "delete  %s\n", what)
			deleted++
		case p.Err != nil:
			fmt.Fprintf(stdout, "FAILED  %s: %v\n", what, p.Err)
		default:
			fmt.Fprintf(stdout, "deleted %s\n", what)
			deleted++
		}
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: %d snapshot(s) would be deleted; nothing was\n", deleted)
	} else {
		fmt.Fprintf(stdout, "%d snapshot(s) deleted\n", deleted)
	}
	if err != nil {
		return fmt.Errorf("image prune: %w", err)
	}
	return nil
}
