// Command action is SMEK's GitHub Action and command-line client.
//
// Run with no arguments it is the action's main step: it creates a cluster
// and hands later steps a working KUBECONFIG. With the single argument
// "post" it is the post step that ends the cluster. Anything else is the
// CLI (create, list, get, kubeconfig, stop, start, terminate, extend,
// versions) for other CI systems and shells.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/smek/action/internal/ghaction"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, programArgs(os.Args), os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// run has reported the error in the form its mode needs.
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// postName is the name the image gives the program for the post step.
// The runner passes a container action's args to every stage alike, so
// action.yml's post-entrypoint names this link instead: run as smek-post,
// the program is "smek post".
const postName = "smek-post"

// version is the action's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// programArgs returns the arguments of the command line argv.
func programArgs(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) == postName {
		return []string{"post"}
	}
	return argv[1:]
}

// run dispatches on args: no arguments is the action's main step, "post"
// its post step, anything else the CLI.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return newProgram(getenv, stdout, stderr).run(ctx, args)
}

// errUsage matches errors in how the program was called (exit status 2).
var errUsage = errors.New("usage")

// usageError is an error in how the program was called.
type usageError struct{ error }

func (usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// program holds what the action needs from its surroundings, so that tests
// can place it in a simulated runner.
type program struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// containerHome is where the runner mounts the job's home in a
	// container action: ghaction.ContainerHome.
	containerHome string
	// http is used for the SMEK API and the OIDC token endpoint.
	http *http.Client
	// ticker drives progress lines while a create waits.
	ticker        func(time.Duration) (<-chan time.Time, func())
	progressEvery time.Duration
	// now is the clock of upload rates.
	now func() time.Time
	// version is the action's own version, sent as User-Agent.
	version string
}

func newProgram(getenv func(string) string, stdout, stderr io.Writer) *program {
	return &program{
		getenv:        getenv,
		stdout:        stdout,
		stderr:        stderr,
		containerHome: ghaction.ContainerHome,
		http:          &http.Client{Transport: http.DefaultTransport},
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
		progressEvery: 10 * time.Second,
		now:           time.Now,
		version:       version,
	}
}

func (p *program) run(ctx context.Context, args []string) error {
	switch {
	case len(args) == 0 && p.getenv("GITHUB_ACTIONS") != "true":
		// Someone ran the CLI without a command.
		fmt.Fprint(p.stderr, usage)
		return usagef("no command")
	case len(args) == 0:
		return p.mainStep(ctx)
	case len(args) == 1 && args[0] == "post":
		p.postStep(ctx)
		return nil
	default:
		return p.cli(ctx, args)
	}
}

// userAgent names this program to the server.
func (p *program) userAgent() string { return fmt.Sprintf("smek-action/%s", p.version) }
