// Command release is what the release workflow runs: it decides which
// moving tags a version takes, builds the CLI binaries with their checksums
// and the action image's root filesystem, and pins action.yml to the
// pushed image.
//
//	go run ./tools/release plan -version v1.2.3            name=value lines for GITHUB_OUTPUT
//	go run ./tools/release dist -version v1.2.3 -out dist linux/amd64 darwin/arm64 ...
//	go run ./tools/release pin  -version v1.2.3 -image ghcr.io/smek/action -digest sha256:...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/smek/action/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: release plan|dist|pin [flags]; release <command> -h for the flags`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	fs := flag.NewFlagSet("release "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	versionFlag := fs.String("version", "", "the release `version`, vX.Y.Z or vX.Y.Z-pre")
	var cmd func(release.Version) error
	switch args[0] {
	case "plan":
		gitDir := fs.String("git-dir", ".", "the repository whose tags count")
		cmd = func(v release.Version) error { return plan(ctx, v, *gitDir, stdout, stderr) }
	case "dist":
		out := fs.String("out", "dist", "the `folder` to build into")
		ca := fs.String("ca-bundle", release.DefaultCABundle, "PEM `file` of CA certificates for the image")
		moduleDir := fs.String("module", ".", "the module's root `folder`")
		cmd = func(v release.Version) error { return dist(ctx, v, *moduleDir, *out, *ca, fs.Args(), stdout) }
	case "pin":
		image := fs.String("image", "", "the image `repository`, like ghcr.io/smek/action")
		digest := fs.String("digest", "", "the pushed image's `digest`, sha256:...")
		file := fs.String("file", "action.yml", "the action metadata `file` to rewrite")
		cmd = func(v release.Version) error { return pin(v, *image, *digest, *file, stdout) }
	default:
		return fmt.Errorf("%w: unknown command %q; %s", errUsage, args[0], usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if args[0] != "dist" && fs.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, args[0], fs.Args())
	}
	v, err := release.ParseVersion(*versionFlag)
	if err != nil {
		return fmt.Errorf("%w: -version: %w", errUsage, err)
	}
	return cmd(v)
}

// plan prints the plan for GITHUB_OUTPUT on stdout and its reasons on
// stderr.
func plan(ctx context.Context, v release.Version, gitDir string, stdout, stderr io.Writer) error {
	tags, err := gitTags(ctx, gitDir)
	if err != nil {
		return err
	}
	p, err := release.NewPlan(v, tags)
	if err != nil {
		return err
	}
	for _, r := range p.Reasons {
		fmt.Fprintln(stderr, r)
	}
	for _, o := range p.Outputs() {
		fmt.Fprintln(stdout, o)
	}
	return nil
}

// gitTags lists the repository's tags with the commits they name.
// show-ref -d peels annotated tags down to the commit, through tags of
// tags too ("<sha> refs/tags/v1^{}").
func gitTags(ctx context.Context, dir string) ([]release.Tag, error) {
	cmd := exec.CommandContext(ctx, "git", "show-ref", "--tags", "-d")
	cmd.Dir = dir
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 1 && len(out) == 0 && len(ee.Stderr) == 0:
		return nil, nil // no tags at all
	case errors.As(err, &ee):
		return nil, fmt.Errorf("list tags: %w: %s", err, ee.Stderr)
	case err != nil:
		return nil, fmt.Errorf("list tags: %w", err)
	}
	commits := map[string]string{}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		sha, ref, ok := strings.Cut(l, " ")
		name, isTag := strings.CutPrefix(ref, "refs/tags/")
		if !ok || !isTag {
			return nil, fmt.Errorf("list tags: unexpected line %q", l)
		}
		if name, peeled := strings.CutSuffix(name, "^{}"); peeled {
			commits[name] = sha
			continue
		}
		if _, seen := commits[name]; !seen {
			names = append(names, name)
			commits[name] = sha
		}
	}
	tags := make([]release.Tag, 0, len(names))
	for _, n := range names {
		tags = append(tags, release.Tag{Name: n, Commit: commits[n]})
	}
	return tags, nil
}

func dist(ctx context.Context, v release.Version, moduleDir, out, ca string, platforms []string, stdout io.Writer) error {
	if len(platforms) == 0 {
		return fmt.Errorf("%w: dist: name the platforms, like linux/amd64", errUsage)
	}
	var ps []release.Platform
	for _, s := range platforms {
		p, err := release.ParsePlatform(s)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		ps = append(ps, p)
	}
	d, err := release.Build(ctx, release.DistOptions{ModuleDir: moduleDir, Out: out, Version: v, Platforms: ps, CABundle: ca})
	if err != nil {
		return err
	}
	for _, p := range ps {
		fmt.Fprintf(stdout, "%s  %s\n", d.Sums[p.Asset()], p.Asset())
	}
	return nil
}

func pin(v release.Version, image, digest, file string, stdout io.Writer) error {
	ref, err := release.ImageRef(image, v, digest)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	pinned, err := release.PinImage(b, ref)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, pinned, 0o644); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	fmt.Fprintf(stdout, "%s: image: %s\n", file, ref)
	return nil
}
