package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/kube/policy"
)

// attack is one forbidden action of the tenant, tried alone.
type attack struct {
	name string
	// want is part of the denial the tenant must get: SMEK's own message
	// where a SMEK policy denies, otherwise the words of Pod Security
	// admission or RBAC.
	want string
	// podSecurity marks attacks that the privileged flavor allows on
	// purpose: it enforces the Privileged standard, since a privileged
	// container reaches the host anyway.
	podSecurity bool
	do          func(ctx context.Context, c *testCluster) error
}

// Denials written by the bundle and by Kubernetes, as the tenant sees them.
const (
	msgNamespace     = `SMEK: namespace "`
	msgPorts         = "SMEK: Service ports below 1024 are not allowed (except 80 and 443)"
	msgNodePorts     = "SMEK: a LoadBalancer Service cannot take a port the node serves on (6443 API server, 10250 kubelet)"
	msgExternalIPs   = "SMEK: Services cannot set externalIPs"
	msgEnforce       = "SMEK: the namespace label pod-security.kubernetes.io/enforce may only be"
	msgVersion       = "SMEK: the namespace label pod-security.kubernetes.io/enforce-version may only be latest"
	msgNodeLabel     = "SMEK: the node label smek-cluster-id is set by SMEK"
	msgClusterRBAC   = "came with the cluster; tenants cannot change or delete it"
	msgCRDGroup      = "belongs to Kubernetes or the cluster's own components"
	msgEscalation    = "is attempting to grant RBAC permissions not currently held"
	msgPSA           = `violates PodSecurity "baseline:latest": `
	msgPodStatus     = "SMEK: a pod's IP addresses are set by its node"
	msgWebhookTarget = "SMEK: admission webhooks and ExternalName Services cannot point at loopback, link-local or unspecified addresses or localhost"
)

// rbacDenied is RBAC's denial of verb on resource.
func rbacDenied(verb, resource string) string {
	return fmt.Sprintf("cannot %s resource %q", verb, resource)
}

func TestAttacksBaseline(t *testing.T) { runAttacks(t, false) }

func TestAttacksPrivileged(t *testing.T) { runAttacks(t, true) }

func runAttacks(t *testing.T, privileged bool) {
	c := cluster(t, privileged)
	for _, a := range attacks() {
		if privileged && a.podSecurity {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := a.do(ctx, c)
			if err == nil {
				t.Fatalf("the tenant was allowed; want a denial containing %q", a.want)
			}
			if !strings.Contains(err.Error(), a.want) {
				t.Fatalf("got %v\nwant a denial containing %q", err, a.want)
			}
			checkNoLeak(t, err)
		})
	}
}

// checkNoLeak fails when a denial shows CEL internals instead of a message.
func checkNoLeak(t *testing.T, err error) {
	t.Helper()
	for _, leak := range []string{"expression", "no such key", "evaluation", "CEL", "compilation"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("denial leaks policy internals (%q): %v", leak, err)
		}
	}
}

var create = metav1.CreateOptions{}

// objectName turns a case name into an object name.
func objectName(s string) string {
	return strings.ToLower(strings.NewReplacer(" ", "-", "_", "-").Replace(s))
}

func podAttack(name, want string, mutate func(*corev1.Pod)) attack {
	return attack{name: "pod " + name, want: want, podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
		_, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod(objectName("attack-"+name), tenantNS, mutate), create)
		return err
	}}
}

func service(name string, mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func servicePortAttack(name string, typ corev1.ServiceType, port int32, proto corev1.Protocol) attack {
	return attack{name: name, want: msgPorts, do: func(ctx context.Context, c *testCluster) error {
		_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service(objectName(name), func(s *corev1.Service) {
			s.Spec.Type = typ
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "low", Port: port, Protocol: proto})
		}), create)
		return err
	}}
}

// loadBalancerOn makes a LoadBalancer Service on port.
func loadBalancerOn(port int32) func(ctx context.Context, c *testCluster) error {
	return func(ctx context.Context, c *testCluster) error {
		_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service(fmt.Sprintf("lb-%d", port), func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "node", Port: port})
		}), create)
		return err
	}
}

