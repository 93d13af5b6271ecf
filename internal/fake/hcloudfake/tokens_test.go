package hcloudfake

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// TestReadOnlyToken: a read-only token reads like the project's token and
// every write is refused with token_readonly (403) without taking effect;
// an unknown token is still unauthorized.
func TestReadOnlyToken(t *testing.T) {
	f := New(Config{Token: "rw"})
	ts := httptest.NewServer(ReadOnlyToken(f.Handler(), "ro", "rw"))
	defer ts.Close()
	client := func(token string) *hcloud.Client {
		return hcloud.NewClient(hcloud.WithEndpoint(ts.URL), hcloud.WithToken(token), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	}
	ctx := context.Background()
	ro, rw := client("ro"), client("rw")

	locs, err := ro.Location.All(ctx)
	if err != nil || len(locs) == 0 {
		t.Fatalf("read with the read-only token: got %d locations, %v", len(locs), err)
	}
	_, resp, err := ro.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSk9RaOcNIcE2pOoy0Q5grqBzgTmpxBFLvLkZbtGeNK"})
	if !hcloud.IsError(err, hcloud.ErrorCodeTokenReadonly) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("write with the read-only token: got %v (response %v), want token_readonly, 403", err, resp)
	}
	_, _, err = ro.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s", ServerType: &hcloud.ServerType{Name: "cx22"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if !hcloud.IsError(err, hcloud.ErrorCodeTokenReadonly) {
		t.Fatalf("create server with the read-only token: got %v, want token_readonly", err)
	}
	if keys, err := rw.SSHKey.All(ctx); err != nil || len(keys) != 0 {
		t.Errorf("ssh keys after the refused write: %v, %v; want none", keys, err)
	}
	if servers := f.Servers(); len(servers) != 0 {
		t.Errorf("servers after the refused create: %v", servers)
	}
	if _, _, err := rw.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSk9RaOcNIcE2pOoy0Q5grqBzgTmpxBFLvLkZbtGeNK"}); err != nil {
		t.Errorf("write with the full token: %v", err)
	}
	_, err = client("other").Location.All(ctx)
	var he hcloud.Error
	if !errors.As(err, &he) || he.Code != hcloud.ErrorCodeUnauthorized {
		t.Errorf("unknown token: got %v, want unauthorized", err)
	}
}
