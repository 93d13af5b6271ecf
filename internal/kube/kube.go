// Package kube is what SMEK does inside a cluster with its admin credential:
// register the node, claim the cluster for a tenant (node label, ownership
// record, TokenRequest) and write the tenant's kubeconfig. The policy bundle
// that confines the tenant lives in kube/policy.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"

	"github.com/smek/action/internal/cluster"
)

// Names SMEK uses inside every cluster.
const (
	// SystemNamespace is SMEK's own namespace, out of the tenant's reach.
	SystemNamespace = "smek-system"
	// TenantServiceAccount is the identity in every kubeconfig SMEK hands
	// out.
	TenantServiceAccount = "tenant"
	// NodeLabel carries the cluster id on every node.
	NodeLabel = "smek-cluster-id"
	// OwnershipConfigMap records, in SystemNamespace, who holds the
	// cluster.
	OwnershipConfigMap = "smek-cluster"
)

// TenantTokenLifetime is how long a tenant token is valid at least. It is
// not tied to the cluster's deadline: an extend moves the deadline, and
// not every holder of a kubeconfig can fetch a new one then (a CI job's
// file, when the GitHub App extends the cluster from a pull request). A
// week outlasts any GitHub Actions job (6 h on GitHub's runners, 5 days on
// self-hosted ones), so a job's kubeconfig works for as long as its cluster
// runs. The cluster's end is what ends the token: a terminated cluster's
// control plane is destroyed (local) or its server rebuilt with a new CA
// and signing key (hetzner), and a stopped one does not answer.
const TenantTokenLifetime = 7 * 24 * time.Hour

// Admin acts on one cluster with SMEK's admin credential.
type Admin struct {
	cs     kubernetes.Interface
	server string
	ca     []byte
}

// NewAdmin returns an Admin for the cluster that cfg reaches. cfg must carry
// the CA (TLSClientConfig.CAData).
func NewAdmin(cfg *rest.Config) (*Admin, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Admin{cs: cs, server: cfg.Host, ca: cfg.TLSClientConfig.CAData}, nil
}

// Clientset returns the admin clientset.
func (a *Admin) Clientset() kubernetes.Interface { return a.cs }

// RegisterNode creates (or updates) a Ready node called name with the given
// labels. The local backend has no kubelet, so SMEK stands in for it.
func (a *Admin) RegisterNode(ctx context.Context, name string, labels map[string]string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := a.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	// Controllers annotate a new node at once (the TTL controller, say):
	// the status update retries on a conflict with a fresh copy.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := a.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status = corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "SMEKLocalNode",
				Message: "control plane only: SMEK's local backend runs no kubelet", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:  corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "none"},
		}
		_, err = a.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("set status of node %s: %w", name, err)
	}
	return nil
}

// WaitServiceAccount waits until the default ServiceAccount of the default
// namespace exists: the sign that kube-controller-manager is at work.
func (a *Admin) WaitServiceAccount(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := a.cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("wait for the default service account: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the default service account: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitNodeReady waits until the node has registered and its Ready
// condition is True, as reported at or after since: a node started again
// still shows the status its kubelet posted before the stop.
func (a *Admin) WaitNodeReady(ctx context.Context, name string, since time.Time) error {
	since = since.Truncate(time.Second) // the API keeps whole seconds
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	state := "not registered"
	for {
		n, err := a.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			state = "not ready"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since) {
						return nil
					}
					state = fmt.Sprintf("not ready: %s: %s", c.Reason, c.Message)
				}
			}
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("wait for node %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node %s (%s): %w", name, state, ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitDeploymentAvailable waits until the deployment has an available
// replica.
func (a *Admin) WaitDeploymentAvailable(ctx context.Context, ns, name string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := a.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.AvailableReplicas > 0 {
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("wait for deployment %s/%s: %w", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for deployment %s/%s to be available: %w", ns, name, ctx.Err())
		case <-tick.C:
		}
	}
}

// LabelNodes gives every node the cluster id label. The pool does it
// while it makes a member ready, with the id the member reserved for the
// cluster that will claim it (cluster.Member.ReservedID), so that a claim
// does not wait for it.
func (a *Admin) LabelNodes(ctx context.Context, id cluster.ID) error {
	nodes, err := a.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{NodeLabel: string(id)}}})
	for _, n := range nodes.Items {
		if _, err := a.cs.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("label node %s: %w", n.Name, err)
		}
	}
	return nil
}

// Claim hands the cluster to a tenant: it records who holds the cluster
// (the ownership ConfigMap) and mints a tenant token (see Credential), and
// returns the tenant's kubeconfig. The two writes are independent, so
// they go out together: on a kept-alive connection a claim costs one
// round trip to the cluster. labelled says the nodes carry c's id already
// (LabelNodes, at ready time); when they do not (a member made ready
// before ids were reserved, or a cluster that brought its own id), the
// labels go out with the other two.
func (a *Admin) Claim(ctx context.Context, c cluster.Cluster, labelled bool) (cluster.Kubeconfig, error) {
	var (
		wg                 sync.WaitGroup
		kc                 cluster.Kubeconfig
		labelErr, ownerErr error
		credErr            error
	)
	if !labelled {
		wg.Go(func() { labelErr = a.LabelNodes(ctx, c.ID) })
	}
	wg.Go(func() { ownerErr = a.recordOwner(ctx, c) })
	wg.Go(func() { kc, credErr = a.Credential(ctx, c) })
	wg.Wait()
	if err := errors.Join(labelErr, ownerErr, credErr); err != nil {
		return cluster.Kubeconfig{}, err
	}
	return kc, nil
}

// recordOwner writes the ownership ConfigMap: the cluster's id, its
// account and when it was created.
func (a *Admin) recordOwner(ctx context.Context, c cluster.Cluster) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: OwnershipConfigMap, Namespace: SystemNamespace},
		Data: map[string]string{
			"cluster-id": string(c.ID),
			"account":    c.Account,
			"created-at": c.CreatedAt.UTC().Format(time.RFC3339),
		},
	}
	_, err := a.cs.CoreV1().ConfigMaps(SystemNamespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = a.cs.CoreV1().ConfigMaps(SystemNamespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("record ownership: %w", err)
	}
	return nil
}

// Credential mints a fresh tenant token for c, valid for
// TenantTokenLifetime or until c's deadline if that is later, and returns
// the kubeconfig that carries it.
func (a *Admin) Credential(ctx context.Context, c cluster.Cluster) (cluster.Kubeconfig, error) {
	ttl := max(time.Until(c.ExpiresAt), TenantTokenLifetime)
	secs := int64(ttl / time.Second)
	tr, err := a.cs.CoreV1().ServiceAccounts(SystemNamespace).CreateToken(ctx, TenantServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return cluster.Kubeconfig{}, fmt.Errorf("mint tenant token: %w", err)
	}
	doc, err := Kubeconfig(c.ID, a.server, a.ca, tr.Status.Token)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return cluster.Kubeconfig{YAML: doc, APIServer: a.server, ExpiresAt: tr.Status.ExpirationTimestamp.Time}, nil
}

// Kubeconfig writes a kubeconfig whose cluster, user and context names carry
// the cluster id.
func Kubeconfig(id cluster.ID, server string, caPEM []byte, token string) ([]byte, error) {
	name := string(id)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name+"-tenant"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-tenant", Namespace: "default"}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	return b, nil
}
