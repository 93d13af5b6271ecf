package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/smek/action/internal/client"
)

// terminateTimeout bounds the post step's call to the server.
const terminateTimeout = time.Minute

// postStep ends the cluster of the main step unless keep-cluster was set.
// It never fails the job: cleanup trouble is a warning, and the server's
// TTL (and the GitHub App) end the cluster anyway.
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
		fmt.Fprintf(p.stdout, "Keeping cluster %s (keep-cluster: true); it ends at its expiry, or with `action stop %s --force-terminate`.\n", id, id)
		return
	}
	in := readInputs(a)
	if in.apiURL == "" {
		a.Warningf("cannot terminate cluster %s: input api-url is empty; it ends at its expiry", id)
		return
	}
	cred, err := actionCredential(ctx, a, in.token, in.oidcAudience)
	if err != nil {
		a.Warningf("cannot terminate cluster %s: %s; it ends at its expiry", id, err)
		return
	}
	c, err := client.New(in.apiURL, cred.token, client.WithHTTPClient(p.http), client.WithUserAgent(p.userAgent()))
	if err != nil {
		a.Warningf("cannot terminate cluster %s: input api-url: %s; it ends at its expiry", id, err)
		return
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