// inNamespace attacks a protected namespace.
func inNamespace(name, ns string, do func(ctx context.Context, cs kubernetes.Interface) error) attack {
	return attack{name: name, want: msgNamespace + ns + `"`, do: func(ctx context.Context, c *testCluster) error { return do(ctx, c.cs) }}
}

func attacks() []attack {
	return []attack{
		// Pod Security: the Baseline standard.
		podAttack("privileged", "privileged", privileged),
		podAttack("hostPath", msgPSA+"hostPath volumes", hostPath),
		podAttack("hostNetwork", msgPSA+"host namespaces (hostNetwork=true)", hostNetwork),
		podAttack("hostPID", msgPSA+"host namespaces (hostPID=true)", hostPID),
		podAttack("hostIPC", msgPSA+"host namespaces (hostIPC=true)", hostIPC),
		podAttack("hostPort", msgPSA+"hostPort", hostPort),
		podAttack("capability SYS_ADMIN", msgPSA+"non-default capabilities", addCapability("SYS_ADMIN")),
		podAttack("capability NET_ADMIN", msgPSA+"non-default capabilities", addCapability("NET_ADMIN")),
		podAttack("unsafe sysctl", msgPSA+"forbidden sysctls (kernel.msgmax)", unsafeSysctl),
		podAttack("AppArmor unconfined", msgPSA+"forbidden AppArmor profile", appArmorUnconfined),
		podAttack("SELinux type", msgPSA+"seLinuxOptions", seLinuxType),
		podAttack("seccomp unconfined", msgPSA+"seccompProfile", seccompUnconfined),
		{name: "ephemeral container privileged", want: "privileged", podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
			p, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod("ephemeral-target", tenantNS, nil), create)
			if err != nil {
				return fmt.Errorf("unexpected: %w", err)
			}
			yes := true
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: &yes},
			}}}
			_, err = c.cs.CoreV1().Pods(tenantNS).UpdateEphemeralContainers(ctx, p.Name, p, metav1.UpdateOptions{})
			return err
		}},
		{name: "Deployment with hostNetwork pods", want: msgPSA + "host namespaces", podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
			return controllerMadePods(ctx, c, "deploy-hostnet", hostNetwork)
		}},
		{name: "Job with hostPath pods", want: msgPSA + "hostPath volumes", podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
			return jobMadePods(ctx, c, "job-hostpath", hostPath)
		}},

		// RBAC: no escalate, bind or impersonate; the cluster's own roles.
		{name: "bind cluster-admin cluster-wide", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("own-the-cluster", "cluster-admin"), create)
			return err
		}},
		{name: "bind cluster-admin in a namespace", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "own-the-namespace", Namespace: tenantNS},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: tenantNS}},
			}
			_, err := c.cs.RbacV1().RoleBindings(tenantNS).Create(ctx, rb, create)
			return err
		}},
		{name: "bind the admin role, which carries impersonate", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "ns-admin", Namespace: tenantNS},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: tenantNS}},
			}
			_, err := c.cs.RbacV1().RoleBindings(tenantNS).Create(ctx, rb, create)
			return err
		}},
		{name: "bind the edit role cluster-wide", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("everyone-edits", "edit"), create)
			return err
		}},
		{name: "bind a system role with rights the tenant lacks", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("be-a-node", "system:node"), create)
			return err
		}},
		{name: "ClusterRole with escalate", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoles().Create(ctx, clusterRole("escalator", rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"escalate"}}), create)
			return err
		}},
		{name: "ClusterRole with bind", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoles().Create(ctx, clusterRole("binder", rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}}), create)
			return err
		}},
		{name: "ClusterRole with impersonate", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoles().Create(ctx, clusterRole("impersonator", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users", "groups", "serviceaccounts"}, Verbs: []string{"impersonate"}}), create)
			return err
		}},
		{name: "ClusterRole with wildcards", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoles().Create(ctx, clusterRole("everything", rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}), create)
			return err
		}},
		{name: "impersonate cluster admin", want: "cannot impersonate", do: func(ctx context.Context, c *testCluster) error {
			cfg := rest.CopyConfig(c.tenant)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "smek-admin", Groups: []string{"system:masters"}}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("unexpected: %w", err)
			}
			_, err = cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}},
		{name: "delete ClusterRole cluster-admin", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return c.cs.RbacV1().ClusterRoles().Delete(ctx, "cluster-admin", metav1.DeleteOptions{})
		}},
		{name: "change ClusterRole system:node", want: msgEscalation, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.RbacV1().RESTClient(), "clusterroles", "", "system:node", `{"metadata":{"labels":{"owned":"by-tenant"}}}`)
		}},
		{name: "change ClusterRole system:basic-user", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.RbacV1().RESTClient(), "clusterroles", "", "system:basic-user", `{"metadata":{"labels":{"owned":"by-tenant"}}}`)
		}},
		{name: "change ClusterRole view", want: "must have cluster-admin privileges to use the aggregationRule", do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.RbacV1().RESTClient(), "clusterroles", "", "view", `{"metadata":{"annotations":{"owned":"by-tenant"}}}`)
		}},
		{name: "widen the tenant's own ClusterRole", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.RbacV1().RESTClient(), "clusterroles", "", policy.TenantClusterRole, `{"metadata":{"labels":{"x":"y"}}}`)
		}},
		{name: "delete the tenant's ClusterRoleBinding", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return c.cs.RbacV1().ClusterRoleBindings().Delete(ctx, policy.TenantClusterRole, metav1.DeleteOptions{})
		}},
		{name: "add a subject to ClusterRoleBinding system:discovery", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return jsonPatch(ctx, c.cs.RbacV1().RESTClient(), "clusterrolebindings", "", "system:discovery",
				`[{"op":"add","path":"/subjects/-","value":{"kind":"ServiceAccount","name":"default","namespace":"work"}}]`)
		}},
		{name: "delete ClusterRoleBinding cluster-admin", want: msgClusterRBAC, do: func(ctx context.Context, c *testCluster) error {
			return c.cs.RbacV1().ClusterRoleBindings().Delete(ctx, "cluster-admin", metav1.DeleteOptions{})
		}},

		// The system namespaces.
		inNamespace("ConfigMap in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, create)
			return err
		}),
		inNamespace("pod in kube-system (exempt from pod security)", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Pods("kube-system").Create(ctx, testPod("sneak", "kube-system", nil), create)
			return err
		}),
		inNamespace("RoleBinding in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "kube-system"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: policy.TenantClusterRole},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: tenantNS}},
			}
			_, err := cs.RbacV1().RoleBindings("kube-system").Create(ctx, rb, create)
			return err
		}),
		inNamespace("delete a pod in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Pods("kube-system").Delete(ctx, victimPod, metav1.DeleteOptions{})
		}),
		inNamespace("evict a pod in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Pods("kube-system").EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: victimPod, Namespace: "kube-system"}})
		}),
		inNamespace("exec into a pod in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return connect(ctx, cs, "kube-system", victimPod, "exec", map[string]string{"command": "sh", "stdout": "true"})
		}),
		inNamespace("attach to a pod in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return connect(ctx, cs, "kube-system", victimPod, "attach", map[string]string{"stdout": "true"})
		}),
		inNamespace("port-forward to a pod in kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return connect(ctx, cs, "kube-system", victimPod, "portforward", map[string]string{"ports": "80"})
		}),
		inNamespace("token for a kube-system ServiceAccount", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "namespace-controller", &authnTokenRequest, create)
			return err
		}),
		inNamespace("token for the tenant itself", policy.Namespace, func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().ServiceAccounts(policy.Namespace).CreateToken(ctx, policy.TenantServiceAccount, &authnTokenRequest, create)
			return err
		}),
		inNamespace("long-lived token Secret for the tenant", policy.Namespace, func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Secrets(policy.Namespace).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "forever", Annotations: map[string]string{corev1.ServiceAccountNameKey: policy.TenantServiceAccount}},
				Type:       corev1.SecretTypeServiceAccountToken,
			}, create)
			return err
		}),
		inNamespace("change SMEK's ownership record", policy.Namespace, func(ctx context.Context, cs kubernetes.Interface) error {
			return mergePatch(ctx, cs.CoreV1().RESTClient(), "configmaps", policy.Namespace, "smek-cluster", `{"data":{"cluster-id":"c-other"}}`)
		}),
		inNamespace("delete the tenant ServiceAccount", policy.Namespace, func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().ServiceAccounts(policy.Namespace).Delete(ctx, policy.TenantServiceAccount, metav1.DeleteOptions{})
		}),
		inNamespace("Secret in kube-public", "kube-public", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Secrets("kube-public").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, create)
			return err
		}),
		inNamespace("Lease in kube-node-lease", "kube-node-lease", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: testNode}}, create)
			return err
		}),
		inNamespace("delete namespace smek-system", policy.Namespace, func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Namespaces().Delete(ctx, policy.Namespace, metav1.DeleteOptions{})
		}),
		inNamespace("delete namespace kube-node-lease", "kube-node-lease", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Namespaces().Delete(ctx, "kube-node-lease", metav1.DeleteOptions{})
		}),
		inNamespace("relabel namespace kube-system", "kube-system", func(ctx context.Context, cs kubernetes.Interface) error {
			return mergePatch(ctx, cs.CoreV1().RESTClient(), "namespaces", "", "kube-system", `{"metadata":{"labels":{"owned":"by-tenant"}}}`)
		}),
		{name: "delete namespace kube-system", want: "this namespace may not be deleted", do: func(ctx context.Context, c *testCluster) error {
			return c.cs.CoreV1().Namespaces().Delete(ctx, "kube-system", metav1.DeleteOptions{})
		}},

		// Pod security labels of namespaces.
		{name: "new namespace enforcing privileged", want: msgEnforce, podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
			return createNamespace(ctx, c, "weak", map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
		}},
		{name: "relabel own namespace to privileged", want: msgEnforce, podSecurity: true, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.CoreV1().RESTClient(), "namespaces", "", tenantNS, `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`)
		}},
		{name: "namespace enforcing an unknown level", want: "must be one of privileged, baseline, restricted", do: func(ctx context.Context, c *testCluster) error {
			return createNamespace(ctx, c, "odd-level", map[string]string{"pod-security.kubernetes.io/enforce": "Baseline"})
		}},
		{name: "namespace pinning an old standard", want: msgVersion, do: func(ctx context.Context, c *testCluster) error {
			return createNamespace(ctx, c, "old-standard", map[string]string{"pod-security.kubernetes.io/enforce-version": "v1.22"})
		}},

		// Objects only SMEK writes: RBAC grants the tenant reads only.
		{name: "create ValidatingAdmissionPolicy", want: rbacDenied("create", "validatingadmissionpolicies"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "x"},
				Spec:       admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{{Expression: "true"}}},
			}, create)
			return err
		}},
		{name: "delete ValidatingAdmissionPolicyBinding", want: rbacDenied("delete", "validatingadmissionpolicybindings"), do: func(ctx context.Context, c *testCluster) error {
			return c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, "smek-service-ports", metav1.DeleteOptions{})
		}},
		{name: "change ValidatingAdmissionPolicy", want: rbacDenied("patch", "validatingadmissionpolicies"), do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.AdmissionregistrationV1().RESTClient(), "validatingadmissionpolicies", "", "smek-service-ports", `{"spec":{"failurePolicy":"Ignore"}}`)
		}},
		{name: "create MutatingAdmissionPolicy", want: rbacDenied("create", "mutatingadmissionpolicies"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.AdmissionregistrationV1().MutatingAdmissionPolicies().Create(ctx, &admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, create)
			return err
		}},
		{name: "create StorageClass", want: rbacDenied("create", "storageclasses"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Provisioner: "example.com/x"}, create)
			return err
		}},
		{name: "change StorageClass local-path", want: rbacDenied("patch", "storageclasses"), do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.StorageV1().RESTClient(), "storageclasses", "", "local-path", `{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"false"}}}`)
		}},
		{name: "create hostPath PersistentVolume", want: rbacDenied("create", "persistentvolumes"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "host-root"},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:               corev1.ResourceList{corev1.ResourceStorage: mustQuantity("1Gi")},
					AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}},
				},
			}, create)
			return err
		}},
		{name: "create APIService", want: rbacDenied("create", "apiservices"), do: func(ctx context.Context, c *testCluster) error {
			body := []byte(`{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":"v1.evil.example.com"},` +
				`"spec":{"group":"evil.example.com","version":"v1","groupPriorityMinimum":1000,"versionPriority":15,"service":{"namespace":"work","name":"evil"}}}`)
			return c.cs.CoreV1().RESTClient().Post().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").Body(body).Do(ctx).Error()
		}},
		{name: "create CSIDriver", want: rbacDenied("create", "csidrivers"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "evil.example.com"}}, create)
			return err
		}},
		{name: "create RuntimeClass", want: rbacDenied("create", "runtimeclasses"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "evil"}, Handler: "runc"}, create)
			return err
		}},
		{name: "approve a certificate request", want: rbacDenied("update", "certificatesigningrequests/approval"), do: func(ctx context.Context, c *testCluster) error {
			body := `{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"x"},"spec":{"request":"","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]},"status":{"conditions":[{"type":"Approved","status":"True"}]}}`
			return c.cs.CoreV1().RESTClient().Put().AbsPath("/apis/certificates.k8s.io/v1/certificatesigningrequests/x/approval").Body([]byte(body)).Do(ctx).Error()
		}},
		{name: "reach the kubelet through nodes/proxy", want: rbacDenied("get", "nodes/proxy"), do: func(ctx context.Context, c *testCluster) error {
			return c.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + testNode + "/proxy/pods").Do(ctx).Error()
		}},
		{name: "create a Node", want: rbacDenied("create", "nodes"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fake", Labels: map[string]string{policy.NodeLabel: "c-other"}}}, create)
			return err
		}},
		{name: "delete the Node", want: rbacDenied("delete", "nodes"), do: func(ctx context.Context, c *testCluster) error {
			return c.cs.CoreV1().Nodes().Delete(ctx, testNode, metav1.DeleteOptions{})
		}},

		// Services.
		servicePortAttack("ClusterIP port 22", corev1.ServiceTypeClusterIP, 22, corev1.ProtocolTCP),
		servicePortAttack("NodePort port 25", corev1.ServiceTypeNodePort, 25, corev1.ProtocolTCP),
		servicePortAttack("LoadBalancer port 53 UDP", corev1.ServiceTypeLoadBalancer, 53, corev1.ProtocolUDP),
		servicePortAttack("ClusterIP port 1023", corev1.ServiceTypeClusterIP, 1023, corev1.ProtocolTCP),
		// ServiceLB holds a LoadBalancer Service's ports on the node itself.
		{name: "LoadBalancer port 6443", want: msgNodePorts + "; found port 6443", do: loadBalancerOn(6443)},
		{name: "LoadBalancer port 10250", want: msgNodePorts + "; found port 10250", do: loadBalancerOn(10250)},
		{name: "Service moved to port 21", want: msgPorts, do: func(ctx context.Context, c *testCluster) error {
			if _, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service("moves-to-21", nil), create); err != nil {
				return fmt.Errorf("unexpected: %w", err)
			}
			return jsonPatch(ctx, c.cs.CoreV1().RESTClient(), "services", tenantNS, "moves-to-21", `[{"op":"replace","path":"/spec/ports/0/port","value":21}]`)
		}},
		{name: "Service with externalIPs", want: msgExternalIPs, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service("external-ips", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"8.8.8.8"} }), create)
			return err
		}},

		// The node label.
		{name: "remove the node label", want: msgNodeLabel, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.CoreV1().RESTClient(), "nodes", "", testNode, `{"metadata":{"labels":{"`+policy.NodeLabel+`":null}}}`)
		}},
		{name: "change the node label", want: msgNodeLabel, do: func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.CoreV1().RESTClient(), "nodes", "", testNode, `{"metadata":{"labels":{"`+policy.NodeLabel+`":"c-other"}}}`)
		}},
		{name: "replace the node without its label", want: msgNodeLabel, do: func(ctx context.Context, c *testCluster) error {
			n, err := c.cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("unexpected: %w", err)
			}
			n.Labels = map[string]string{"kubernetes.io/hostname": testNode}
			_, err = c.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{name: "node status", want: rbacDenied("patch", "nodes/status"), do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Nodes().Patch(ctx, testNode, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+policy.NodeLabel+`":"c-other"}}}`), metav1.PatchOptions{}, "status")
			return err
		}},

		// The API server as a proxy into its own machine.
		podStatusAttack("forge the pod IP", `{"status":{"podIP":"192.0.2.2","podIPs":[{"ip":"192.0.2.2"}]}}`),
		podStatusAttack("forge the host IP", `{"status":{"hostIP":"192.0.2.2","hostIPs":[{"ip":"192.0.2.2"}]}}`),
		webhookTargetAttack("webhook on loopback", "https://127.0.0.1:2379/"),
		webhookTargetAttack("webhook on IPv6 loopback", "https://[::1]:6443/"),
		webhookTargetAttack("webhook on IPv4-mapped loopback", "https://[::ffff:127.0.0.1]:6443/"),
		webhookTargetAttack("webhook on the metadata service", "https://169.254.169.254/"),
		webhookTargetAttack("webhook on localhost", "https://localhost:8080/"),
		webhookTargetAttack("webhook on a name under localhost", "https://smek.localhost:8080/"),
		webhookTargetAttack("webhook on the unspecified address", "https://0.0.0.0:8080/"),
		{name: "ExternalName Service for localhost", want: msgWebhookTarget, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "to-localhost", Namespace: tenantNS},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
			}, create)
			return err
		}},
		{name: "ExternalName Service for a loopback address", want: msgWebhookTarget, do: func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "to-loopback", Namespace: tenantNS},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
			}, create)
			return err
		}},

		// CRDs in reserved groups.
		{name: "CRD in a built-in API group", want: msgCRDGroup, do: func(ctx context.Context, c *testCluster) error {
			return createCRD(ctx, c, "rbac.authorization.k8s.io", "shadows")
		}},
		{name: "CRD in k3s's helm.cattle.io group", want: msgCRDGroup, do: func(ctx context.Context, c *testCluster) error {
			return createCRD(ctx, c, "helm.cattle.io", "helmcharts")
		}},
	}
}

