package local

import (
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
