package policy_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/smek/action/internal/kube/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var flavors = map[string]policy.Options{
	"baseline":   {LocalPathStorageClass: true},
	"privileged": {Privileged: true},
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering; review and run go test -update", path)
	}
}

func TestManifestsGolden(t *testing.T) {
	for name, o := range flavors {
		t.Run(name, func(t *testing.T) {
			got, err := policy.Manifests(o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "bundle-"+name+".yaml", got)
			golden(t, "admission-"+name+".yaml", policy.AdmissionConfig(o))
		})
	}
}

func TestAPIServerFlags(t *testing.T) {
	for _, tc := range []struct {
		o    policy.Options
		want string
	}{{policy.Options{}, "--allow-privileged=false"}, {policy.Options{Privileged: true}, "--allow-privileged=true"}} {
		if got := policy.APIServerFlags(tc.o); !slices.Contains(got, tc.want) {
			t.Errorf("APIServerFlags(%+v) = %v, want it to contain %s", tc.o, got, tc.want)
		}
	}
}

func TestAdmissionConfigLevels(t *testing.T) {
	for _, tc := range []struct {
		o    policy.Options
		want string
	}{{policy.Options{}, `enforce: "baseline"`}, {policy.Options{Privileged: true}, `enforce: "privileged"`}} {
		got := string(policy.AdmissionConfig(tc.o))
		if !strings.Contains(got, tc.want) || !strings.Contains(got, `warn: "baseline"`) || !strings.Contains(got, `namespaces: ["kube-system"]`) {
			t.Errorf("AdmissionConfig(%+v):\n%s\nwant %s, warn baseline, kube-system exempt", tc.o, got, tc.want)
		}
	}
}

func TestLocalPathStorageClassOption(t *testing.T) {
	for _, with := range []bool{false, true} {
		objs, err := policy.Objects(policy.Options{LocalPathStorageClass: with})
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(objs, func(u *unstructured.Unstructured) bool { return u.GetKind() == "StorageClass" })
		if found != with {
			t.Errorf("LocalPathStorageClass %t: StorageClass in bundle %t", with, found)
		}
	}
}

// TestTenantRoleHasNoWildcards checks the rules the issue forbids: no
// wildcard, and none of the verbs that lift RBAC's escalation check.
func TestTenantRoleHasNoWildcards(t *testing.T) {
	objs, err := policy.Objects(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var roles int
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		roles++
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for i, r := range rules {
			rule := r.(map[string]any)
			for _, field := range []string{"apiGroups", "resources", "verbs", "nonResourceURLs", "resourceNames"} {
				vals, _, _ := unstructured.NestedStringSlice(rule, field)
				for _, v := range vals {
					if strings.Contains(v, "*") {
						t.Errorf("%s rule %d: %s has a wildcard %q", o.GetName(), i, field, v)
					}
					if field == "verbs" && slices.Contains([]string{"escalate", "bind", "impersonate", "approve", "sign"}, v) {
						t.Errorf("%s rule %d: verb %q", o.GetName(), i, v)
					}
				}
			}
			groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
			res, _, _ := unstructured.NestedStringSlice(rule, "resources")
			verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
			writes := slices.ContainsFunc(verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" })
			for _, r := range res {
				forbidden := slices.Contains([]string{"validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
					"storageclasses", "persistentvolumes", "apiservices", "csidrivers", "runtimeclasses", "nodes/status", "certificatesigningrequests/approval"}, r)
				if (forbidden && writes) || r == "nodes/proxy" {
					t.Errorf("%s rule %d grants %v on %v/%s", o.GetName(), i, verbs, groups, r)
				}
			}
		}
	}
	if roles == 0 {
		t.Fatal("no ClusterRole in the bundle")
	}
}

// TestPoliciesFailClosed checks every policy fails closed, is bound with
// Deny, and words its denials as SMEK's.
func TestPoliciesFailClosed(t *testing.T) {
	for name, o := range flavors {
		objs, err := policy.Objects(o)
		if err != nil {
			t.Fatal(err)
		}
		bound := map[string]bool{}
		var policies []string
		for _, obj := range objs {
			switch obj.GetKind() {
			case "ValidatingAdmissionPolicyBinding":
				p, _, _ := unstructured.NestedString(obj.Object, "spec", "policyName")
				actions, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "validationActions")
				bound[p] = slices.Contains(actions, "Deny")
			case "ValidatingAdmissionPolicy":
				policies = append(policies, obj.GetName())
				if fp, _, _ := unstructured.NestedString(obj.Object, "spec", "failurePolicy"); fp != "Fail" {
					t.Errorf("%s %s: failurePolicy %q, want Fail", name, obj.GetName(), fp)
				}
				vs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "validations")
				for i, v := range vs {
					msg, _, _ := unstructured.NestedString(v.(map[string]any), "message")
					if !strings.HasPrefix(msg, "SMEK: ") {
						t.Errorf("%s %s validation %d: message %q does not start with SMEK:", name, obj.GetName(), i, msg)
					}
				}
			}
		}
		for _, p := range policies {
			if !bound[p] {
				t.Errorf("%s: policy %s has no Deny binding", name, p)
			}
		}
		if len(policies) == 0 {
			t.Errorf("%s: no policies", name)
		}
	}
}

func TestCustomResourceRulesSkipReservedGroups(t *testing.T) {
	crds := []*unstructured.Unstructured{
		crd("example.com", "widgets"),
		crd("helm.cattle.io", "helmcharts"),
		crd("admissionregistration.k8s.io", "validatingadmissionpolicies"),
		crd("gateway.networking.k8s.io", "gateways"),
		{Object: map[string]any{"spec": map[string]any{}}}, // no group, no names
	}
	rules := policy.CustomResourceRules(crds)
	var got []string
	for _, r := range rules {
		m := r.(map[string]any)
		got = append(got, m["apiGroups"].([]any)[0].(string)+"/"+m["resources"].([]any)[0].(string))
	}
	want := []string{"example.com/widgets", "gateway.networking.k8s.io/gateways"}
	if !slices.Equal(got, want) {
		t.Errorf("granted %v, want %v", got, want)
	}
}
