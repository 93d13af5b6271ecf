package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/smek/action/internal/api"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/server"
)

// defaultKubeBin is where `make kube-bin` puts the Kubernetes binaries.
const defaultKubeBin = "bin/kube"

// defaultOpsAddr serves the status page and /metrics to this host only.
// It is next to --addr's default; 9090 would clash with a Prometheus on
// the same host.
const defaultOpsAddr = "127.0.0.1:8081"

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run the SMEK server. With no flags: SQLite in ./data, the local backend, a warm pool of 2.", stderr)
	var cfg server.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "folder for the SQLite database and the local backend's clusters")
	fs.StringVar(&cfg.Backend, "backend", "local", "where clusters run: local or hetzner")
	fs.StringVar(&cfg.KubeBin, "kube-bin", defaultKubeBin, "folder with etcd, kube-apiserver and kube-controller-manager (built by make kube-bin)")
	fs.IntVar(&cfg.PoolSize, "pool-size", 2, "ready clusters kept warm (baseline flavor of the default version)")
	fs.IntVar(&cfg.PoolSizePrivileged, "pool-size-privileged", 0, "ready privileged clusters kept warm")
	fs.IntVar(&cfg.MaxPoolMembers, "max-pool-members", 0, "bound on the clusters of one flavor, claimed ones included (0: none)")
	fs.IntVar(&cfg.ProvisionParallel, "provision-parallel", 2, "how many clusters are booted or cleaned at once")
	fs.StringVar(&cfg.DefaultK8sVersion, "default-k8s-version", "", "version for creates that name none (default: the newest offered)")
	fs.DurationVar(&cfg.DefaultWait, "default-wait", 5*time.Minute, "how long a create waits for a ready cluster when the pool is empty")
	fs.StringVar(&cfg.OpsAddr, "ops-addr", defaultOpsAddr, "address of the status page and /metrics, never served on --addr; empty turns them off")
	opsTokenFile := fs.String("ops-token-file", "", "file with a bearer token the status page and /metrics require (set it when --ops-addr is not loopback)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "how users reach this server, for links in mails (default http://ADDR)")
	fs.StringVar(&cfg.OIDCIssuer, "oidc-issuer", auth.GitHubIssuer, "issuer of accepted CI OIDC tokens (GitLab: https://gitlab.com)")
	fs.StringVar(&cfg.OIDCAudience, "oidc-audience", "", "audience CI jobs request for SMEK, normally the server's public URL; empty turns OIDC off")
	fs.StringVar(&cfg.SMTPURL, "smtp-url", "", "SMTP server for notification mail: smtp://user:pass@host:587?starttls=required or smtps://...; empty turns mail off")
	fs.StringVar(&cfg.MailFrom, "mail-from", "", "sender address of notification mail (required with --smtp-url)")
	fs.DurationVar(&cfg.EventRetention, "event-retention", 30*24*time.Hour, "how long cluster and pool events are kept")
	fs.DurationVar(&cfg.MaxStoppedLifetime, "max-stopped-lifetime", lifecycle.DefaultMaxStoppedLifetime, "how long a cluster stays stopped before it is terminated (its owner is mailed a day before); a start gives it a fresh lifetime")
	fs.DurationVar(&cfg.HibernateAfter, "hibernate-after", lifecycle.DefaultHibernateAfter, "how long a cluster stays stopped before its server is snapshotted and deleted (hetzner; a start restores it in minutes); 0 never")
	fs.StringVar(&cfg.GitHubWebhookSecret, "github-webhook-secret", "", "serve the GitHub App's webhook at /github/webhook with this secret")
	ghAppID := fs.Int64("github-app-id", 0, "the GitHub App's id; with --github-app-key-file it enables PR comment commands")
	ghKeyFile := fs.String("github-app-key-file", "", "the GitHub App's private key (PEM)")
	ghAPIURL := fs.String("github-api-url", "", "GitHub's REST API: empty for github.com, https://HOST for GitHub Enterprise Server")
	ghTimeout := fs.Duration("github-timeout", githubapp.DefaultRequestTimeout, "how long the GitHub App waits for each answer of GitHub's API")
	var pf poolPolicyFlags
	pf.register(fs)
	var pwf prewarmFlags
	pwf.register(fs)
	var hf hetznerBackendFlags
	hf.register(fs)
	fs.StringVar(&cfg.LocalNodes, "local-nodes", "auto", "local: give every cluster a kubelet node that runs pods: on, off, or auto (on when the machine can: root, containerd, runc, CNI plugins; see make node-deps)")
	var mirrors mirrorFlag
	fs.Var(&mirrors, "registry-mirror", "pull images of REGISTRY from a mirror first, `REGISTRY=URL` (e.g. docker.io=https://mirror.example; REGISTRY * is every registry without mirrors of its own); repeat it or separate with commas: a node tries a registry's mirrors in order, then the registry")
	egressAllow := fs.String("local-egress-allow", "", "local: comma-separated CIDRs the tenants' API servers may reach for webhooks although they are private or this machine's (refused by default)")
	imageMax := byteSize(api.DefaultImageMaxBytes)
	fs.Var(&imageMax, "image-max-bytes", "largest image archive a client may load into a cluster (smek image load), such as 4GiB or 512MiB; spooled under --data-dir")
	prices := addCostFlags(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.ImageMaxBytes = int64(imageMax)
	cfg.RegistryMirrors = mirrors.list
	cfg.Prices, cfg.SnapshotPrice = prices.prices, prices.snapshotPrice()
	if cfg.PoolSize < 0 || cfg.PoolSizePrivileged < 0 {
		return fmt.Errorf("%w: pool sizes must not be negative", errUsage)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if cfg.PoolPolicy, err = pf.config(cfg.Backend, given); err != nil {
		return err
	}
	if cfg.MaxStoppedLifetime <= 0 {
		return fmt.Errorf("%w: --max-stopped-lifetime must be positive, e.g. 168h: stopped clusters are not kept forever, got %s", errUsage, cfg.MaxStoppedLifetime)
	}
	if cfg.HibernateAfter < 0 {
		return fmt.Errorf("%w: --hibernate-after must be 0 (never) or positive, e.g. 2h, got %s", errUsage, cfg.HibernateAfter)
	}
	switch cfg.LocalNodes {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("%w: --local-nodes must be auto, on or off, got %q", errUsage, cfg.LocalNodes)
	}
	if cfg.LocalEgressAllow, err = parsePrefixes(*egressAllow); err != nil {
		return fmt.Errorf("%w: --local-egress-allow: %v", errUsage, err)
	}
	if *opsTokenFile != "" {
		if cfg.OpsToken, err = readToken(*opsTokenFile); err != nil {
			return err
		}
	}
	if err := pwf.apply(fs, &cfg); err != nil {
		return err
	}
	if (*ghAppID != 0) != (*ghKeyFile != "") {
		return fmt.Errorf("%w: --github-app-id and --github-app-key-file go together", errUsage)
	}
	if *ghAppID != 0 {
		key, err := os.ReadFile(*ghKeyFile)
		if err != nil {
			return fmt.Errorf("%w: --github-app-key-file: %v", errUsage, err)
		}
		gh, err := githubapp.NewAppClient(*ghAppID, key, *ghAPIURL, nil, githubapp.WithTimeout(*ghTimeout))
		if err != nil {
			return err
		}
		cfg.GitHub = gh
	}
	if cfg.Backend == "hetzner" {
		if cfg.Hetzner, err = hf.config(logger, getenv); err != nil {
			return err
		}
	}

	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if ts, err := srv.DB.Tokens(ctx); err == nil && len(ts) == 0 {
		logger.Info("no API tokens yet; create one with: provisioner token create --data-dir " + cfg.DataDir + " --account NAME")
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-srv.Err():
		logger.Error("server failed", logkey.Err, err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	return err
}

// sshSources checks --ssh-source-cidr against --firewall. SMEK bootstraps
// every server over SSH from the provisioner, and the firewall drops what
// no rule lets in: with SMEK's firewall and no source for port 22 no
// server would ever be reached, so serve refuses to start. It does not
// guess the provisioner's address: behind NAT or several egress addresses
// (IPv4 and IPv6, a moved host) a guess is wrong in ways that show only as
// bootstrap timeouts, and 0.0.0.0/0 would open SSH to the world.
func sshSources(firewall, list string) ([]string, error) {
	prefixes, err := parsePrefixes(list)
	if err != nil {
		return nil, fmt.Errorf("%w: --ssh-source-cidr: %v", errUsage, err)
	}
	if firewall != "" && len(prefixes) == 0 {
		return nil, fmt.Errorf("%w: --ssh-source-cidr is required with --backend hetzner: the firewall %q lets SSH (port 22) in only from "+
			"these CIDRs, and the provisioner bootstraps every server over SSH; give its public address(es), e.g. "+
			"--ssh-source-cidr 203.0.113.7/32,2001:db8::7/128 (or --firewall '' to manage the servers' firewall yourself)", errUsage, firewall)
	}
	out := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.String())
	}
	return out, nil
}

// readToken reads the operator's bearer token: the file's content without
// surrounding white space, at least 16 characters.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: --ops-token-file: %v", errUsage, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%w: --ops-token-file must hold one token of at least 16 characters (make one with: head -c 32 /dev/urandom | base64 > FILE)", errUsage)
	}
	return tok, nil
}

// readKey reads a 32-byte key, raw or hex-encoded.
func readKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --credential-key-file is required with --backend hetzner (make one with: head -c 32 /dev/urandom > key)", errUsage)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --credential-key-file: %v", errUsage, err)
	}
	if len(b) == 32 {
		return b, nil
	}
	if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("%w: --credential-key-file must hold 32 bytes, raw or as 64 hex digits", errUsage)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: use text or json", errUsage, format)
}

// parsePrefixes parses a comma-separated list of CIDRs; empty is none.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 192.168.1.0/24", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
