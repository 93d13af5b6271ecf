package policy_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/smek/action/internal/kube/policy"
)

// TestOddObjects sends objects the policies could trip on (missing fields,
// nulls, wrong types). Each is denied with a clear message or allowed on
// purpose; none may surface a CEL error.
func TestOddObjects(t *testing.T) {
	c := cluster(t, false)
	for _, tc := range []struct {
		name     string
		method   string // POST or merge PATCH
		path     string
		body     string
		wantDeny string // "" when the object is allowed on purpose
	}{
		{"service port as a string", "POST", "/api/v1/namespaces/work/services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"odd1"},"spec":{"ports":[{"port":"22"}]}}`, "cannot unmarshal"},
		{"service ports null", "POST", "/api/v1/namespaces/work/services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"odd2"},"spec":{"ports":null}}`, "spec.ports: Required value"},
		{"headless service ports null", "POST", "/api/v1/namespaces/work/services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"odd3"},"spec":{"clusterIP":"None","ports":null}}`, ""},
		{"service externalIPs null", "POST", "/api/v1/namespaces/work/services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"odd4"},"spec":{"externalIPs":null,"ports":[{"port":443}]}}`, ""},
		{"service externalIPs empty", "POST", "/api/v1/namespaces/work/services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"odd5"},"spec":{"externalIPs":[],"ports":[{"port":443}]}}`, ""},
		{"namespace labels null", "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"odd6","labels":null}}`, ""},
		{"namespace enforce empty", "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"odd7","labels":{"pod-security.kubernetes.io/enforce":""}}}`, "must be one of"},
		{"namespace enforce-version garbage", "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"odd8","labels":{"pod-security.kubernetes.io/enforce-version":"not-a-version"}}}`, `must be "latest" or "v1.x"`},
		{"node labels null", "PATCH", "/api/v1/nodes/" + testNode, `{"metadata":{"labels":null}}`, "SMEK: the node label"},
		{"node label value null", "PATCH", "/api/v1/nodes/" + testNode, `{"metadata":{"labels":{"` + policy.NodeLabel + `":null}}}`, "SMEK: the node label"},
		{"CRD without a group", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"things."},"spec":{"names":{"plural":"things","kind":"Thing"},"scope":"Namespaced","versions":[]}}`, "Invalid value"},
		{"ClusterRoleBinding without roleRef kind", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"odd9"},"roleRef":{"name":"cluster-admin","apiGroup":"rbac.authorization.k8s.io"}}`, "unsupported role reference kind"},
		{"pod in kube-system without a spec", "POST", "/api/v1/namespaces/kube-system/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"odd10"}}`, "spec.containers: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rc := c.cs.CoreV1().RESTClient()
			req := rc.Post()
			if tc.method == "PATCH" {
				req = rc.Patch(types.MergePatchType)
			}
			err := req.AbsPath(tc.path).Body([]byte(tc.body)).Do(ctx).Error()
			if tc.wantDeny == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantDeny) {
				t.Fatalf("got %v, want a denial containing %q", err, tc.wantDeny)
			}
			checkNoLeak(t, err)
		})
	}
}

// FuzzCustomResourceRules feeds arbitrary CRD documents to the grant: it
// must never panic, grant a reserved group, or grant a wildcard.
func FuzzCustomResourceRules(f *testing.F) {
	for _, seed := range []string{
		`{"spec":{"group":"example.com","names":{"plural":"widgets"}}}`,
		`{"spec":{"group":"helm.cattle.io","names":{"plural":"helmcharts"}}}`,
		`{"spec":{"group":"","names":{"plural":"pods"}}}`,
		`{"spec":{"group":7,"names":"x"}}`,
		`{"spec":null}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	reserved := []string{"", "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apps", "helm.cattle.io", "k3s.cattle.io"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var obj map[string]any
		if json.Unmarshal(doc, &obj) != nil || obj == nil {
			return
		}
		for _, r := range policy.CustomResourceRules([]*unstructured.Unstructured{{Object: obj}}) {
			rule := r.(map[string]any)
			group := rule["apiGroups"].([]any)[0].(string)
			if slices.Contains(reserved, group) || group == "*" {
				t.Fatalf("granted group %q", group)
			}
			for _, res := range rule["resources"].([]any) {
				if strings.HasPrefix(res.(string), "*") {
					t.Fatalf("granted resource %q", res)
				}
			}
		}
	})
}
