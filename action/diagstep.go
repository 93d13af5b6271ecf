package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction"
)

// diagnosticsTimeout bounds a step's collection of diagnostics; the server
// bounds its own side too.
const diagnosticsTimeout = 2 * time.Minute

// diagnosticsDir is where a job's steps put cluster id's diagnostics: in
// the job's home, which the runner's later steps see under RUNNER_TEMP.
func diagnosticsDir(home ghaction.Home, id string) string {
	return filepath.Join(home.Dir, "smek-diagnostics-"+id)
}

// collectDiagnostics unpacks cluster id's diagnostics into the job's home
// and puts their summary into the job summary and the log. It returns the
// folder's path as later steps see it. A folder already there (an earlier
// step collected them) is kept as it is.
func (p *program) collectDiagnostics(ctx context.Context, a *githubactions.Action, c *client.Client, id string) (string, error) {
	home, err := ghaction.ResolveHome(p.getenv, p.containerHome)
	if err != nil {
		return "", fmt.Errorf("find the home directory for the diagnostics: %w", err)
	}
	dir := diagnosticsDir(home, id)
	hostDir, err := home.HostPath(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		fmt.Fprintf(p.stdout, "The diagnostics of cluster %s are in %s already.\n", id, hostDir)
		return hostDir, nil
	}
	ctx, cancel := context.WithTimeout(ctx, diagnosticsTimeout)
	defer cancel()
	fmt.Fprintf(p.stdout, "Collecting the diagnostics of cluster %s (nodes, events, pods, logs; no credentials)\n", id)
	summary, err := p.fetchDiagnostics(ctx, c, id, dir)
	if err != nil {
		if errors.Is(err, errBundle) {
			// What was unpacked is of no use, and it would stop a later
			// step from trying again.
			_ = os.RemoveAll(dir)
		}
		return "", err
	}
	a.Group("SMEK diagnostics of cluster " + id)
	fmt.Fprintln(p.stdout, strings.TrimSpace(summary))
	a.EndGroup()
	cmds := ghaction.Commands{A: a, Getenv: p.getenv}
	if err := cmds.AddStepSummary(fmt.Sprintf("### Diagnostics of SMEK cluster `%s`\n\n%s\n\nThe whole bundle is in `%s` on the runner.\n", id, strings.TrimSpace(summary), hostDir)); err != nil {
		a.Warningf("%s", err)
	}
	fmt.Fprintf(p.stdout, "Diagnostics of cluster %s in %s\n", id, hostDir)
	return hostDir, nil
}

// collectForJob is the main step with collect-diagnostics set: it makes no
// cluster, it collects the diagnostics of the one named and sets the
// output diagnostics to their folder, for actions/upload-artifact.
func (p *program) collectForJob(ctx context.Context, a *githubactions.Action, id string) error {
	in := readInputs(a)
	if in.apiURL == "" {
		return errors.New("input api-url is required: the URL of the SMEK server, e.g. https://smek.example.com")
	}
	id = strings.TrimSpace(id)
	if !ghaction.ValidClusterID(id) {
		return fmt.Errorf("input collect-diagnostics: %q is not a cluster id like c-a1b2c3", id)
	}
	c, _, err := p.jobClient(ctx, a, in)
	if err != nil {
		return err
	}
	dir, err := p.collectDiagnostics(ctx, a, c, id)
	if err != nil {
		return err
	}
	return ghaction.Commands{A: a, Getenv: p.getenv}.SetOutput("diagnostics", dir)
}

// postDiagnostics collects the diagnostics in the post step when the
// diagnostics input asks for them; trouble is a warning.
func (p *program) postDiagnostics(ctx context.Context, a *githubactions.Action, c *client.Client, id, mode string, failed bool) {
	if mode != diagnosticsAlways && (mode != diagnosticsOnFailure || !failed) {
		return
	}
	if _, err := p.collectDiagnostics(ctx, a, c, id); err != nil {
		a.Warningf("diagnostics of cluster %s: %s", id, err)
	}
}
