package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction"
	"github.com/smek/action/internal/wire"
)

// terminateTimeout bounds the post step's call to the server.
const terminateTimeout = time.Minute

// postStep ends the cluster of the main step unless keep-cluster was set,
// or keeps it for debugging when the job failed and keep-on-failure is
// set. It never fails the job: cleanup trouble is a warning, and the
// server's TTL (and the GitHub App) end the cluster anyway.
func (p *program) postStep(ctx context.Context) {
	a := p.action()
	id := p.getenv("STATE_" + stateClusterID)
	if id == "" {
		fmt.Fprintln(p.stdout, "No SMEK cluster was created; nothing to clean up.")
		return
	}
	if path := p.getenv("STATE_" + stateKubeconfig); path != "" {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			a.Warningf("remove the kubeconfig of cluster %s: %s", id, err)
		}
	}
	if p.getenv("STATE_"+stateKeepCluster) == "true" {
		fmt.Fprintf(p.stdout, "Keeping cluster %s (keep-cluster: true); it ends at its expiry, or with `smek terminate %s`.\n", id, id)
		return
	}
	in := readInputs(a)
	if in.apiURL == "" {
		a.Warningf("cannot terminate cluster %s: input api-url is empty; it ends at its expiry", id)
		return
	}
	c, _, err := p.jobClient(ctx, a, in)
	if err != nil {
		a.Warningf("cannot terminate cluster %s: %s; it ends at its expiry", id, err)
		return
	}
	failed := p.jobFailed(a, in.jobStatus)
	mode, err := parseDiagnostics("diagnostics", in.diagnostics)
	if err != nil {
		a.Warningf("input %s; collecting them on failure", err)
		mode = diagnosticsOnFailure
	}
	p.postDiagnostics(ctx, a, c, id, mode, failed)
	if keepFor := p.keepFor(a, in.keepOnFailure); failed && keepFor > 0 {
		if p.keepForDebugging(ctx, a, c, id, keepFor) {
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, terminateTimeout)
	defer cancel()
	_, err = c.Terminate(ctx, id)
	switch {
	case err == nil:
		fmt.Fprintf(p.stdout, "Terminated cluster %s.\n", id)
	case client.IsNotFound(err) || client.IsConflict(err):
		fmt.Fprintf(p.stdout, "Cluster %s is already gone.\n", id)
	default:
		a.Warningf("terminate cluster %s: %s; it ends at its expiry", id, explain(err, c.BaseURL(), 0))
	}
}

// jobFailed reads the job-status input (job.status as the runner has it
// for the post step). A status it cannot read is a warning and counts as
// not failed: the cluster is terminated as without keep-on-failure.
func (p *program) jobFailed(a *githubactions.Action, status string) bool {
	if strings.TrimSpace(status) == "" {
		return false
	}
	failed, err := jobFailed("job-status", status)
	if err != nil {
		a.Warningf("input %s", err)
	}
	return failed
}

// keepFor reads keep-on-failure; the main step refused a malformed one
// already, so here it is only a warning.
func (p *program) keepFor(a *githubactions.Action, v string) time.Duration {
	d, err := parseKeepFor("keep-on-failure", v)
	if err != nil {
		a.Warningf("input %s; the cluster is terminated", err)
	}
	return d
}

// keepForDebugging keeps the failed job's cluster for d and tells the job
// summary how to reach it. It reports whether the cluster was kept; when
// not (the server refused, the cluster is not running), the caller
// terminates it.
func (p *program) keepForDebugging(ctx context.Context, a *githubactions.Action, c *client.Client, id string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, terminateTimeout)
	defer cancel()
	cl, err := c.Keep(ctx, id, int(d/time.Minute), keepReason(p.getenv("GITHUB_JOB")))
	if err != nil {
		a.Warningf("keep cluster %s for debugging: %s; terminating it", id, explain(err, c.BaseURL(), 0))
		return false
	}
	fmt.Fprintf(p.stdout, "The job failed: keeping cluster %s for debugging until %s (keep-on-failure: %s).\n",
		id, cl.ExpiresAt.UTC().Format(time.RFC3339), d)
	fmt.Fprintf(p.stdout, "Reach it with your own SMEK token: smek kubeconfig %s --write smek-%s.yaml\n", id, id)
	cmds := ghaction.Commands{A: a, Getenv: p.getenv}
	if err := cmds.AddStepSummary(keptSummary(cl, c.BaseURL(), d)); err != nil {
		a.Warningf("%s", err)
	}
	return true
}

// keptSummary is the job summary of a cluster kept for debugging: until
// when, how to reach it with one's own token, how to end it early.
func keptSummary(cl *wire.Cluster, apiURL string, asked time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### SMEK cluster `%s` kept for debugging\n\n", cl.ClusterID)
	fmt.Fprintf(&b, "The job failed, so its cluster was not terminated: it runs until **%s** and then ends.", cl.ExpiresAt.UTC().Format(time.RFC3339))
	if cl.KeptAt != nil && cl.ExpiresAt.Sub(*cl.KeptAt) < asked {
		fmt.Fprintf(&b, " (keep-on-failure asked for %s; the account allows less)", asked)
	}
	account := ""
	if cl.Account != "" {
		account = " of the account `" + cl.Account + "`"
	}
	fmt.Fprintf(&b, "\n\nReach it with your own SMEK token%s (the job's credential is not shown here):\n\n", account)
	fmt.Fprintf(&b, "```sh\nexport SMEK_API_URL=%s SMEK_TOKEN=...   # your token\n", apiURL)
	fmt.Fprintf(&b, "smek kubeconfig %s --write smek-%s.yaml\nexport KUBECONFIG=$PWD/smek-%s.yaml\nkubectl get pods -A\n```\n\n", cl.ClusterID, cl.ClusterID, cl.ClusterID)
	fmt.Fprintf(&b, "More time: `smek extend %s --minutes 30`. Done early: `smek terminate %s`.\n", cl.ClusterID, cl.ClusterID)
	return b.String()
}
