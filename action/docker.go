package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// defaultDockerHost is where the Docker Engine listens unless DOCKER_HOST
// says otherwise, and where the runner mounts the host's socket into a
// container action.
const defaultDockerHost = "unix:///var/run/docker.sock"

// dockerEngine speaks the part of the Docker Engine API that `docker save`
// uses, GET /images/get, with the standard library only: the action's
// image has no docker CLI, and the CLI needs none. Podman's Docker
// compatible socket answers the same request.
type dockerEngine struct {
	host string // as the user gave it, for messages
	base string // http://docker or http://host:port
	http *http.Client
}

// newDockerEngine returns a client of the engine at host: unix:///path or
// tcp://host:port (without TLS); "" is defaultDockerHost.
func newDockerEngine(host string) (*dockerEngine, error) {
	if host == "" {
		host = defaultDockerHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", host, err)
	}
	d := &dockerEngine{host: host}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("docker host %q: no socket path", host)
		}
		var dialer net.Dialer
		d.http = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", u.Path)
			},
		}}
		// The host name is not used to connect; the engine ignores it.
		d.base = "http://docker"
	case "tcp":
		if u.Host == "" {
			return nil, fmt.Errorf("docker host %q: no address", host)
		}
		d.http = &http.Client{Transport: &http.Transport{Proxy: nil}}
		d.base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("docker host %q: only unix:// and tcp:// (without TLS) are supported", host)
	}
	return d, nil
}

// save starts the export of refs as one `docker save` tar stream. An
// image the engine does not have is an error before any byte, with the
// engine's message; the stream's own errors come from its Read.
func (d *dockerEngine) save(ctx context.Context, refs []string) (io.ReadCloser, error) {
	q := url.Values{"names": refs}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/images/get?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-tar")
	resp, err := d.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the Docker Engine at %s (is Docker running? DOCKER_HOST or --docker-host chooses another): %w", d.host, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	return nil, fmt.Errorf("the Docker Engine at %s cannot export %s: %s", d.host, strings.Join(refs, " "), engineMessage(resp))
}

// engineMessage reads the Engine API's error answer, {"message": "..."}.
func engineMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return fmt.Sprintf("%s (%d)", e.Message, resp.StatusCode)
	}
	return fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}
