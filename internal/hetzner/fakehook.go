package hetzner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// FakeSSHAddr returns an SSHAddr for the fake Hetzner API at endpoint
// (internal/hcloudfake): each simulated machine has its own loopback SSH
// port, published at GET {endpoint}/_hcloudfake/servers/{id}. Real servers
// listen on port 22 and need no hook.
func FakeSSHAddr(endpoint string, hc *http.Client) func(context.Context, *hcloud.Server) (string, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(ctx context.Context, s *hcloud.Server) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/_hcloudfake/servers/%d", endpoint, s.ID), nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("ask the fake for server %d's ssh port: %w", s.ID, err)
		}
		defer resp.Body.Close()
		var body struct{ SSH string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("ask the fake for server %d's ssh port: status %d", s.ID, resp.StatusCode)
		}
		return body.SSH, nil
	}
}

// FakeAPIAddr returns an APIAddr for the fake Hetzner API at endpoint: the
// loopback address that stands for public port 6443 of the machine, where
// its simulated k3s listens ("" while it does not).
func FakeAPIAddr(endpoint string, hc *http.Client) func(context.Context, *hcloud.Server) (string, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(ctx context.Context, s *hcloud.Server) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/_hcloudfake/servers/%d", endpoint, s.ID), nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("ask the fake for server %d's api port: %w", s.ID, err)
		}
		defer resp.Body.Close()
		var body struct {
			Ports map[string]string `json:"ports"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("ask the fake for server %d's api port: status %d", s.ID, resp.StatusCode)
		}
		return body.Ports["6443"], nil
	}
}
