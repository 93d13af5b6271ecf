package hetzner

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// storageProbe names the claim and the pod with which readiness proves
// that storage works, in kube-system, out of the tenant's reach.
const (
	storageProbe      = "smek-readiness-storage"
	storageProbeNS    = "kube-system"
	storageProbeImage = "rancher/mirrored-library-busybox:1.36.1" // in k3s's airgap images: local-path's helper image
)

// waitReady waits until the cluster can be handed out: the API answers
// /readyz, a node is Ready, the default ServiceAccount exists, CoreDNS is
// available, k3s's deploy controller has applied its manifests (the
// packaged local-storage and SMEK's), local-path is the default
// StorageClass, and storage works end
// to end: a claim of the default class is bound for a consumer pod (k3s's
// local-path-provisioner ran its helper pod on the node), then the pod,
// the claim and the volume are deleted again. k3s applies its packaged
// components and auto-deploy manifests after its start returns, so each
// check waits for its part.
func waitReady(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
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
		{"k3s's deploy controller done (local-storage and every manifest taken up applied)", func(ctx context.Context) (bool, error) {
			return manifestsApplied(ctx, dyn)
		}},
		{"local-path default storage class", func(ctx context.Context) (bool, error) {
			sc, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
			return err == nil && sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true", nil
		}},
	}
	for _, c := range checks {
		if err := poll(ctx, c.name, c.ok); err != nil {
			return err
		}
	}
	return proveStorage(ctx, cs)
}

// addons are the Addon objects in which k3s's deploy controller tracks
// the files of its manifests folder (k3s pkg/deploy/controller.go): it
// creates one (kube-system, named after the file) when it takes a file
// up and sets its spec.checksum once the file's objects are applied.
var addons = schema.GroupVersionResource{Group: "k3s.cattle.io", Version: "v1", Resource: "addons"}

// manifestsApplied reports whether the deploy controller has applied the
// packaged local-storage component and every file it has taken up. The
// files are applied in name order, so SMEK's own (smek-*) follow
// local-storage at once; the storage proof that comes after takes longer.
func manifestsApplied(ctx context.Context, dyn dynamic.Interface) (bool, error) {
	list, err := dyn.Resource(addons).Namespace("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, nil // the kind is registered a moment after the start
	}
	storage := false
	for _, a := range list.Items {
		sum, _, _ := unstructured.NestedString(a.Object, "spec", "checksum")
		if sum == "" {
			return false, nil
		}
		storage = storage || a.GetName() == "local-storage"
	}
	return storage, nil
}

// poll calls ok every 100 ms until it holds, fails or ctx ends.
func poll(ctx context.Context, what string, ok func(context.Context) (bool, error)) error {
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, ok); err != nil {
		return fmt.Errorf("wait for %s: %w", what, err)
	}
	return nil
}

// proveStorage binds a claim of the default StorageClass for a consumer
// pod and deletes all of it again, waiting until the volume is gone (the
// provisioner's teardown ran). Leftovers of an interrupted earlier probe
// are removed first.
func proveStorage(ctx context.Context, cs kubernetes.Interface) error {
	pods, claims := cs.CoreV1().Pods(storageProbeNS), cs.CoreV1().PersistentVolumeClaims(storageProbeNS)
	volume := ""
	cleanUp := func(ctx context.Context) error {
		zero := int64(0)
		if err := pods.Delete(ctx, storageProbe, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if c, err := claims.Get(ctx, storageProbe, metav1.GetOptions{}); err == nil && c.Spec.VolumeName != "" {
			volume = c.Spec.VolumeName
		}
		if err := claims.Delete(ctx, storageProbe, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return poll(ctx, "storage probe deleted", func(ctx context.Context) (bool, error) {
			if _, err := pods.Get(ctx, storageProbe, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
			if _, err := claims.Get(ctx, storageProbe, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
			if volume == "" {
				return true, nil
			}
			_, err := cs.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}
	if err := cleanUp(ctx); err != nil {
		return fmt.Errorf("storage probe: remove leftovers: %w", err)
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: storageProbe, Namespace: storageProbeNS},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}
	if _, err := claims.Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("storage probe: create claim: %w", err)
	}
	no, grace := false, int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: storageProbe, Namespace: storageProbeNS},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: &no, TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "probe", Image: storageProbeImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"sleep", "300"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: storageProbe},
			}}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return errors.Join(fmt.Errorf("storage probe: create pod: %w", err), cleanUp(ctx))
	}
	err := poll(ctx, "a claim bound for a consumer pod (local-path)", func(ctx context.Context) (bool, error) {
		c, err := claims.Get(ctx, storageProbe, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		volume = c.Spec.VolumeName
		return c.Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil {
		return err
	}
	if err := cleanUp(ctx); err != nil {
		return fmt.Errorf("storage probe: clean up: %w", err)
	}
	return nil
}
