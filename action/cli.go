package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction"
	"github.com/smek/action/internal/wire"
)

const usage = `smek: SMEK's GitHub Action and command-line client.

Usage:
  smek <command> [flags] [cluster-id]

Commands:
  create       create a cluster, write its kubeconfig, print shell exports
  list         list your clusters
  get          show one cluster
  kubeconfig   print (or write) a running cluster's kubeconfig
  stop         stop a cluster (terminates it without keep-cluster)
  start        start a stopped cluster and write its fresh kubeconfig
  terminate    end a cluster for good
  extend       move a cluster's expiry and refresh its kubeconfig file
  release      end a CI job's cluster, or keep it for debugging when the job failed
  versions     list the Kubernetes versions and sizes the server offers
  image load   put images from Docker or from archive files into a cluster
  version      print this program's version

Every command takes --api-url (or SMEK_API_URL) and --token (or SMEK_TOKEN;
prefer the variable, a flag shows in the process list).
Run 'smek <command> --help' for its flags.

Without arguments the program is the GitHub Action's main step; with the
single argument 'post', its post step.
`

// command is one CLI subcommand.
type command struct {
	name, args, help string
	// needsID commands take a cluster id as their argument.
	needsID bool
	flags   func(fs *flag.FlagSet) func(ctx context.Context, p *program, c *client.Client, id string) error
	// operands, instead of flags, is for commands that take a list of
	// arguments (image load).
	operands func(fs *flag.FlagSet) func(ctx context.Context, p *program, c *client.Client, args []string) error
	// sub makes the command a group (image): its first argument names
	// one of these.
	sub []command
}

var commands = []command{
	{name: "create", help: "Create a cluster and write its kubeconfig (default $HOME/.kube/smek-<id>.yaml).\nPrints `export KUBECONFIG=...` and `export SMEK_CLUSTER_ID=...`, for eval.", flags: createFlags},
	{name: "list", help: "List your clusters.", flags: listFlags},
	{name: "get", args: "<cluster-id>", needsID: true, help: "Show one cluster.", flags: getFlags},
	{name: "kubeconfig", args: "<cluster-id>", needsID: true, help: "Print a running cluster's kubeconfig, or write it with --write.", flags: kubeconfigFlags},
	{name: "stop", args: "<cluster-id>", needsID: true, help: "Stop a cluster; without keep-cluster, or with --force-terminate, it is terminated.", flags: stopFlags},
	{name: "start", args: "<cluster-id>", needsID: true, help: "Start a stopped cluster and write its fresh kubeconfig.", flags: startFlags},
	{name: "terminate", args: "<cluster-id>", needsID: true, help: "End a cluster for good.", flags: terminateFlags},
	{name: "extend", args: "<cluster-id>", needsID: true, help: "Move a cluster's expiry by --minutes, and refresh the cluster's kubeconfig file you hold\n" +
		"(smek-<id>.yaml in KUBECONFIG, under $HOME/.kube, or the action's file in a later step of the job)\n" +
		"or write a fresh one to --kubeconfig PATH. Kubeconfigs handed out before keep working too:\n" +
		"each is valid for 7 days, or until the deadline if that is later, while the cluster runs.", flags: extendFlags},
	{name: "release", args: "<cluster-id>", needsID: true, help: releaseHelp, flags: releaseFlags},
	{name: "versions", help: "List the Kubernetes versions and cluster sizes the server offers.", flags: versionsFlags},
	{name: "image", help: imageHelp, sub: []command{
		{name: "load", args: "IMAGE-or-FILE...", help: imageLoadHelp, operands: imageLoadFlags},
	}},
}

// findCommand returns the command of cmds named name, or nil.
func findCommand(cmds []command, name string) *command {
	for i := range cmds {
		if cmds[i].name == name {
			return &cmds[i]
		}
	}
	return nil
}

// cli runs a subcommand. Errors are printed to stderr and returned.
func (p *program) cli(ctx context.Context, args []string) error {
	err := p.dispatch(ctx, args)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		return nil
	default:
		fmt.Fprintf(p.stderr, "smek: %s\n", err)
	}
	return err
}