var authnTokenRequest = authenticationv1TokenRequest()

// podStatusAttack creates a pod and patches its status with patch.
func podStatusAttack(name, patch string) attack {
	return attack{name: name, want: msgPodStatus, do: func(ctx context.Context, c *testCluster) error {
		p, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod(objectName(name), tenantNS, nil), create)
		if err != nil {
			return fmt.Errorf("unexpected: %w", err)
		}
		_, err = c.cs.CoreV1().Pods(tenantNS).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
		return err
	}}
}

// webhookTargetAttack creates a validating webhook that calls url.
func webhookTargetAttack(name, url string) attack {
	return attack{name: name, want: msgWebhookTarget, do: func(ctx context.Context, c *testCluster) error {
		none, ignore := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Ignore
		_, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: objectName(name)},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "scan.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
				SideEffects: &none, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
			}},
		}, create)
		return err
	}}
}

func clusterRoleBinding(name, role string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: tenantNS}},
	}
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func mergePatch(ctx context.Context, rc rest.Interface, resource, ns, name, patch string) error {
	return rc.Patch(types.MergePatchType).NamespaceIfScoped(ns, ns != "").Resource(resource).Name(name).Body([]byte(patch)).Do(ctx).Error()
}

func jsonPatch(ctx context.Context, rc rest.Interface, resource, ns, name, patch string) error {
	return rc.Patch(types.JSONPatchType).NamespaceIfScoped(ns, ns != "").Resource(resource).Name(name).Body([]byte(patch)).Do(ctx).Error()
}

