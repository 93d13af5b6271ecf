package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction"
	"github.com/smek/action/internal/wire"
)

// State names shared by the main and the post step (STATE_<name> there).
const (
	stateClusterID   = "cluster_id"
	stateKeepCluster = "keep_cluster"
	stateKubeconfig  = "kubeconfig"
)

// actionInputs are the action's inputs as action.yml declares them.
type actionInputs struct {
	apiURL, token, oidcAudience string
	create                      createInputs
	// keepOnFailure, diagnostics and jobStatus are the post step's: what
	// to do with the cluster of a failed job. jobStatus is job.status as
	// the runner evaluates it for the post step (action.yml's default).
	keepOnFailure, diagnostics, jobStatus string
	// images are image references and archive files to load into the
	// cluster, separated by whitespace.
	images []string
}

// readInputs reads the inputs and masks the token before anything can
// print it.
func readInputs(a *githubactions.Action) actionInputs {
	in := actionInputs{
		apiURL:       a.GetInput("api-url"),
		token:        a.GetInput("token"),
		oidcAudience: a.GetInput("oidc-audience"),
		create: createInputs{
			K8sVersion:        a.GetInput("k8s-version"),
			MinutesToLive:     a.GetInput("minutes-to-live"),
			ClusterSize:       a.GetInput("cluster-size"),
			EnablePrivileged:  a.GetInput("enable-privileged"),
			KeepCluster:       a.GetInput("keep-cluster"),
			NotificationEmail: a.GetInput("notification-email"),
			Wait:              a.GetInput("wait"),
		},
		keepOnFailure: a.GetInput("keep-on-failure"),
		diagnostics:   a.GetInput("diagnostics"),
		jobStatus:     a.GetInput("job-status"),
		images:        strings.Fields(a.GetInput("images")),
	}
	// Outside action.yml (a workflow that runs the image itself) the
	// CLI's variables fill in.
	if in.apiURL == "" {
		in.apiURL = a.Getenv("SMEK_API_URL")
	}
	if in.token == "" {
		in.token = a.Getenv("SMEK_TOKEN")
	}
	if in.oidcAudience == "" {
		in.oidcAudience = defaultAudience(in.apiURL)
	}
	if in.token != "" {
		a.AddMask(in.token)
	}
	return in
}

func (p *program) action() *githubactions.Action {
	return githubactions.New(
		githubactions.WithWriter(p.stdout),
		githubactions.WithGetenv(p.getenv),
		githubactions.WithHTTPClient(p.http),
	)
}

// mainStep is the action's main step. Errors become an ::error::
// annotation and a failed step.
func (p *program) mainStep(ctx context.Context) error {
	a := p.action()
	if id := a.GetInput("collect-diagnostics"); id != "" {
		if err := p.collectForJob(ctx, a, id); err != nil {
			a.Errorf("%s", err)
			return err
		}
		return nil
	}
	if err := p.createForJob(ctx, a); err != nil {
		a.Errorf("%s", err)
		return err
	}
	return nil
}

func (p *program) createForJob(ctx context.Context, a *githubactions.Action) error {
	in := readInputs(a)
	if in.apiURL == "" {
		return errors.New("input api-url is required: the URL of the SMEK server, e.g. https://smek.example.com")
	}
	keepDefault := false
	req, wait, err := in.create.request(&keepDefault)
	if err != nil {
		return fmt.Errorf("input %w", err)
	}
	// The post step's inputs fail here, before a cluster exists.
	if _, err := parseKeepFor("keep-on-failure", in.keepOnFailure); err != nil {
		return fmt.Errorf("input %w", err)
	}
	if _, err := parseDiagnostics("diagnostics", in.diagnostics); err != nil {
		return fmt.Errorf("input %w", err)
	}
	cmds := ghaction.Commands{A: a, Getenv: p.getenv}
	home, err := ghaction.ResolveHome(p.getenv, p.containerHome)
	if err != nil {
		return fmt.Errorf("find the home directory for the kubeconfig: %w", err)
	}
	c, cred, err := p.jobClient(ctx, a, in)
	if err != nil {
		return err
	}
	req.Run = p.runMetadata(a)

	fmt.Fprintf(p.stdout, "Creating a cluster at %s (authenticated by %s, waiting up to %s)\n", c.BaseURL(), cred.kind, wait)
	cl, err := p.create(ctx, c, req, wait)
	if err != nil {
		return explain(err, c.BaseURL(), wait)
	}
	// From here on the cluster exists: make sure the post step can end it
	// before anything else can fail.
	keep := req.KeepCluster != nil && *req.KeepCluster
	if err := cmds.SaveState(stateClusterID, cl.ClusterID); err != nil {
		p.abandon(ctx, a, c, cl.ClusterID)
		return err
	}
	if err := cmds.SaveState(stateKeepCluster, fmt.Sprint(keep)); err != nil {
		return err
	}
	for _, secret := range ghaction.Credentials(cl.Kubeconfig) {
		a.AddMask(secret)
	}
	images, err := p.loadImages(ctx, c, cl.ClusterID, in.images)
	if err != nil {
		return err
	}
	path, err := ghaction.WriteKubeconfig(home, cl.ClusterID, cl.Kubeconfig)
	if err != nil {
		return err
	}
	hostPath, err := home.HostPath(path)
	if err != nil {
		return err
	}
	if err := cmds.SaveState(stateKubeconfig, path); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"cluster-id", cl.ClusterID},
		{"kubeconfig", hostPath},
		{"api-server", cl.APIServer},
		{"expires-at", cl.ExpiresAt.UTC().Format(time.RFC3339)},
	} {
		if err := cmds.SetOutput(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := cmds.SetEnv("KUBECONFIG", hostPath); err != nil {
		return err
	}
	if err := cmds.AddStepSummary(summary(cl, hostPath, images)); err != nil {
		a.Warningf("%s", err)
	}
	fmt.Fprintf(p.stdout, "Cluster %s is %s: Kubernetes %s, expires %s%s\n",
		cl.ClusterID, cl.ClusterStatus, cl.K8sVersion, cl.ExpiresAt.UTC().Format(time.RFC3339), readyIn(cl.Timings))
	fmt.Fprintf(p.stdout, "KUBECONFIG=%s for the following steps\n", hostPath)
	return nil
}

// loadImages loads the images of the images input into the new cluster,
// before any output names it. Files are relative to the workspace; image
// references come from the runner's Docker Engine, whose socket the runner
// mounts into container actions at /var/run/docker.sock.
func (p *program) loadImages(ctx context.Context, c *client.Client, id string, images []string) ([]wire.Image, error) {
	if len(images) == 0 {
		return nil, nil
	}
	fmt.Fprintf(p.stdout, "Loading %d image(s) into %s: %s\n", len(images), id, strings.Join(images, " "))
	l := &imageLoader{p: p, c: c, id: id, w: p.stdout, dir: p.getenv("GITHUB_WORKSPACE"), dockerHost: p.getenv("DOCKER_HOST")}
	if err := l.load(ctx, images); err != nil {
		return nil, fmt.Errorf("input images: %w", err)
	}
	return l.loaded, nil
}

// create asks for a cluster, printing progress while the server waits for
// the pool.
func (p *program) create(ctx context.Context, c *client.Client, req wire.CreateRequest, wait time.Duration) (*wire.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+waitGrace)
	defer cancel()
	stop := p.progress(p.stdout, "a ready cluster", wait)
	defer stop()
	return c.Create(ctx, req)
}

