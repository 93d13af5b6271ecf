package local

import (
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/registrymirror"
)

// A node's containerd tries SMEK's mirror, then the operator's mirrors of
// the registry in order, then the registry; registries SMEK does not
// mirror get a folder of their own, the wildcard _default.
func TestContainerdHostsAddsOperatorMirrors(t *testing.T) {
	for _, tt := range []struct {
		reg          string
		own, mirrors []string
		want         string
	}{
		{"docker.io", []string{"http://10.1.0.1:5000"}, []string{"https://a.example", "http://b.example:5000/v2/hub"}, `server = "https://registry-1.docker.io"

[host."http://10.1.0.1:5000"]
  capabilities = ["pull", "resolve"]

[host."https://a.example/v2"]
  capabilities = ["pull", "resolve"]

[host."http://b.example:5000/v2/hub"]
  capabilities = ["pull", "resolve"]
  override_path = true
`},
		{"registry.k8s.io", []string{"http://10.1.0.1:5000"}, nil, `server = "https://registry.k8s.io"

[host."http://10.1.0.1:5000"]
  capabilities = ["pull", "resolve"]
`},
		{"ghcr.io", nil, []string{"https://g.example/"}, `server = "https://ghcr.io"

[host."https://g.example/v2"]
  capabilities = ["pull", "resolve"]
`},
		{registrymirror.Wildcard, nil, []string{"https://w.example"}, `
[host."https://w.example/v2"]
  capabilities = ["pull", "resolve"]
`},
	} {
		if got := containerdHosts(tt.reg, tt.own, tt.mirrors); got != tt.want {
			t.Errorf("hosts.toml of %s:\ngot\n%s\nwant\n%s", tt.reg, got, tt.want)
		}
	}
}

// Every node gets SMEK's registries, the operator's, and _default for the
// wildcard, whose mirrors also serve SMEK's registries without their own.
func TestNodeRegistryDirs(t *testing.T) {
	node := &Node{net: nodeNet{Index: 3}, cfg: NodeConfig{RegistryMirrors: []registrymirror.Mirror{
		{Registry: "docker.io", URL: "https://hub.example"},
		{Registry: "ghcr.io", URL: "https://g.example"},
		{Registry: "*", URL: "https://w.example"},
	}}}
	dirs := node.registryDirs()
	for dir, want := range map[string][]string{
		"docker.io":       {"http://10.213.3.1:5000", "https://hub.example/v2"},
		"registry.k8s.io": {"http://10.213.3.1:5000", "https://w.example/v2"},
		"ghcr.io":         {"https://g.example/v2"},
		"_default":        {"https://w.example/v2"},
	} {
		doc, ok := dirs[dir]
		if !ok {
			t.Errorf("no hosts.toml for %s", dir)
			continue
		}
		var got []string
		for _, line := range strings.Split(doc, "\n") {
			if h, ok := strings.CutPrefix(line, "[host."); ok {
				got = append(got, strings.Trim(h, `"]`))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("hosts of %s: got %v, want %v", dir, got, want)
		}
	}
	if len(dirs) != 4 {
		t.Errorf("got folders %v, want 4", len(dirs))
	}
}
