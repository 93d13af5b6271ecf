package hetzner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// TestReadinessWaitsForTheDeployController: k3s applies its auto-deploy
// manifests after `systemctl start k3s` returns. Right after the start a
// manifest's object is not there yet; readiness does not pass while the
// deploy controller cannot apply a manifest (its namespace is missing),
// and once it can, readiness passes with the object in place and the
// storage probe cleaned up.
func TestReadinessWaitsForTheDeployController(t *testing.T) {
	ctx := context.Background()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	n, err := k3snode.NewNode(k3snode.Config{Dir: t.TempDir(), KubeBin: kubeBin(t)}, hcloudfake.MachineSpec{
		ServerID: 3, Name: "node-3", AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(signer.PublicKey()))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	conn, err := ssh.Dial("tcp", n.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	late := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: late\ndata:\n  a: b\n"
	for _, step := range []struct{ cmd, stdin string }{
		{"curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_VERSION=v1.36.3+k3s1 sh -", ""},
		{"install -D -m 0600 /dev/stdin " + k3sConfigPath, "node-name: node-3\n"},
		{"install -D -m 0600 /dev/stdin /var/lib/rancher/k3s/server/manifests/smek-late.yaml", late},
		{"systemctl start k3s", ""},
	} {
		var stdin []byte
		if step.stdin != "" {
			stdin = []byte(step.stdin)
		}
		if err := runSSH(ctx, conn, step.cmd, stdin, nil); err != nil {
			t.Fatalf("%s: %v", step.cmd, err)
		}
	}
	var kc bytes.Buffer
	if err := runSSH(ctx, conn, "cat "+kubeconfigK3s, nil, &kc); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	if err := cs.CoreV1().Namespaces().Delete(ctx, "late", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace late right after start: got %v, want not found", err)
	}
	if _, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("k3s's local-path StorageClass right after start: got %v, want not applied yet", err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitReady(short, cfg); err == nil || !strings.Contains(err.Error(), "deploy controller") {
		t.Fatalf("readiness while a manifest cannot be applied: got %v, want it waiting for the deploy controller", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	long, cancel2 := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel2()
	if err := waitReady(long, cfg); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("late").Get(ctx, "late", metav1.GetOptions{}); err != nil {
		t.Errorf("the manifest's ConfigMap after readiness: %v", err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(storageProbeNS).Get(ctx, storageProbe, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the storage probe's claim after readiness: got %v, want it deleted", err)
	}
	pvs, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil || len(pvs.Items) != 0 {
		t.Errorf("volumes after readiness: got %d, %v; want none", len(pvs.Items), err)
	}
}
