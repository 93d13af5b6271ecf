package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/kube/policy"
)

// hetznerBackendFlags are serve's flags for the hetzner backend: those
// every Hetzner command shares and those only a running backend needs.
// `hetzner check` registers the same, so it checks what serve runs with.
type hetznerBackendFlags struct {
	hetznerFlags
	credKeyFile, firewall, sshSource string
}

func (h *hetznerBackendFlags) register(fs *flag.FlagSet) {
	h.hetznerFlags.register(fs)
	fs.StringVar(&h.credKeyFile, "credential-key-file", "", "hetzner: file with 32 bytes (raw or hex) that seal cluster admin credentials at rest")
	fs.StringVar(&h.firewall, "firewall", "smek", "hetzner: name of the firewall SMEK keeps on its servers (created, its rules kept in line with these flags); empty: you manage the servers' firewall")
	fs.StringVar(&h.sshSource, "ssh-source-cidr", "", "hetzner: comma-separated CIDRs that may reach port 22: the provisioner's public address(es), e.g. 203.0.113.7/32 (required with --firewall)")
}

// config turns the flags into the backend's configuration; the token may
// also come from SMEK_HCLOUD_TOKEN.
func (h *hetznerBackendFlags) config(logger *slog.Logger, getenv func(string) string) (hetzner.Config, error) {
	if h.token == "" {
		h.token = getenv("SMEK_HCLOUD_TOKEN")
	}
	cfg, err := h.hetznerFlags.config(logger)
	if err != nil {
		return hetzner.Config{}, err
	}
	if cfg.CredentialKey, err = readKey(h.credKeyFile); err != nil {
		return hetzner.Config{}, err
	}
	cfg.Firewall = h.firewall
	if cfg.SourceCIDRs, err = sshSources(h.firewall, h.sshSource); err != nil {
		return hetzner.Config{}, err
	}
	return cfg, nil
}

func cmdHetzner(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "hetzner", []subcommand{{"check", cmdHetznerCheck}}, args, getenv, stdout, stderr)
}

const hetznerCheckSummary = `Preflight of a Hetzner deployment, with serve's hetzner flags (and their SMEK_*
variables). Step by step, one line each: the token reads and writes (a throwaway
SSH key is registered and deleted), the locations and server types exist and
are offered, the golden snapshots are available, the firewall admits SSH; then
one server boots from the newest snapshot as the pool boots them, is bootstrapped
and checked from here (SSH and the address the server sees, CoreDNS, a PVC bound
with a consumer pod, a LoadBalancer Service on port 80 answering HTTP), and is
deleted, also when a step fails or the check is interrupted. Prints what the
server cost. Exits 1 when a step failed.`

// errCheckFailed is the error of a check with failed steps.
var errCheckFailed = errors.New("hetzner check failed")

func cmdHetznerCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hetzner check", hetznerCheckSummary, stderr)
	var hf hetznerBackendFlags
	hf.register(fs)
	versions := fs.String("k8s-version", "", "comma-separated Kubernetes versions whose golden snapshots must be available (default: every version that has one)")
	image := fs.String("check-image", hetzner.DefaultCheckImage, "image of the test pods (httpd -f -p 8080, and the PVC's consumer)")
	timeout := fs.Duration("step-timeout", 5*time.Minute, "how long SSH, the bootstrap, the PVC and the LoadBalancer may each take")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout (the lines go to stderr)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --step-timeout must be positive, got %s", errUsage, *timeout)
	}
	if strings.TrimSpace(*image) == "" {
		return fmt.Errorf("%w: --check-image must name an image", errUsage)
	}
	var want []string
	for _, v := range strings.Split(*versions, ",") {
		if v = strings.TrimPrefix(strings.TrimSpace(v), "v"); v == "" {
			continue
		}
		if _, err := hetzner.K8sVersion("v" + v + "+k3s1"); err != nil {
			return fmt.Errorf("%w: --k8s-version %q is not like 1.36.3", errUsage, v)
		}
		want = append(want, v)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := hf.config(logger, getenv)
	if err != nil {
		return err
	}
	cfg.ReadyTimeout = *timeout
	// The tenant policy as serve applies it, so that the check's pods and
	// claim meet the admission tenants meet.
	cfg.Policy = func(ctx context.Context, admin *rest.Config, f cluster.Flavor) error {
		return policy.Apply(ctx, admin, policy.Options{Privileged: f.Privileged})
	}
	b, err := hetzner.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	lines := stdout
	if *asJSON {
		lines = stderr
	}
	cc := hetzner.CheckConfig{
		Versions: want, Image: *image,
		Report: func(s hetzner.CheckStep) { fmt.Fprintf(lines, "%-4s  %-22s  %s\n", s.Status, s.Name, s.Detail) },
	}
	if hf.fakeSSH {
		cc.PortAddr = hetzner.FakePortAddr(hf.endpoint, nil)
	}
	res := b.Check(ctx, cc)
	counts := map[hetzner.CheckStatus]int{}
	for _, s := range res.Steps {
		counts[s.Status]++
	}
	summary := fmt.Sprintf("%d ok, %d warnings, %d failed, %d skipped", counts[hetzner.CheckOK], counts[hetzner.CheckWarn], counts[hetzner.CheckFail], counts[hetzner.CheckSkip])
	if res.ServerID != 0 {
		summary += fmt.Sprintf("; server %d existed %.1f s, billed %d started hour(s)", res.ServerID, res.ServerSeconds, res.BilledHours)
		if res.Cost != "" {
			summary += fmt.Sprintf(" × %s = %s gross", res.HourlyPrice, res.Cost)
		}
	}
	fmt.Fprintln(lines, "hetzner check: "+summary)
	if *asJSON {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	}
	if res.Failed() > 0 {
		return fmt.Errorf("%w: %s", errCheckFailed, summary)
	}
	return nil
}
