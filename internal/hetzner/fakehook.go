package hetzner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// FakeSSHAddr returns an SSHAddr for the fake Hetzner API at endpoint
// (internal/fake/hcloudfake): each simulated machine has its own loopback SSH
// port, published at GET {endpoint}/_hcloudfake/servers/{id}. Real servers
// listen on port 22 and need no hook.
func FakeSSHAddr(endpoint string, hc *http.Client) func(context.Context, *hcloud.Server) (string, error) {
	return fakePort(FakePortAddr(endpoint, hc), 22)
}

// FakeAPIAddr returns an APIAddr for the fake Hetzner API at endpoint: the
// loopback address that stands for public port 6443 of the machine, where
// its simulated k3s listens ("" while it does not).
func FakeAPIAddr(endpoint string, hc *http.Client) func(context.Context, *hcloud.Server) (string, error) {
	return fakePort(FakePortAddr(endpoint, hc), 6443)
}

func fakePort(at func(context.Context, *hcloud.Server, int) (string, error), p int) func(context.Context, *hcloud.Server) (string, error) {
	return func(ctx context.Context, s *hcloud.Server) (string, error) { return at(ctx, s, p) }
}

// FakePortAddr returns a CheckConfig.PortAddr for the fake Hetzner API at
// endpoint (internal/fake/hcloudfake): each public port of a simulated machine
// (22, 6443, a LoadBalancer Service's port) stands on its own loopback
// port, published at GET {endpoint}/_hcloudfake/servers/{id} as "ports".
// A port not published yet is "". Real servers need no hook.
func FakePortAddr(endpoint string, hc *http.Client) func(context.Context, *hcloud.Server, int) (string, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	endpoint = strings.TrimRight(endpoint, "/")
	return func(ctx context.Context, s *hcloud.Server, p int) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/_hcloudfake/servers/%d", endpoint, s.ID), nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("ask the fake for server %d's port %d: %w", s.ID, p, err)
		}
		defer resp.Body.Close()
		var body struct {
			Ports map[string]string `json:"ports"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("ask the fake for server %d's port %d: status %d", s.ID, p, resp.StatusCode)
		}
		return body.Ports[strconv.Itoa(p)], nil
	}
}
