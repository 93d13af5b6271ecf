package hetzner

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// waitReady waits until the cluster can be handed out: the API answers
// /readyz, a node is Ready, the default ServiceAccount exists, CoreDNS is
// available and local-path is the default StorageClass.
func waitReady(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	checks := []struct {
		name string
		ok   func(context.Context) (bool, error)
	}{
		{"api /readyz", func(ctx context.Context) (bool, error) {
			_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil, nil
		}},
		{"node Ready", func(ctx context.Context) (bool, error) {
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, n := range nodes.Items {
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						return true, nil
					}
				}
			}
			return false, nil
		}},
		{"default service account", func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		}},
		{"coredns available", func(ctx context.Context) (bool, error) {
			d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			return err == nil && d.Status.AvailableReplicas >= 1, nil
		}},
		{"local-path default storage class", func(ctx context.Context) (bool, error) {
			sc, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
			return err == nil && sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true", nil
		}},
	}
	for _, c := range checks {
		for {
			ok, err := c.ok(ctx)
			if err != nil {
				return fmt.Errorf("wait for %s: %w", c.name, err)
			}
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s: %w", c.name, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