func (p *program) dispatch(ctx context.Context, args []string) error {
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(p.stdout, usage)
		return nil
	case "version", "-version", "--version":
		fmt.Fprintf(p.stdout, "smek %s\n", p.version)
		return nil
	}
	cmd := findCommand(commands, args[0])
	if cmd == nil {
		fmt.Fprint(p.stderr, usage)
		return usagef("unknown command %q", args[0])
	}
	name, args := cmd.name, args[1:]
	if cmd.sub != nil {
		group := cmd
		switch {
		case len(args) == 0:
			fmt.Fprint(p.stderr, group.help)
			return usagef("%s needs a command", name)
		case slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]):
			fmt.Fprint(p.stdout, group.help)
			return nil
		}
		if cmd = findCommand(group.sub, args[0]); cmd == nil {
			fmt.Fprint(p.stderr, group.help)
			return usagef("unknown command %q %q", name, args[0])
		}
		name, args = name+" "+cmd.name, args[1:]
	}

	fs := flag.NewFlagSet("smek "+name, flag.ContinueOnError)
	fs.SetOutput(p.stderr)
	apiURL := fs.String("api-url", p.getenv("SMEK_API_URL"), "SMEK server `URL` (env SMEK_API_URL)")
	token := fs.String("token", "", "SMEK `token` (env SMEK_TOKEN)")
	var action func(ctx context.Context, p *program, c *client.Client, id string) error
	var withArgs func(ctx context.Context, p *program, c *client.Client, args []string) error
	if cmd.operands != nil {
		withArgs = cmd.operands(fs)
	} else {
		action = cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(p.stderr, "Usage: smek %s [flags] %s\n\n%s\n\nFlags:\n", name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%w", err)
	}
	var id string
	switch {
	case withArgs != nil && len(rest) == 0:
		fs.Usage()
		return usagef("%s takes at least one argument", name)
	case withArgs != nil:
	case cmd.needsID && len(rest) != 1:
		fs.Usage()
		return usagef("%s takes one cluster id", name)
	case cmd.needsID:
		id = rest[0]
	case len(rest) != 0:
		return usagef("%s takes no arguments, got %q", name, rest)
	}
	if *token == "" {
		*token = p.getenv("SMEK_TOKEN")
	}
	if *apiURL == "" {
		return usagef("no server: set SMEK_API_URL or --api-url")
	}
	c, err := client.New(*apiURL, *token, client.WithHTTPClient(p.http), client.WithUserAgent(p.userAgent()))
	if err != nil {
		return fmt.Errorf("--api-url: %w", err)
	}
	if withArgs != nil {
		return withArgs(ctx, p, c, rest)
	}
	return action(ctx, p, c, id)
}

// parseInterspersed parses flags before and after positional arguments
// (`smek stop c-abc123 --force-terminate`), which package flag alone does
// not.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// outputFlag adds --output text|json.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "output `format`: text or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usagef("--output: %q is not text or json", o)
	}
	return nil
}

func createFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	var in createInputs
	fs.StringVar(&in.K8sVersion, "k8s-version", "", "Kubernetes `version` (server default when empty)")
	fs.StringVar(&in.MinutesToLive, "minutes-to-live", "", "`minutes` until the cluster ends (server default 60)")
	fs.StringVar(&in.ClusterSize, "cluster-size", "", "cluster `size` (server default 1-mid)")
	fs.StringVar(&in.EnablePrivileged, "enable-privileged", "", "allow privileged pods, if the token permits: true or false")
	fs.StringVar(&in.KeepCluster, "keep-cluster", "", "at expiry, stop instead of terminate: true or false (server default true)")
	fs.StringVar(&in.NotificationEmail, "notification-email", "", "`address` for lifecycle mails")
	fs.StringVar(&in.Wait, "wait", "", "how long to wait for a ready cluster, like 90s or 5m (default 5m)")
	kubeconfig := fs.String("kubeconfig", "", "write the kubeconfig to `path` (default $HOME/.kube/smek-<id>.yaml; - for stdout)")
	output := outputFlag(fs)
	return func(ctx context.Context, p *program, c *client.Client, _ string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		req, wait, err := in.request(nil)
		if err != nil {
			return fmt.Errorf("--%w", err)
		}
		if md := p.ciMetadata(); md != nil {
			req.Run = md
		}
		fmt.Fprintf(p.stderr, "Creating a cluster at %s (waiting up to %s)\n", c.BaseURL(), wait)
		cl, err := p.create(ctx, c, req, wait)
		if err != nil {
			return explain(err, c.BaseURL(), wait)
		}
		path, err := p.saveKubeconfig(*kubeconfig, cl)
		if err != nil {
			return fmt.Errorf("cluster %s is running, but: %w", cl.ClusterID, err)
		}
		fmt.Fprintf(p.stderr, "Cluster %s is %s: Kubernetes %s, expires %s%s\n",
			cl.ClusterID, cl.ClusterStatus, cl.K8sVersion, cl.ExpiresAt.UTC().Format(time.RFC3339), readyIn(cl.Timings))
		if *output == "json" {
			return p.printJSON(cl)
		}
		if path != "" {
			fmt.Fprintf(p.stdout, "export KUBECONFIG=%s\n", shellQuote(path))
		}
		fmt.Fprintf(p.stdout, "export SMEK_CLUSTER_ID=%s\n", shellQuote(cl.ClusterID))
		return nil
	}
}

// ciMetadata describes the CI job the CLI runs in, so that the server's
// event log says where a cluster came from. In GitHub Actions (macOS and
// Windows runners, job containers, where the action cannot run) it is the
// action's run metadata, by which the SMEK App ends the cluster with the
// run; trouble reading it is a warning on stderr.
func (p *program) ciMetadata() *wire.RunMetadata {
	if p.getenv("GITHUB_ACTIONS") == "true" {
		return p.githubRun(func(w string) { fmt.Fprintf(p.stderr, "smek: warning: %s\n", w) })
	}
	if p.getenv("GITLAB_CI") != "true" {
		return nil
	}
	return &wire.RunMetadata{
		Repository: p.getenv("CI_PROJECT_PATH"),
		Job:        p.getenv("CI_JOB_NAME"),
		RunnerName: p.getenv("CI_RUNNER_DESCRIPTION"),
		Ref:        p.getenv("CI_COMMIT_REF_NAME"),
		SHA:        p.getenv("CI_COMMIT_SHA"),
		Event:      p.getenv("CI_PIPELINE_SOURCE"),
		Actor:      p.getenv("GITLAB_USER_LOGIN"),
	}
}

// saveKubeconfig writes the kubeconfig of cl where the user asked: "-" is
// stdout (then the path is ""), "" the default file under $HOME.
func (p *program) saveKubeconfig(dest string, cl *wire.Cluster) (string, error) {
	switch dest {
	case "-":
		_, err := io.WriteString(p.stdout, cl.Kubeconfig)
		return "", err
	case "":
		home, err := ghaction.ResolveHome(p.getenv, "")
		if err != nil {
			return "", fmt.Errorf("write the kubeconfig: %w", err)
		}
		return ghaction.WriteKubeconfig(home, cl.ClusterID, cl.Kubeconfig)
	}
	if err := ghaction.ReplaceFile(dest, cl.Kubeconfig); err != nil {
		return "", fmt.Errorf("write the kubeconfig: %w", err)
	}
	return dest, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (p *program) printJSON(v any) error {
	if cl, ok := v.(*wire.Cluster); ok {
		// The kubeconfig goes to its file, never to logs.
		c := *cl
		c.Kubeconfig = ""
		v = c
	}
	enc := json.NewEncoder(p.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	status := fs.String("status", "", "only clusters in this `status` (running, stopped, terminated, ...)")
	output := outputFlag(fs)
	return func(ctx context.Context, p *program, c *client.Client, _ string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		list, err := c.List(ctx, client.ListOptions{Status: *status})
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		if *output == "json" {
			return p.printJSON(wire.ClusterList{Clusters: list})
		}
		tw := tabwriter.NewWriter(p.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLUSTER\tSTATUS\tK8S\tEXPIRES\tKEEP\tRUN")
		for _, cl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", cl.ClusterID, cl.ClusterStatus, cl.K8sVersion,
				cl.ExpiresAt.UTC().Format(time.RFC3339), cl.KeepCluster, runLabel(cl.Run))
		}
		return tw.Flush()
	}
}

// runLabel names the CI run of a cluster in one word.
func runLabel(r *wire.RunMetadata) string {
	if r == nil || r.Repository == "" {
		return "-"
	}
	if r.RunID != 0 {
		return fmt.Sprintf("%s#%d", r.Repository, r.RunID)
	}
	return r.Repository
}

// clusterAction is the shape of the per-cluster commands that answer with
// the cluster.
func clusterAction(fs *flag.FlagSet, call func(c *client.Client, ctx context.Context, id string) (*wire.Cluster, error), done string) func(context.Context, *program, *client.Client, string) error {
	output := outputFlag(fs)
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		cl, err := call(c, ctx, id)
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		if *output == "json" {
			return p.printJSON(cl)
		}
		fmt.Fprintf(p.stdout, "%s %s: %s, expires %s\n", done, cl.ClusterID, cl.ClusterStatus, cl.ExpiresAt.UTC().Format(time.RFC3339))
		return nil
	}
}

func getFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	return clusterAction(fs, (*client.Client).Get, "Cluster")
}

func stopFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	force := fs.Bool("force-terminate", false, "terminate even a keep-cluster cluster")
	return clusterAction(fs, func(c *client.Client, ctx context.Context, id string) (*wire.Cluster, error) {
		return c.Stop(ctx, id, *force)
	}, "Stopped")
}

func terminateFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	return clusterAction(fs, (*client.Client).Terminate, "Terminated")
}

func extendFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	minutes := fs.Int("minutes", 0, "`minutes` to add to the expiry (required)")
	kubeconfig := fs.String("kubeconfig", "", "write the fresh kubeconfig to `path` (default: refresh the cluster's file in KUBECONFIG or $HOME/.kube, if there is one)")
	output := outputFlag(fs)
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if *minutes < 1 {
			return usagef("--minutes: %d must be at least 1", *minutes)
		}
		cl, err := c.Extend(ctx, id, *minutes)
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		notes := p.stdout
		if *output == "json" {
			if err := p.printJSON(cl); err != nil {
				return err
			}
			notes = p.stderr
		} else {
			fmt.Fprintf(p.stdout, "Extended %s: %s, expires %s\n", cl.ClusterID, cl.ClusterStatus, cl.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return p.refreshKubeconfig(ctx, c, cl, *kubeconfig, notes)
	}
}

// refreshKubeconfig gives the kubeconfig files of cl that this user holds a
// fresh credential after an extend, or writes one to dest. The ones handed
// out before stay valid (for a week at least, see docs/action.md); a fresh
// one is valid until the new deadline whatever its distance, and it is what
// a user who runs `smek extend` expects to hold.
func (p *program) refreshKubeconfig(ctx context.Context, c *client.Client, cl *wire.Cluster, dest string, notes io.Writer) error {
	id := cl.ClusterID
	if cl.ClusterStatus != "running" {
		fmt.Fprintf(p.stderr, "smek: cluster %s is %s, so there is no kubeconfig to refresh; `smek start %s` hands out a fresh one\n", id, cl.ClusterStatus, id)
		return nil
	}
	paths := []string{dest}
	if dest == "" {
		paths = p.heldKubeconfigs(id)
	}
	if len(paths) == 0 {
		fmt.Fprintf(p.stderr, "smek: no kubeconfig file of %s found to refresh; `smek kubeconfig %s --write PATH` writes a fresh one\n", id, id)
		return nil
	}
	fresh, err := c.Kubeconfig(ctx, id)
	if err != nil {
		return fmt.Errorf("cluster %s is extended, but its kubeconfig could not be refreshed: %w", id, explain(err, c.BaseURL(), 0))
	}
	for _, path := range paths {
		if err := ghaction.ReplaceFile(path, fresh.Kubeconfig); err != nil {
			if dest != "" {
				return fmt.Errorf("cluster %s is extended, but: %w", id, err)
			}
			// The file found is still valid for days: say so, don't fail
			// the extend.
			fmt.Fprintf(p.stderr, "smek: cluster %s is extended, but its kubeconfig was not refreshed: %s\n", id, err)
			continue
		}
		fmt.Fprintf(notes, "Refreshed the kubeconfig %s\n", path)
	}
	return nil
}

