package hetzner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/registrymirror"
)

var testMirrors = []registrymirror.Mirror{
	{Registry: "docker.io", URL: "https://mirror.example"},
	{Registry: "ghcr.io", URL: "http://10.0.0.2:5000/v2/ghcr"},
	{Registry: "docker.io", URL: "https://second.example"},
}

// registries.yaml is k3s's documented format, the mirrors of a registry
// in the order given (testdata/registries.yaml).
func TestRegistriesYAML(t *testing.T) {
	got, err := registriesYAML(testMirrors)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "registries.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("registries.yaml:\ngot\n%s\nwant\n%s", got, want)
	}
	if none, err := registriesYAML(nil); none != nil || err != nil {
		t.Errorf("no mirrors: got %q, %v; want no file", none, err)
	}
}

// Every bootstrap, of a fresh server and of a rebuilt one, writes
// registries.yaml before k3s starts, so k3s's containerd tries the
// mirrors; with no mirrors there is no file, and no hosts.toml.
func TestBootstrapWritesRegistryMirrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
	if _, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1"}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	e.backend.cfg.RegistryMirrors = testMirrors
	m := cluster.Member{ID: "m-1", Backend: "hetzner", Flavor: flavor, State: cluster.MemberCreating}
	raw, err := e.backend.Provision(ctx, m)
	m.Data = raw
	t.Cleanup(func() { _ = e.backend.Destroy(context.Background(), m) })
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	node := e.fake.MachineOf(mustData(t, raw).ServerID).(*k3snode.Node)
	check := func(when string) {
		t.Helper()
		info, err := os.Stat(filepath.Join(node.Disk(), registriesPath))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %s: got %v, %v; want mode 0600", when, registriesPath, info, err)
		}
		hosts, err := node.ContainerdHosts("docker.io")
		if err != nil {
			t.Fatalf("%s: docker.io's hosts.toml: %v", when, err)
		}
		a, b := strings.Index(string(hosts), `[host."https://mirror.example/v2"]`), strings.Index(string(hosts), `[host."https://second.example/v2"]`)
		if a < 0 || b < a || !strings.Contains(string(hosts), `server = "https://registry-1.docker.io/v2"`) {
			t.Errorf("%s: docker.io's hosts.toml does not try both mirrors in order, then Docker Hub:\n%s", when, hosts)
		}
		if hosts, err := node.ContainerdHosts("ghcr.io"); err != nil || !strings.Contains(string(hosts), "override_path = true") {
			t.Errorf("%s: ghcr.io's hosts.toml: got %s, %v; want the mirror with its path", when, hosts, err)
		}
	}
	check("after the first bootstrap")

	// A rebuilt member is bootstrapped again from the snapshot.
	if _, raw, err = e.backend.Release(ctx, m); err != nil {
		t.Fatalf("release: %v", err)
	}
	m.Data = raw
	check("after the rebuild")

	// Without mirrors the next bootstrap leaves no file, and k3s removes
	// the hosts.toml it wrote.
	e.backend.cfg.RegistryMirrors = nil
	if _, raw, err = e.backend.Release(ctx, m); err != nil {
		t.Fatalf("release: %v", err)
	}
	m.Data = raw
	node = e.fake.MachineOf(mustData(t, raw).ServerID).(*k3snode.Node)
	if _, err := os.Stat(filepath.Join(node.Disk(), registriesPath)); !os.IsNotExist(err) {
		t.Errorf("without mirrors: %s: got %v, want no file", registriesPath, err)
	}
	if _, err := node.ContainerdHosts("docker.io"); !os.IsNotExist(err) {
		t.Errorf("without mirrors: docker.io's hosts.toml: got %v, want none", err)
	}
}
