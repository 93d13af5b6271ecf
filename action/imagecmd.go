package main

import (
	"context"
	"flag"
	"strings"

	"github.com/smek/action/internal/client"
)

const imageHelp = `Usage: smek image <command> [flags]

Commands:
  load   put images into a running cluster's node, without a registry

Run 'smek image load --help' for its flags.
`

const imageLoadHelp = `Put images into the node of a running cluster, without a registry round trip.
An argument that names an existing file, or looks like a path (starts with /,
./ or ../, ends with .tar, .tar.gz or .tgz), is an image archive: the output
of docker save, or an OCI image layout as a tar, gzip'ed or not. Each file is
checked before anything is sent and goes in a request of its own.
Any other argument is an image reference: all of them are exported in one
stream from the Docker Engine (the API behind docker save, GET /images/get)
at --docker-host, DOCKER_HOST, or unix:///var/run/docker.sock, and streamed
to the server as they come, without a temporary file. Podman answers the same
API on its socket: point DOCKER_HOST at it. No docker binary is needed.
Progress goes to stderr; at the end, the images the node now has.`

func imageLoadFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, []string) error {
	cluster := fs.String("cluster", "", "`id` of the cluster (default $SMEK_CLUSTER_ID, which smek create exports)")
	dockerHost := fs.String("docker-host", "", "Docker Engine `address`, unix:///path or tcp://host:port without TLS (default $DOCKER_HOST, else "+defaultDockerHost+")")
	return func(ctx context.Context, p *program, c *client.Client, args []string) error {
		id := strings.TrimSpace(*cluster)
		if id == "" {
			id = strings.TrimSpace(p.getenv("SMEK_CLUSTER_ID"))
		}
		if id == "" {
			return usagef("--cluster: no cluster id; give one, or set SMEK_CLUSTER_ID")
		}
		host := *dockerHost
		if host == "" {
			host = p.getenv("DOCKER_HOST")
			if host != "" && p.getenv("DOCKER_TLS_VERIFY") != "" {
				return usagef("DOCKER_TLS_VERIFY is set, but the Docker Engine is spoken to without TLS here; use its unix socket (--docker-host unix:///var/run/docker.sock)")
			}
		}
		l := &imageLoader{p: p, c: c, id: id, w: p.stderr, dockerHost: host}
		return l.load(ctx, args)
	}
}
