package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/kube/policy"
)

// work is one normal action of the tenant; it must succeed.
type work struct {
	name string
	do   func(ctx context.Context, c *testCluster) error
}

func TestTenantWorkBaseline(t *testing.T) { runWork(t, false) }

func TestTenantWorkPrivileged(t *testing.T) {
	runWork(t, true)
	c := cluster(t, true)
	// What the Baseline standard forbids, the privileged flavor allows.
	for name, mutate := range map[string]func(*corev1.Pod){
		"privileged pod": privileged, "hostPath pod": hostPath, "hostNetwork pod": hostNetwork,
		"SYS_ADMIN pod": addCapability("SYS_ADMIN"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod(objectName("allowed-"+name), tenantNS, mutate), create); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("namespace enforcing privileged", func(t *testing.T) {
		if err := createNamespace(context.Background(), c, "privileged-ns", map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}); err != nil {
			t.Fatal(err)
		}
	})
}

func runWork(t *testing.T, privileged bool) {
	c := cluster(t, privileged)
	for _, w := range tenantWork() {
		t.Run(w.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := w.do(ctx, c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func tenantWork() []work {
	return []work{
		{"namespace", func(ctx context.Context, c *testCluster) error {
			return createNamespace(ctx, c, "team-a", nil)
		}},
		{"namespace enforcing restricted", func(ctx context.Context, c *testCluster) error {
			return createNamespace(ctx, c, "strict", map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"})
		}},
		{"label own namespace", func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.CoreV1().RESTClient(), "namespaces", "", tenantNS, `{"metadata":{"labels":{"team":"a","pod-security.kubernetes.io/warn":"restricted"}}}`)
		}},
		{"pod", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod("plain", tenantNS, nil), create)
			return err
		}},
		{"Deployment whose pods are made", func(ctx context.Context, c *testCluster) error {
			p := testPod("web", tenantNS, nil)
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: tenantNS},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: p.Labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
				},
			}
			if _, err := c.cs.AppsV1().Deployments(tenantNS).Create(ctx, d, create); err != nil {
				return err
			}
			return poll(ctx, func() (bool, error) {
				pods, err := c.cs.CoreV1().Pods(tenantNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
				return err == nil && len(pods.Items) > 0, err
			})
		}},
		{"StatefulSet", func(ctx context.Context, c *testCluster) error {
			p := testPod("db", tenantNS, nil)
			s := &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: tenantNS},
				Spec: appsv1.StatefulSetSpec{
					ServiceName: "db",
					Selector:    &metav1.LabelSelector{MatchLabels: p.Labels},
					Template:    corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
				},
			}
			_, err := c.cs.AppsV1().StatefulSets(tenantNS).Create(ctx, s, create)
			return err
		}},
		{"DaemonSet", func(ctx context.Context, c *testCluster) error {
			p := testPod("agent", tenantNS, nil)
			d := &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: tenantNS},
				Spec: appsv1.DaemonSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: p.Labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
				},
			}
			_, err := c.cs.AppsV1().DaemonSets(tenantNS).Create(ctx, d, create)
			return err
		}},
		{"Job", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.BatchV1().Jobs(tenantNS).Create(ctx, job("once"), create)
			return err
		}},
		{"CronJob", func(ctx context.Context, c *testCluster) error {
			j := job("nightly")
			cj := &batchv1.CronJob{
				ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: tenantNS},
				Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: j.Spec}},
			}
			_, err := c.cs.BatchV1().CronJobs(tenantNS).Create(ctx, cj, create)
			return err
		}},
		serviceWork("ClusterIP on 80", corev1.ServiceTypeClusterIP, 80),
		serviceWork("ClusterIP on 443", corev1.ServiceTypeClusterIP, 443),
		serviceWork("ClusterIP on 8080", corev1.ServiceTypeClusterIP, 8080),
		serviceWork("NodePort on 1024", corev1.ServiceTypeNodePort, 1024),
		serviceWork("LoadBalancer on 443", corev1.ServiceTypeLoadBalancer, 443),
		{"headless Service without ports", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service("headless", func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil
			}), create)
			return err
		}},
		{"ExternalName Service", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service("external-name", func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName, s.Spec.Ports, s.Spec.Selector = corev1.ServiceTypeExternalName, "example.com", nil, nil
			}), create)
			return err
		}},
		{"Ingress", func(ctx context.Context, c *testCluster) error {
			prefix := networkingv1.PathTypePrefix
			ing := &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: tenantNS},
				Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
				}}}}},
			}
			_, err := c.cs.NetworkingV1().Ingresses(tenantNS).Create(ctx, ing, create)
			return err
		}},
		{"NetworkPolicy", func(ctx context.Context, c *testCluster) error {
			np := &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: tenantNS},
				Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
			}
			_, err := c.cs.NetworkingV1().NetworkPolicies(tenantNS).Create(ctx, np, create)
			return err
		}},
		{"ConfigMap", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().ConfigMaps(tenantNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"a": "b"}}, create)
			return err
		}},
		{"Secret", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Secrets(tenantNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "password"}, StringData: map[string]string{"pw": "x"}}, create)
			return err
		}},
		{"PVC on the default StorageClass local-path", func(ctx context.Context, c *testCluster) error {
			pvc := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: tenantNS},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: mustQuantity("1Gi")}},
				},
			}
			got, err := c.cs.CoreV1().PersistentVolumeClaims(tenantNS).Create(ctx, pvc, create)
			if err != nil {
				return err
			}
			if got.Spec.StorageClassName == nil || *got.Spec.StorageClassName != "local-path" {
				return fmt.Errorf("storage class %v, want the default local-path", got.Spec.StorageClassName)
			}
			return nil
		}},
		{"Role and RoleBinding", func(ctx context.Context, c *testCluster) error {
			r := &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: tenantNS},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "configmaps"}, Verbs: []string{"get", "list", "watch"}}},
			}
			if _, err := c.cs.RbacV1().Roles(tenantNS).Create(ctx, r, create); err != nil {
				return err
			}
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: tenantNS},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: tenantNS}},
			}
			_, err := c.cs.RbacV1().RoleBindings(tenantNS).Create(ctx, rb, create)
			return err
		}},
		{"CRD, its custom resource and a Helm-style operator ClusterRole", crdWork},
		{"Helm-style ClusterRole and binding, then changed and deleted", func(ctx context.Context, c *testCluster) error {
			cr := clusterRole("chart-reader",
				rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}},
				rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}})
			if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, cr, create); err != nil {
				return err
			}
			if _, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("chart-reader", "chart-reader"), create); err != nil {
				return err
			}
			if err := mergePatch(ctx, c.cs.RbacV1().RESTClient(), "clusterroles", "", "chart-reader", `{"metadata":{"labels":{"helm.sh/chart":"x-1.0"}}}`); err != nil {
				return err
			}
			if err := c.cs.RbacV1().ClusterRoleBindings().Delete(ctx, "chart-reader", metav1.DeleteOptions{}); err != nil {
				return err
			}
			return c.cs.RbacV1().ClusterRoles().Delete(ctx, "chart-reader", metav1.DeleteOptions{})
		}},
		{"bind the view ClusterRole cluster-wide", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("everyone-views", "view"), create)
			return err
		}},
		{"ValidatingWebhookConfiguration", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "operator"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{webhook()},
			}, create)
			return err
		}},
		{"MutatingWebhookConfiguration", func(ctx context.Context, c *testCluster) error {
			w := webhook()
			_, err := c.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "operator"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{
					Name: w.Name, ClientConfig: w.ClientConfig, Rules: w.Rules, SideEffects: w.SideEffects,
					AdmissionReviewVersions: w.AdmissionReviewVersions, FailurePolicy: w.FailurePolicy, NamespaceSelector: w.NamespaceSelector,
				}},
			}, create)
			return err
		}},
		canI("logs", "get", "pods", "log"),
		canI("exec", "create", "pods", "exec"),
		canI("attach", "create", "pods", "attach"),
		canI("port-forward", "create", "pods", "portforward"),
		canI("ephemeral containers", "patch", "pods", "ephemeralcontainers"),
		{"exec reaches the pod (admission passes, no kubelet to answer)", func(ctx context.Context, c *testCluster) error {
			err := connect(ctx, c.cs, tenantNS, "plain", "exec", map[string]string{"command": "true", "stdout": "true"})
			if err != nil && (strings.Contains(err.Error(), "SMEK") || strings.Contains(err.Error(), "forbidden")) {
				return fmt.Errorf("exec denied: %w", err)
			}
			return nil
		}},
		{"auth can-i --list", func(ctx context.Context, c *testCluster) error {
			r, err := c.cs.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: tenantNS}}, create)
			if err != nil {
				return err
			}
			if len(r.Status.ResourceRules) == 0 {
				return fmt.Errorf("no rules listed")
			}
			return nil
		}},
		{"read kube-system", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"label and taint the node", func(ctx context.Context, c *testCluster) error {
			return mergePatch(ctx, c.cs.CoreV1().RESTClient(), "nodes", "", testNode, `{"metadata":{"labels":{"disk":"ssd"}},"spec":{"taints":[{"key":"dedicated","value":"ci","effect":"NoSchedule"}]}}`)
		}},
		{"keep the node label while changing the node", func(ctx context.Context, c *testCluster) error {
			n, err := c.cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if n.Labels[policy.NodeLabel] != testClusterID {
				return fmt.Errorf("node label %q, want %q", n.Labels[policy.NodeLabel], testClusterID)
			}
			n.Annotations = map[string]string{"note": "tenant"}
			_, err = c.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		}},
		{"token for its own ServiceAccount", func(ctx context.Context, c *testCluster) error {
			_, err := c.cs.CoreV1().ServiceAccounts(tenantNS).CreateToken(ctx, "default", &authnTokenRequest, create)
			return err
		}},
		{"delete its own namespace", func(ctx context.Context, c *testCluster) error {
			if err := createNamespace(ctx, c, "scratch", nil); err != nil {
				return err
			}
			return c.cs.CoreV1().Namespaces().Delete(ctx, "scratch", metav1.DeleteOptions{})
		}},
	}
}

