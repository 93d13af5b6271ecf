package egress

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSelectorConfigGolden pins the configuration kube-apiserver reads;
// run with -update after a deliberate change.
func TestSelectorConfigGolden(t *testing.T) {
	got := SelectorConfig("/var/lib/smek/clusters/c-1f3a/egress.sock")
	path := filepath.Join("testdata", "egress-selector.yaml.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("SelectorConfig differs from %s; got:\n%s", path, got)
	}
}

// selectorConfig is the part of apiserver.k8s.io/v1beta1
// EgressSelectorConfiguration that SelectorConfig writes.
type selectorConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Selections []struct {
		Name       string `json:"name"`
		Connection struct {
			ProxyProtocol string `json:"proxyProtocol"`
			Transport     *struct {
				UDS struct {
					UDSName string `json:"udsName"`
				} `json:"uds"`
			} `json:"transport,omitempty"`
		} `json:"connection"`
	} `json:"egressSelections"`
}

func TestSelectorConfigQuotesPath(t *testing.T) {
	for _, path := range []string{
		"/data/c1/egress.sock",
		`/data/odd: "name" #1/it's\here/egress.sock`,
		"/data/new\nline/egress.sock",
	} {
		var cfg selectorConfig
		if err := yaml.UnmarshalStrict(SelectorConfig(path), &cfg); err != nil {
			t.Fatalf("SelectorConfig(%q): %v", path, err)
		}
		if cfg.APIVersion != "apiserver.k8s.io/v1beta1" || cfg.Kind != "EgressSelectorConfiguration" || len(cfg.Selections) != 3 {
			t.Fatalf("SelectorConfig(%q) = %+v", path, cfg)
		}
		for _, s := range cfg.Selections {
			switch s.Name {
			case "cluster", "controlplane":
				if s.Connection.ProxyProtocol != "HTTPConnect" || s.Connection.Transport == nil || s.Connection.Transport.UDS.UDSName != path {
					t.Errorf("selection %s = %+v, want HTTPConnect over %q", s.Name, s.Connection, path)
				}
			case "etcd":
				if s.Connection.ProxyProtocol != "Direct" || s.Connection.Transport != nil {
					t.Errorf("selection etcd = %+v, want Direct", s.Connection)
				}
			default:
				t.Errorf("unexpected selection %q", s.Name)
			}
		}
	}
}