// abandon ends a cluster the action cannot hand over, so it does not run
// until its TTL.
func (p *program) abandon(ctx context.Context, a *githubactions.Action, c *client.Client, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.Terminate(ctx, id); err != nil {
		a.Warningf("terminate cluster %s after the failure: %s", id, err)
	}
}

// runMetadata is the run's identity for the server; trouble reading it is
// a warning, never a failure.
func (p *program) runMetadata(a *githubactions.Action) *wire.RunMetadata {
	return p.githubRun(func(w string) { a.Warningf("%s", w) })
}

// githubRun reads the GitHub Actions run's metadata, the event payload's
// pull request included, passing trouble to warn.
func (p *program) githubRun(warn func(string)) *wire.RunMetadata {
	var event []byte
	if path := p.getenv("GITHUB_EVENT_PATH"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			warn(fmt.Sprintf("read the event payload: %s", err))
		}
		event = b
	}
	md, warnings := ghaction.RunMetadata(p.getenv, event)
	// job.check_run_id reaches the action through its job-id input only
	// (INPUT_JOB-ID, as the runner names it).
	if v := strings.TrimSpace(p.getenv("INPUT_JOB-ID")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			warnings = append(warnings, fmt.Sprintf("input job-id %q is not a job id; left out of the run metadata", v))
		} else {
			md.JobID = n
		}
	}
	for _, w := range warnings {
		warn(w)
	}
	if md == (wire.RunMetadata{}) {
		return nil
	}
	return &md
}

// readyIn says how fast the cluster came, for the log line.
func readyIn(t *wire.Timings) string {
	if t == nil {
		return ""
	}
	pool := "from the warm pool"
	if !t.Warm {
		pool = "after waiting for the pool"
	}
	return fmt.Sprintf(" (ready in %s, %s)", (time.Duration(t.TotalMS) * time.Millisecond).String(), pool)
}

// summary is the job summary: the cluster, its expiry, the timings, the
// images loaded.
func summary(cl *wire.Cluster, kubeconfig string, images []wire.Image) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### SMEK cluster `%s`\n\n", cl.ClusterID)
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("Status", cl.ClusterStatus)
	row("Kubernetes", cl.K8sVersion)
	row("Size", cl.ClusterSize)
	row("API server", "`"+cl.APIServer+"`")
	row("Expires", cl.ExpiresAt.UTC().Format(time.RFC3339)+fmt.Sprintf(" (%d minutes to live)", cl.MinutesToLive))
	row("Keep cluster", fmt.Sprint(cl.KeepCluster))
	row("Privileged", fmt.Sprint(cl.EnablePrivileged))
	row("KUBECONFIG", "`"+kubeconfig+"`")
	if t := cl.Timings; t != nil {
		b.WriteString("\n| Phase | ms |\n|---|---:|\n")
		fmt.Fprintf(&b, "| queued | %d |\n| claimed | %d |\n| ready | %d |\n| **total** | **%d** |\n", t.QueuedMS, t.ClaimedMS, t.ReadyMS, t.TotalMS)
		if t.Warm {
			b.WriteString("\nServed from the warm pool.\n")
		} else {
			b.WriteString("\nWaited for the pool.\n")
		}
	}
	if len(images) > 0 {
		b.WriteString("\n| Image loaded | digest |\n|---|---|\n")
		for _, img := range images {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", img.Name, img.Digest)
		}
	}
	return b.String()
}
