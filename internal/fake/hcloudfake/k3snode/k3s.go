package k3snode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/logkey"
)

// Paths k3s uses on a server node.
const (
	K3sConfig     = "/etc/rancher/k3s/config.yaml"
	K3sKubeconfig = "/etc/rancher/k3s/k3s.yaml"
	ManifestsDir  = "/var/lib/rancher/k3s/server/manifests"
	k3sToken      = "/var/lib/rancher/k3s/server/token"
	simDir        = "/var/lib/rancher/k3s/server/sim"

	k3sAPIPort = 6443
)

// k3sConfig is the part of /etc/rancher/k3s/config.yaml the simulation
// understands.
type k3sConfig struct {
	TLSSAN           []string `json:"tls-san"`
	NodeName         string   `json:"node-name"`
	NodeLabel        []string `json:"node-label"`
	KubeAPIServerArg []string `json:"kube-apiserver-arg"`
	Disable          []string `json:"disable"`
}

// k3s is a running simulated k3s server.
type k3s struct {
	cp      *local.ControlPlane
	kubelet *kubelet
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// deployDelay is how long after `systemctl start k3s` returns the deploy
// controller starts applying the manifests folder. On k3s the unit is
// active once the API serves; the node registers and the deploy
// controller applies the packaged components and the auto-deploy
// manifests seconds later, so nothing may assume they are there when the
// start returns.
const deployDelay = time.Second

// startK3s does what `systemctl start k3s` does on a real node, with a
// local control plane standing in for k3s's embedded one: it returns once
// the API serves and k3s.yaml is written; the agent (node registration,
// the stand-in kubelet), the deploy controller and ServiceLB go on in the
// background. n.mu is held.
func startK3s(ctx context.Context, n *Node) (*k3s, error) {
	var cfg k3sConfig
	if b, err := n.readFile(K3sConfig); err == nil {
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", K3sConfig, err)
		}
	}
	privileged := true // k3s runs kube-apiserver with --allow-privileged=true
	var admission []byte
	for _, arg := range cfg.KubeAPIServerArg {
		k, v, _ := strings.Cut(arg, "=")
		switch k {
		case "allow-privileged":
			privileged = v == "true"
		case "admission-control-config-file":
			b, err := n.readFile(v)
			if err != nil {
				return nil, fmt.Errorf("read admission config: %w", err)
			}
			admission = b
		}
	}
	if err := writeContainerdHosts(n); err != nil {
		return nil, err
	}
	if !contains(cfg.Disable, "local-storage") {
		// The simulation's stand-in for the image k3s would pull.
		if _, err := os.Stat(filepath.Join(n.cfg.KubeBin, "local-path-provisioner")); err != nil {
			return nil, fmt.Errorf("simulated k3s: local-path-provisioner is missing in %s (make kube-bin builds it)", n.cfg.KubeBin)
		}
	}
	if err := writePackaged(n, cfg); err != nil {
		return nil, err
	}
	dir, _ := n.path(simDir)
	cp, err := local.StartControlPlane(ctx, local.ControlPlaneConfig{
		Dir: dir, BinDir: n.cfg.KubeBin, Privileged: privileged, AdmissionConfig: admission, Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	k := &k3s{cp: cp}
	if err := k.publish(n); err != nil {
		_ = n.unlisten(k3sAPIPort)
		_ = cp.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	admin := cp.AdminConfig()
	name := nodeName(n, cfg)
	k.kubelet = newKubelet(n, k, admin, name)
	loop, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	disabled := func(c string) bool { return contains(cfg.Disable, c) }
	k.wg.Add(2)
	go func() {
		defer k.wg.Done()
		k.kubelet.run(loop, cfg.NodeLabel)
	}()
	go func() {
		defer k.wg.Done()
		k.deploy(loop, n, admin, !disabled("coredns"))
	}()
	if !disabled("servicelb") {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			runServiceLB(loop, admin, n.log)
		}()
	}
	return k, nil
}

func nodeName(n *Node, cfg k3sConfig) string {
	if cfg.NodeName != "" {
		return cfg.NodeName
	}
	b, _ := n.readFile("/etc/hostname")
	return strings.TrimSpace(string(b))
}

func (k *k3s) stop(ctx context.Context) error {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
	k.kubelet.stopAll()
	return k.cp.Stop(ctx)
}

// publish writes the token and the admin kubeconfig and opens the API's
// public port, as k3s has done when its unit becomes active.
func (k *k3s) publish(n *Node) error {
	admin := k.cp.AdminConfig()
	token := []byte("K10" + rand.Text() + "::server:" + rand.Text() + "\n")
	if err := n.writeFile(k3sToken, token, 0o600); err != nil {
		return err
	}
	// k3s listens on 6443 of every address; its kubeconfig names
	// 127.0.0.1. Here the public port relays to the control plane.
	u, err := url.Parse(admin.Host)
	if err != nil {
		return err
	}
	if err := n.forward(k3sAPIPort, u.Host); err != nil {
		return err
	}
	public := *admin
	public.Host = "https://" + n.ports[k3sAPIPort].Addr().String()
	kc, err := adminKubeconfig(&public)
	if err != nil {
		return err
	}
	return n.writeFile(K3sKubeconfig, kc, 0o600)
}

// deploy plays k3s's deploy controller: a moment after the start it
// deploys CoreDNS and applies the manifests folder (the packaged
// local-storage component and the auto-deploy manifests), retrying until
// everything is applied or k3s stops.
func (k *k3s) deploy(ctx context.Context, n *Node, admin *rest.Config, dns bool) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(deployDelay):
	}
	for {
		err := func() error {
			if dns {
				cs, err := kubernetes.NewForConfig(admin)
				if err != nil {
					return err
				}
				if err := coreDNS(ctx, cs); err != nil {
					return err
				}
			}
			return applyManifests(ctx, admin, n)
		}()
		if err == nil || ctx.Err() != nil {
			return
		}
		n.log.Warn("deploy manifests", logkey.Err, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// adminKubeconfig writes the kubeconfig k3s writes to k3s.yaml: cluster,
// user and context all called "default", credentials inline.
func adminKubeconfig(cfg *rest.Config) ([]byte, error) {
	c := clientcmdapi.NewConfig()
	c.Clusters["default"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.TLSClientConfig.CAData}
	c.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.TLSClientConfig.CertData, ClientKeyData: cfg.TLSClientConfig.KeyData}
	c.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	c.CurrentContext = "default"
	return clientcmd.Write(*c)
}

// tokenKubeconfig is a kubeconfig with a bearer token, what a pod's
// in-cluster configuration amounts to.
func tokenKubeconfig(cfg *rest.Config) ([]byte, error) {
	c := clientcmdapi.NewConfig()
	c.Clusters["default"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.TLSClientConfig.CAData}
	c.AuthInfos["default"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	c.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	c.CurrentContext = "default"
	return clientcmd.Write(*c)
}

func coreDNS(ctx context.Context, cs kubernetes.Interface) error {
	one := int32(1)
	labels := map[string]string{"k8s-app": "kube-dns"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "coredns", Image: "rancher/mirrored-coredns-coredns:1.12.3", Args: []string{"-conf", "/etc/coredns/Corefile"},
				}}},
			},
		},
	}
	_, err := cs.AppsV1().Deployments("kube-system").Create(ctx, d, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create coredns: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	}
	_, err = cs.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create kube-dns service: %w", err)
	}
	return nil
}

