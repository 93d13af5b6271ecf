package hetzner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// tamperedNode is a simulated machine whose tenant, root on it (the
// privileged flavor), has enabled k3s and replaces k3s.yaml each time k3s
// has written it at boot (a unit of its own ordered after k3s would do):
// the admin user then runs an exec plugin, which client-go would start on
// the provisioner, with the provisioner's environment (the Hetzner token).
type tamperedNode struct {
	*k3snode.Node
	mu    sync.Mutex
	exec  *clientcmdapi.ExecConfig // nil: the tenant has done nothing yet
	errs  []error
	plant int
}

func (n *tamperedNode) tamper(exec *clientcmdapi.ExecConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.exec = exec
}

func (n *tamperedNode) PowerOn() error {
	n.mu.Lock()
	exec := n.exec
	n.mu.Unlock()
	if exec == nil {
		return n.Node.PowerOn()
	}
	if err := n.write(filepath.Join("/etc/systemd/system/multi-user.target.wants", "k3s.service"), []byte("/etc/systemd/system/k3s.service\n")); err != nil {
		return err
	}
	if err := n.Node.PowerOn(); err != nil {
		return err
	}
	<-n.Booted()
	err := n.replaceKubeconfig(exec)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.errs = append(n.errs, err)
	} else {
		n.plant++
	}
	return nil
}

func (n *tamperedNode) replaceKubeconfig(exec *clientcmdapi.ExecConfig) error {
	raw, err := os.ReadFile(filepath.Join(n.Disk(), k3snode.K3sKubeconfig))
	if err != nil {
		return fmt.Errorf("k3s wrote no kubeconfig at boot: %w", err)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return err
	}
	for _, u := range kc.AuthInfos {
		u.ClientCertificateData, u.ClientKeyData, u.Exec = nil, nil, exec
	}
	out, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	return n.write(k3snode.K3sKubeconfig, out)
}

func (n *tamperedNode) write(p string, b []byte) error {
	full := filepath.Join(n.Disk(), p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, 0o600)
}

func (n *tamperedNode) planted() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.plant, errors.Join(n.errs...)
}

// TestNodeKubeconfigIsNeverTrusted: a tenant who is root on its node
// plants a k3s.yaml whose user is an exec plugin that writes a marker
// file (and hands back the real admin certificate, so that nothing else
// fails). Neither a start after a stop nor the resume of a claimed member
// whose server is off runs it: SMEK uses the admin credential it sealed
// at bootstrap and the CA it pinned then.
func TestNodeKubeconfigIsNeverTrusted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	nodes := map[int64]*tamperedNode{}
	factory := k3snode.Factory(k3snode.Config{Dir: dir, KubeBin: kubeBin(t)})
	e := newEnv(t, false, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond, DataDir: dir,
		Machines: func(spec hcloudfake.MachineSpec) (hcloudfake.Machine, error) {
			m, err := factory(spec)
			if err != nil {
				return nil, err
			}
			n := &tamperedNode{Node: m.(*k3snode.Node)}
			mu.Lock()
			nodes[spec.ServerID] = n
			mu.Unlock()
			return n, nil
		}})
	if _, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1"}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	m := cluster.Member{ID: "s-1", Backend: "hetzner", Flavor: cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}, State: cluster.MemberCreating}
	data, err := e.backend.Provision(ctx, m)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	m.Data, m.State = data, cluster.MemberReady
	c := cluster.Cluster{ID: "c-tamper", Account: "acme", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := e.backend.Claim(ctx, m, c); err != nil {
		t.Fatalf("claim: %v", err)
	}
	m.State, m.ClusterID = cluster.MemberClaimed, c.ID
	mu.Lock()
	node := nodes[mustData(t, m.Data).ServerID]
	mu.Unlock()

	// The plugin hands back the admin certificate k3s wrote, so that a
	// provisioner that runs it goes on as if nothing happened.
	raw, err := os.ReadFile(filepath.Join(node.Disk(), k3snode.K3sKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
		"status": map[string]string{"clientCertificateData": string(kc.AuthInfos["default"].ClientCertificateData), "clientKeyData": string(kc.AuthInfos["default"].ClientKeyData)},
	})
	credFile := filepath.Join(t.TempDir(), "cred.json")
	if err := os.WriteFile(credFile, cred, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HCLOUD_TOKEN", "the-provisioners-secret")

	var marker string
	ranExec := func(path string) {
		t.Helper()
		if n, err := node.planted(); err != nil || n == 0 {
			t.Fatalf("the tenant's kubeconfig was not in place (planted %d times): %v", n, err)
		}
		if b, err := os.ReadFile(marker); err == nil {
			t.Errorf("%s ran the node's exec plugin on the provisioner (it saw HCLOUD_TOKEN=%q)", path, string(b))
			os.Remove(marker)
		}
	}
	for _, path := range []string{"start", "resume"} {
		// A plugin of its own per path: client-go caches what a plugin
		// returned, per plugin, for the life of the process.
		marker = filepath.Join(t.TempDir(), "exec-ran-on-"+path)
		node.tamper(&clientcmdapi.ExecConfig{
			APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh",
			Args:            []string{"-c", fmt.Sprintf("echo \"$HCLOUD_TOKEN\" > %s; cat %s", marker, credFile)},
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		})
		if err := e.backend.Stop(ctx, m); err != nil {
			t.Fatalf("%s: stop: %v", path, err)
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if path == "start" {
			data, err = e.backend.Start(sctx, m)
		} else {
			data, err = e.backend.Resume(sctx, m)
		}
		cancel()
		ranExec(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m.Data = data
		if got, want := mustData(t, data).CA, mustData(t, m.Data).CA; string(got) != string(want) {
			t.Errorf("%s: the pinned CA changed", path)
		}
		kc, err := e.backend.Credential(ctx, m, c)
		if err != nil {
			t.Fatalf("%s: credential: %v", path, err)
		}
		if _, err := tenantClient(t, kc.YAML).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("%s: tenant: %v", path, err)
		}
	}
}