func serviceWork(name string, typ corev1.ServiceType, port int32) work {
	return work{"Service " + name, func(ctx context.Context, c *testCluster) error {
		_, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, service(objectName(name), func(s *corev1.Service) {
			s.Spec.Type = typ
			s.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: port, TargetPort: intstr.FromInt32(8080)}}
		}), create)
		return err
	}}
}

func job(name string) *batchv1.Job {
	p := testPod(name, tenantNS, nil)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: p.Spec}}}
}

func webhook() admissionregistrationv1.ValidatingWebhook {
	none, ignore, path := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Ignore, "/validate"
	return admissionregistrationv1.ValidatingWebhook{
		Name:                    "validate.operator.example.com",
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: tenantNS, Name: "operator", Path: &path}},
		Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"widgets"}}}},
		SideEffects:             &none,
		FailurePolicy:           &ignore,
		AdmissionReviewVersions: []string{"v1"},
		NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": tenantNS}},
	}
}

// canI asks the API server whether the tenant may verb the subresource of
// pods in its namespace, like kubectl auth can-i. The local backend runs no
// kubelet, so authorization is what can be proved.
func canI(name, verb, resource, sub string) work {
	return work{name + " in its namespaces (auth can-i)", func(ctx context.Context, c *testCluster) error {
		r, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: tenantNS, Verb: verb, Resource: resource, Subresource: sub},
		}}, create)
		if err != nil {
			return err
		}
		if !r.Status.Allowed {
			return fmt.Errorf("%s %s/%s not allowed: %s", verb, resource, sub, r.Status.Reason)
		}
		return nil
	}}
}

// crdWork creates a CRD, waits until SMEK grants its resources, creates a
// custom resource and the ClusterRole and binding an operator's chart would
// ship for it.
func crdWork(ctx context.Context, c *testCluster) error {
	if _, err := c.dyn.Resource(crdGVR).Create(ctx, crd("example.com", "widgets"), create); err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1"}, "spec": map[string]any{"size": int64(3)},
	}}
	// The CRD must be established and the grant observed: both take a
	// moment.
	if err := poll(ctx, func() (bool, error) {
		_, err := c.dyn.Resource(gvr).Namespace(tenantNS).Create(ctx, w, create)
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("create a Widget: %w", err)
	}
	op := clusterRole("widget-operator", rbacv1.PolicyRule{APIGroups: []string{"example.com"}, Resources: []string{"widgets", "widgets/status"}, Verbs: []string{"get", "list", "watch", "update", "patch"}})
	if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, op, create); err != nil {
		return err
	}
	_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterRoleBinding("widget-operator", "widget-operator"), create)
	return err
}

var (
	_ kubernetes.Interface
	_ rest.Interface
)
