// Command hcloudfake serves the fake Hetzner Cloud API on loopback:
//
//	go run ./tools/hcloudfake -listen 127.0.0.1:4000 -durations create_server=20s,rebuild_server=15s
//
// Point hcloud-go (or SMEK's --hcloud-endpoint) at http://127.0.0.1:4000.
// With -machines every server is a simulated node reachable by SSH on
// loopback (its port is at GET /_hcloudfake/servers/{id}).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hcloudfake:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hcloudfake", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:4000", "address to serve on")
	token := fs.String("token", getenv("HCLOUD_TOKEN"), "the only accepted API token (empty: any)")
	durations := fs.String("durations", "", "action durations, e.g. create_server=20s,rebuild_server=15s")
	def := fs.Duration("default-duration", 2*time.Second, "duration of actions not named in -durations")
	limit := fs.Int("rate-limit", 3600, "request budget (refilled by one per second)")
	faults := fs.Float64("fault-rate", 0, "probability of a random 5xx/429 per request")
	machines := fs.Bool("machines", false, "back servers by simulated nodes (SSH on loopback, control plane from -kube-bin)")
	dataDir := fs.String("data-dir", "", "where simulated disks and snapshots live (default: a temp dir)")
	kubeBin := fs.String("kube-bin", getenv("SMEK_KUBE_BIN"), "folder with etcd, kube-apiserver, kube-controller-manager")
	shutdownDelay := fs.Duration("shutdown-delay", 0, "how long a server's OS takes to power off after its shutdown action succeeded")
	ignoreACPI := fs.Bool("ignore-acpi", false, "servers' OSes ignore shutdown requests (only poweroff turns them off)")
	hostKeyLag := fs.Int("host-key-lag", 0, "SSH connections a fresh system answers with its image's old host key before cloud-init ran")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := parseDurations(*durations)
	if err != nil {
		return fmt.Errorf("parse -durations: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil))
	cfg := hcloudfake.Config{
		Token: *token, Durations: d, DefaultDuration: *def, RateLimit: *limit, FaultRate: *faults, Logger: logger,
		ShutdownDelay: *shutdownDelay, IgnoreACPI: *ignoreACPI, HostKeyLag: *hostKeyLag,
	}
	if *machines {
		if *dataDir == "" {
			dir, err := os.MkdirTemp("", "hcloudfake-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			*dataDir = dir
		}
		cfg.DataDir = *dataDir
		cfg.Machines = k3snode.Factory(k3snode.Config{Dir: *dataDir, KubeBin: *kubeBin, Logger: logger})
	}
	f := hcloudfake.New(cfg)
	defer f.Close()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hcloudfake: serving http://%s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- f.Serve(l) }()
	select {
	case <-ctx.Done():
		_ = l.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
}

func parseDurations(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if s == "" {
		return out, nil
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not command=duration", kv)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", kv, err)
		}
		out[strings.TrimSpace(k)] = d
	}
	return out, nil
}