// connect sends the request behind kubectl exec, attach or port-forward.
// Admission decides before the connection is upgraded, so a plain POST
// shows the decision.
func connect(ctx context.Context, cs kubernetes.Interface, ns, pod, sub string, params map[string]string) error {
	req := cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource(sub)
	for k, v := range params {
		req = req.Param(k, v)
	}
	return req.Do(ctx).Error()
}

func createNamespace(ctx context.Context, c *testCluster, name string, labels map[string]string) error {
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, create)
	return err
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func createCRD(ctx context.Context, c *testCluster, group, plural string) error {
	_, err := c.dyn.Resource(crdGVR).Create(ctx, crd(group, plural), create)
	return err
}

// crd is a valid CustomResourceDefinition of a namespaced kind that keeps
// any field.
func crd(group, plural string) *unstructured.Unstructured {
	kind := strings.ToUpper(plural[:1]) + strings.TrimSuffix(plural[1:], "s")
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata": map[string]any{
			"name":        plural + "." + group,
			"annotations": map[string]any{"api-approved.kubernetes.io": "unapproved, SMEK test"},
		},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": plural, "singular": strings.TrimSuffix(plural, "s"), "kind": kind, "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
}

// controllerMadePods creates a Deployment whose pods mutate makes
// forbidden and returns the reason its ReplicaSet cannot create them. The
// Deployment itself is accepted (Pod Security only warns about templates);
// its pods are not.
func controllerMadePods(ctx context.Context, c *testCluster, name string, mutate func(*corev1.Pod)) error {
	p := testPod(name, tenantNS, mutate)
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: p.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
		},
	}
	if _, err := c.cs.AppsV1().Deployments(tenantNS).Create(ctx, d, create); err != nil {
		return fmt.Errorf("unexpected: the Deployment itself was denied: %w", err)
	}
	var reason error
	err := poll(ctx, func() (bool, error) {
		rss, err := c.cs.AppsV1().ReplicaSets(tenantNS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, err
		}
		for _, rs := range rss.Items {
			if rs.Status.Replicas > 0 {
				return true, nil // a pod was made: the attack worked
			}
			for _, cond := range rs.Status.Conditions {
				if cond.Type == appsv1.ReplicaSetReplicaFailure {
					reason = fmt.Errorf("ReplicaSet %s: %s", rs.Name, cond.Message)
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("unexpected: %w", err)
	}
	return reason
}

// jobMadePods creates a Job whose pods mutate makes forbidden and returns
// the event in which the Job controller reports it could not create them.
func jobMadePods(ctx context.Context, c *testCluster, name string, mutate func(*corev1.Pod)) error {
	p := testPod(name, tenantNS, mutate)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: p.Spec}},
	}
	if _, err := c.cs.BatchV1().Jobs(tenantNS).Create(ctx, j, create); err != nil {
		return fmt.Errorf("unexpected: the Job itself was denied: %w", err)
	}
	var reason error
	err := poll(ctx, func() (bool, error) {
		pods, err := c.cs.CoreV1().Pods(tenantNS).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
		if err != nil {
			return false, err
		}
		if len(pods.Items) > 0 {
			return true, nil // a pod was made: the attack worked
		}
		evs, err := c.cs.CoreV1().Events(tenantNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=FailedCreate"})
		if err != nil {
			return false, err
		}
		if len(evs.Items) > 0 {
			reason = fmt.Errorf("Job %s: %s", name, evs.Items[0].Message)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("unexpected: %w", err)
	}
	return reason
}
