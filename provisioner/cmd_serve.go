package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/smek/action/internal/server"
)

// defaultKubeBin is where `make kube-bin` puts the Kubernetes binaries.
const defaultKubeBin = "bin/kube"

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run the SMEK server. With no flags: SQLite in ./data, the local backend, a warm pool of 2.", stderr)
	var cfg server.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "folder for the SQLite database and the local backend's clusters")
	fs.StringVar(&cfg.Backend, "backend", "local", "where clusters run: local or hetzner")
	fs.StringVar(&cfg.KubeBin, "kube-bin", defaultKubeBin, "folder with etcd, kube-apiserver and kube-controller-manager (built by `make kube-bin`)")
	fs.IntVar(&cfg.PoolSize, "pool-size", 2, "ready clusters kept warm (baseline flavor of the default version)")
	fs.IntVar(&cfg.PoolSizePrivileged, "pool-size-privileged", 0, "ready privileged clusters kept warm")
	fs.IntVar(&cfg.MaxPoolMembers, "max-pool-members", 0, "bound on the clusters of one flavor, claimed ones included (0: none)")
	fs.IntVar(&cfg.ProvisionParallel, "provision-parallel", 2, "how many clusters are booted or cleaned at once")
	fs.StringVar(&cfg.DefaultK8sVersion, "default-k8s-version", "", "version for creates that name none (default: the newest offered)")
	fs.DurationVar(&cfg.DefaultWait, "default-wait", 5*time.Minute, "how long a create waits for a ready cluster when the pool is empty")
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
	if cfg.PoolSize < 0 || cfg.PoolSizePrivileged < 0 {
		return fmt.Errorf("%w: pool sizes must not be negative", errUsage)
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
		logger.Error("server failed", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	return err
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

var _ = os.Stderr
