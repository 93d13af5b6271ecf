// Command provisioner is the SMEK server and its operator CLI.
//
//	provisioner serve                  run the server (local backend by default)
//	provisioner token create|list|revoke
//	provisioner policy add|list|remove OIDC policies
//	provisioner account link|list      GitHub App installations
//	provisioner pool status            the warm pool per flavor
//	provisioner cluster list --all     every cluster
//	provisioner image build|prune      Hetzner golden snapshots
//	provisioner hetzner check          preflight of a Hetzner deployment
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/smek/action/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "provisioner:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	if cluster.ErrorCode(err) == cluster.EINVALID {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

const usage = `provisioner — the SMEK server (Sub-Minute Ephemeral Kubernetes) and its operator CLI.

Usage:
  provisioner serve [flags]              run the server
  provisioner token create|list|revoke   manage API tokens
  provisioner policy add|list|remove     map CI OIDC tokens to accounts
  provisioner account link|list          tie GitHub App installations to accounts
  provisioner pool status                the warm pool per flavor
  provisioner cluster list --all         every cluster
  provisioner image build|prune          build a Hetzner golden snapshot
  provisioner hetzner check              preflight of a Hetzner deployment: boots, tests and deletes one server

Every flag can also be set as an environment variable: --data-dir is SMEK_DATA_DIR.
Run 'provisioner COMMAND --help' for a command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "token":
		return cmdToken(ctx, rest, getenv, stdout, stderr)
	case "policy":
		return cmdPolicy(ctx, rest, getenv, stdout, stderr)
	case "account":
		return cmdAccount(ctx, rest, getenv, stdout, stderr)
	case "pool":
		return cmdPool(ctx, rest, getenv, stdout, stderr)
	case "cluster":
		return cmdCluster(ctx, rest, getenv, stdout, stderr)
	case "image":
		return cmdImage(ctx, rest, getenv, stdout, stderr)
	case "hetzner":
		return cmdHetzner(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}