// heldKubeconfigs returns the existing files that hold the kubeconfig of
// cluster id, each once: those named smek-<id>.yaml in KUBECONFIG, the one
// `smek create` and the action write under the home's .kube, and the one a
// later step of a GitHub Actions job finds under RUNNER_TEMP. Other files,
// such as ~/.kube/config, are never rewritten.
func (p *program) heldKubeconfigs(id string) []string {
	name := ghaction.KubeconfigName(id)
	var candidates []string
	for _, f := range filepath.SplitList(p.getenv("KUBECONFIG")) {
		if filepath.Base(f) == name {
			candidates = append(candidates, f)
		}
	}
	if home, err := ghaction.ResolveHome(p.getenv, p.containerHome); err == nil {
		candidates = append(candidates, filepath.Join(home.Dir, ".kube", name))
	}
	if f := ghaction.HostKubeconfig(p.getenv, id); f != "" {
		candidates = append(candidates, f)
	}
	var out []string
	var seen []os.FileInfo
	for _, f := range candidates {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() || slices.ContainsFunc(seen, func(s os.FileInfo) bool { return os.SameFile(s, fi) }) {
			continue
		}
		seen = append(seen, fi)
		out = append(out, f)
	}
	return out
}

func startFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	kubeconfig := fs.String("kubeconfig", "", "write the kubeconfig to `path` (default $HOME/.kube/smek-<id>.yaml; - for stdout)")
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		var restore *restoreWatch
		if before, err := c.Get(ctx, id); err == nil && before.ClusterStatus == statusHibernated {
			gb := 0.0
			if before.SnapshotSizeGB != nil {
				gb = *before.SnapshotSizeGB
			}
			fmt.Fprintf(p.stderr, "Cluster %s is hibernated (stopped for long, its server kept as a %.1f GB snapshot): restoring it takes a few minutes\n", id, gb)
			restore = p.watchRestore(ctx, c, id)
		}
		cl, err := c.Start(ctx, id)
		if restore != nil {
			restore.stop(ctx)
		}
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		path, err := p.saveKubeconfig(*kubeconfig, cl)
		if err != nil {
			return fmt.Errorf("cluster %s is running, but: %w", cl.ClusterID, err)
		}
		if cl.RestoreMS > 0 {
			fmt.Fprintf(p.stderr, "Restored %s from its snapshot in %s; its API server is %s now, so kubeconfigs from before the hibernation no longer work: use the fresh one\n",
				cl.ClusterID, (time.Duration(cl.RestoreMS) * time.Millisecond).Round(time.Second), cl.APIServer)
		}
		fmt.Fprintf(p.stderr, "Started %s: expires %s\n", cl.ClusterID, cl.ExpiresAt.UTC().Format(time.RFC3339))
		if path != "" {
			fmt.Fprintf(p.stdout, "export KUBECONFIG=%s\n", shellQuote(path))
		}
		return nil
	}
}

func kubeconfigFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	write := fs.String("write", "-", "write to `path` instead of stdout (\"\" for $HOME/.kube/smek-<id>.yaml)")
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		cl, err := c.Kubeconfig(ctx, id)
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		path, err := p.saveKubeconfig(*write, cl)
		if err != nil {
			return err
		}
		if path != "" {
			fmt.Fprintf(p.stdout, "export KUBECONFIG=%s\n", shellQuote(path))
		}
		return nil
	}
}

func versionsFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	output := outputFlag(fs)
	return func(ctx context.Context, p *program, c *client.Client, _ string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		v, err := c.Versions(ctx)
		if err != nil {
			return explain(err, c.BaseURL(), 0)
		}
		if *output == "json" {
			return p.printJSON(v)
		}
		fmt.Fprintf(p.stdout, "Kubernetes versions: %s (default %s)\nCluster sizes: %s\n",
			strings.Join(v.K8sVersions, ", "), v.DefaultK8sVersion, strings.Join(v.ClusterSizes, ", "))
		return nil
	}
}
