package k3snode

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/fake/hcloudfake"
)

// unstartedNode is a powered-on node with k3s installed, not started.
func unstartedNode(t *testing.T) *Node {
	t.Helper()
	n, err := NewNode(Config{Dir: t.TempDir(), KubeBin: t.TempDir()}, hcloudfake.MachineSpec{ServerID: 7, Name: "node-7"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	var out, errs bytes.Buffer
	if code := n.run("curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_VERSION=v1.36.3+k3s1 sh -", nil, &out, &errs); code != 0 {
		t.Fatalf("install k3s: exit %d: %s", code, errs.String())
	}
	return n
}

// k3s turns registries.yaml into containerd's hosts.toml per registry:
// the registry as server, its mirrors in order, normalized as k3s does.
func TestRegistriesYAMLBecomesHostsTOML(t *testing.T) {
	n := unstartedNode(t)
	doc := `mirrors:
  docker.io:
    endpoint: ["https://a.example", "http://b.example:5000/v2/hub", "https://a.example/v2", "not a url\x7f"]
  ghcr.io:
    endpoint: ["localhost:5000"]
  "*":
    endpoint: ["https://w.example/"]
  quay.io:
    endpoint: []
unknown: ignored, as k3s's yaml.v2 does
Mirrors:
  ghcr.io:
    endpoint: ["https://ignored.example"]
`
	if err := n.writeFile(K3sRegistries, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// A folder k3s wrote before goes; one the operator made stays.
	for dir, first := range map[string]string{"old.example": hostsTOMLHeader, "mine.example": "# mine\n"} {
		if err := n.writeFile(ContainerdCertsDir+"/"+dir+"/hosts.toml", []byte(first+"server = \"https://x\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeContainerdHosts(n); err != nil {
		t.Fatal(err)
	}
	for reg, want := range map[string]string{
		"docker.io": hostsTOMLHeader + `server = "https://registry-1.docker.io/v2"
capabilities = ["pull", "resolve", "push"]

[host."https://a.example/v2"]
  capabilities = ["pull", "resolve"]

[host."http://b.example:5000/v2/hub"]
  capabilities = ["pull", "resolve"]
  override_path = true
`,
		"ghcr.io": hostsTOMLHeader + `server = "https://ghcr.io/v2"
capabilities = ["pull", "resolve", "push"]

[host."http://localhost:5000/v2"]
  capabilities = ["pull", "resolve"]
`,
		"*": hostsTOMLHeader + `
[host."https://w.example/v2"]
  capabilities = ["pull", "resolve"]
`,
	} {
		got, err := n.ContainerdHosts(reg)
		if err != nil || string(got) != want {
			t.Errorf("hosts.toml of %s: got %q, %v\nwant %q", reg, got, err, want)
		}
	}
	ents, err := os.ReadDir(filepath.Join(n.Disk(), ContainerdCertsDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "_default docker.io ghcr.io mine.example"; got != want {
		t.Errorf("registry folders: got %s, want %s (quay.io has no endpoint, old.example was k3s's)", got, want)
	}

	// Without the file the folders k3s wrote go at the next start.
	if err := os.Remove(filepath.Join(n.Disk(), K3sRegistries)); err != nil {
		t.Fatal(err)
	}
	if err := writeContainerdHosts(n); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ContainerdHosts("docker.io"); !os.IsNotExist(err) {
		t.Errorf("docker.io's hosts.toml without registries.yaml: got %v, want it gone", err)
	}
}

// A registries.yaml k3s cannot read stops k3s: systemctl start fails and
// says why.
func TestBadRegistriesYAMLStopsK3s(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"mirrors: [", "parse " + K3sRegistries},
		{"mirrors:\n  docker.io:\n    endpoint: https://a.example\n", "parse " + K3sRegistries},
		{"mirrors:\n  docker.io:\n    endpoint: [https://a.example]\n    rewrite: {\"^a\": b}\n", "not simulated"},
		{"configs:\n  docker.io:\n    auth: {username: u, password: p}\n", "not simulated"},
	} {
		n := unstartedNode(t)
		var out, errs bytes.Buffer
		if code := n.run("install -D -m 0600 /dev/stdin "+K3sRegistries, strings.NewReader(tt.doc), &out, &errs); code != 0 {
			t.Fatal(errs.String())
		}
		code := n.run("systemctl start k3s", nil, &out, &errs)
		if code == 0 || !strings.Contains(errs.String(), tt.want) {
			t.Errorf("start with %q: exit %d, %q; want a failure naming %q", tt.doc, code, errs.String(), tt.want)
		}
		if n.K3sRunning() {
			t.Errorf("start with %q: k3s runs", tt.doc)
		}
	}
}