// applyManifests applies every *.yaml in the manifests folder (without a
// .skip file) in name order, like k3s's deploy controller, with
// server-side apply, and tracks each file in an Addon object of
// kube-system (addons.go): created when the file is taken up, its
// checksum set once every object of the file is applied. Kinds defined by
// an earlier document (CRDs) are retried until known.
func applyManifests(ctx context.Context, cfg *rest.Config, n *Node) error {
	dir, _ := n.path(ManifestsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureAddonCRD(ctx, dyn); err != nil {
		return err
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name+".skip")); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		addon, err := startAddon(ctx, dyn, name)
		if err != nil {
			return err
		}
		if err := applyFile(ctx, mapper, dyn, name, b); err != nil {
			return err
		}
		if err := finishAddon(ctx, dyn, addon, b); err != nil {
			return err
		}
	}
	return nil
}

// applyFile applies the documents of one manifest file.
func applyFile(ctx context.Context, mapper *restmapper.DeferredDiscoveryRESTMapper, dyn dynamic.Interface, name string, b []byte) error {
	var docs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("manifest %s: %w", name, err)
		}
		if len(u.Object) > 0 {
			docs = append(docs, u)
		}
	}
	force := true
	var lastErr error
	for attempt := 0; attempt < 40 && len(docs) > 0; attempt++ {
		var retry []*unstructured.Unstructured
		for _, u := range docs {
			gvk := u.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				retry, lastErr = append(retry, u), err
				continue
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == "namespace" {
				ns := u.GetNamespace()
				if ns == "" {
					ns = "default"
				}
				ri = dyn.Resource(m.Resource).Namespace(ns)
			}
			data, _ := json.Marshal(u.Object)
			if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "k3s-deploy", Force: &force}); err != nil {
				retry, lastErr = append(retry, u), fmt.Errorf("apply %s %s: %w", gvk.Kind, u.GetName(), err)
			}
		}
		docs = retry
		if len(docs) > 0 {
			mapper.Reset()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	if len(docs) > 0 {
		return fmt.Errorf("apply manifest %s: %w", name, lastErr)
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
