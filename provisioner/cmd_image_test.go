package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// imageFake serves the fake API with simulated machines (the image build
// never starts k3s, so no Kubernetes binaries are needed) and writes the
// token and SSH key files the command reads.
func imageFake(t *testing.T) (fake *hcloudfake.Server, tokenFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	fake = hcloudfake.New(hcloudfake.Config{
		Token: "secret-token", DefaultDuration: 5 * time.Millisecond, DataDir: dir,
		Machines: k3snode.Factory(k3snode.Config{Dir: dir}),
	}).Start()
	t.Cleanup(fake.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "id_ed25519")
	tokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fake, tokenFile, keyFile
}

// TestImageBuild runs `provisioner image build` against the fake: one
// labelled snapshot, no server left, the policy bundle on the image.
func TestImageBuild(t *testing.T) {
	fake, tokenFile, keyFile := imageFake(t)
	var stdout, stderr bytes.Buffer
	args := []string{"build", "--k3s-version", "v1.36.3+k3s1", "--hcloud-endpoint", fake.URL, "--hcloud-token-file", tokenFile,
		"--ssh-key-file", keyFile, "--hcloud-fake-ssh", "--hcloud-action-wait", "5ms", "--installation", "ci"}
	if err := cmdImage(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("image build: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "k3s v1.36.3+k3s1 (Kubernetes 1.36.3)") {
		t.Errorf("output: %q", stdout.String())
	}
	if strings.Contains(stderr.String(), "secret-token") {
		t.Errorf("the token was logged")
	}
	client := hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("secret-token"))
	ctx := context.Background()
	imgs, err := client.Image.AllWithOpts(ctx, hcloud.ImageListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "smek.io/role=golden,smek.io/install=ci"}})
	if err != nil || len(imgs) != 1 || imgs[0].Labels["smek.io/k8s-version"] != "1.36.3" {
		t.Fatalf("golden snapshots: %v, %v", imgs, err)
	}
	if servers, _ := client.Server.All(ctx); len(servers) != 0 {
		t.Errorf("servers left: %d", len(servers))
	}
	if n := fake.Counts()["DELETE /servers/{id}"]; n != 1 {
		t.Errorf("builder deletes: %d", n)
	}
}

// TestImageBuildFlags: bad input is a usage error naming the flag, before
// any request.
func TestImageBuildFlags(t *testing.T) {
	fake, tokenFile, keyFile := imageFake(t)
	base := []string{"--hcloud-endpoint", fake.URL, "--hcloud-token-file", tokenFile, "--ssh-key-file", keyFile}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no subcommand":      {nil, "build"},
		"no version":         {append([]string{"build"}, base...), "--k3s-version"},
		"bad version":        {append([]string{"build", "--k3s-version", "1.36"}, base...), "--k3s-version"},
		"no token":           {[]string{"build", "--k3s-version", "v1.36.3+k3s1", "--ssh-key-file", keyFile}, "SMEK_HCLOUD_TOKEN"},
		"no key":             {[]string{"build", "--k3s-version", "v1.36.3+k3s1", "--hcloud-token-file", tokenFile}, "--ssh-key-file"},
		"key not a key":      {append([]string{"build", "--k3s-version", "v1.36.3+k3s1", "--ssh-key-file", tokenFile}, base[:4]...), "--ssh-key-file"},
		"negative wait":      {append([]string{"build", "--k3s-version", "v1.36.3+k3s1", "--hcloud-action-wait", "-1s"}, base...), "--hcloud-action-wait"},
		"missing token file": {[]string{"build", "--k3s-version", "v1.36.3+k3s1", "--hcloud-token-file", "/nonexistent", "--ssh-key-file", keyFile}, "--hcloud-token-file"},
	}
	for name, c := range cases {
		var stdout, stderr bytes.Buffer
		err := cmdImage(context.Background(), c.args, func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a usage error naming %s", name, err, c.want)
		}
	}
	if n := fake.TotalRequests(); n != 0 {
		t.Errorf("requests made by invalid invocations: %d", n)
	}
}
