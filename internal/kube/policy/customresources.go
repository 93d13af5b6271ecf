package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/logkey"
)

// RBAC without wildcards cannot name the resources of CRDs that do not
// exist yet, and a wildcard would reach the admission-policy objects. So
// SMEK grants them one by one: CustomResourcesClusterRole, bound to the
// tenant, always lists the resources of the cluster's CRDs, except those in
// reserved groups (Kubernetes' own, and k3s's, whose HelmCharts k3s would
// install with cluster-admin rights). A CRD the tenant could define in a
// reserved group is denied by the smek-crd-groups policy first.

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

var clusterRoleResource = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}

// CustomResourceRules returns the RBAC rules that grant the tenant the
// custom resources of crds. A CRD without a group or plural name, or in a
// reserved group, grants nothing.
func CustomResourceRules(crds []*unstructured.Unstructured) []any {
	type res struct{ group, plural string }
	var rs []res
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		if group == "" || plural == "" || slices.Contains(reservedGroups, group) {
			continue
		}
		rs = append(rs, res{group, plural})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].group != rs[j].group {
			return rs[i].group < rs[j].group
		}
		return rs[i].plural < rs[j].plural
	})
	verbs := make([]any, len(allVerbs))
	for i, v := range allVerbs {
		verbs[i] = v
	}
	rules := []any{}
	for _, r := range rs {
		rules = append(rules, map[string]any{
			"apiGroups": []any{r.group},
			"resources": []any{r.plural, r.plural + "/status", r.plural + "/scale"},
			"verbs":     verbs,
		})
	}
	return rules
}

// applyCustomResourceRole writes the role with rules and checks that the
// API server stored exactly those rules: a webhook that rewrote SMEK's
// request, or anything else between SMEK and etcd, is an error, and the
// role is emptied rather than left with rules SMEK did not mean.
func applyCustomResourceRole(ctx context.Context, dyn dynamic.Interface, rules []any) error {
	got, err := dyn.Resource(clusterRoleResource).Apply(ctx, CustomResourcesClusterRole, customResourceRole(rules), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("apply ClusterRole %s: %w", CustomResourcesClusterRole, err)
	}
	stored, _, _ := unstructured.NestedSlice(got.Object, "rules")
	if sameRules(stored, rules) {
		return nil
	}
	if len(rules) > 0 {
		if _, err := dyn.Resource(clusterRoleResource).Apply(ctx, CustomResourcesClusterRole, customResourceRole([]any{}), metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("ClusterRole %s was stored with other rules than SMEK applied (%d instead of %d), and emptying it failed: %w", CustomResourcesClusterRole, len(stored), len(rules), err)
		}
	}
	return fmt.Errorf("ClusterRole %s was stored with other rules than SMEK applied (%d instead of %d); emptied it", CustomResourcesClusterRole, len(stored), len(rules))
}

func customResourceRole(rules []any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "ClusterRole",
		"metadata": map[string]any{
			"name":   CustomResourcesClusterRole,
			"labels": map[string]any{"app.kubernetes.io/managed-by": "smek"},
		},
		"rules": rules,
	}}
}

// sameRules compares RBAC rules as JSON, so that a nil and an empty list,
// or []string and []any, are alike.
func sameRules(a, b []any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// Retries after a failed list, watch or apply back off from retryMin to
// retryMax; a warning about the same failure is logged at most once per
// warnEvery, so a cluster whose API keeps failing (a tenant webhook that
// always fails, a control plane shutting down) does not flood the log.
const (
	retryMin  = time.Second
	retryMax  = 30 * time.Second
	warnEvery = 5 * time.Minute
)

// GrantCustomResources keeps CustomResourcesClusterRole in step with the
// cluster's CRDs until ctx ends: a CRD the tenant creates becomes usable a
// moment later, and a deleted one stops being granted. The local backend
// runs it for every cluster it hands out.
func GrantCustomResources(ctx context.Context, cfg *rest.Config, logger *slog.Logger) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	g := &granter{dyn: dyn, logger: logger}
	warn := &warnLimiter{now: time.Now, every: warnEvery}
	retry := retryMin
	for ctx.Err() == nil {
		err := g.syncAndWatch(ctx)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if g.synced {
			retry, g.synced = retryMin, false
		}
		if n, ok := warn.allow(err.Error()); ok {
			logger.Warn("grant custom resources", logkey.Err, err, logkey.Suppressed, n, logkey.RetryIn, retry)
		} else {
			logger.Debug("grant custom resources", logkey.Err, err, logkey.RetryIn, retry)
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
		retry = min(2*retry, retryMax)
	}
	return nil
}

// warnLimiter lets a warning through when its message differs from the
// last one let through, or when every has passed since; it counts what it
// held back meanwhile.
type warnLimiter struct {
	now        func() time.Time
	every      time.Duration
	last       string
	at         time.Time
	suppressed int
}

// allow reports whether msg may be logged now, and how many warnings were
// held back since the last one that was.
func (w *warnLimiter) allow(msg string) (int, bool) {
	now := w.now()
	if msg == w.last && now.Sub(w.at) < w.every {
		w.suppressed++
		return 0, false
	}
	n := w.suppressed
	w.last, w.at, w.suppressed = msg, now, 0
	return n, true
}

// granter remembers the rules last applied, to skip identical updates.
type granter struct {
	dyn     dynamic.Interface
	logger  *slog.Logger
	applied string
	synced  bool // a list (and apply) succeeded since the last failure
}

// syncAndWatch lists the CRDs, applies the rules and watches for the next
// change; CRDs are few, so every change is followed by a fresh list.
func (g *granter) syncAndWatch(ctx context.Context) error {
	for {
		list, err := g.dyn.Resource(crdResource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list CRDs: %w", err)
		}
		crds := make([]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			crds[i] = &list.Items[i]
		}
		rules := CustomResourceRules(crds)
		if key := fmt.Sprint(rules); key != g.applied {
			if err := applyCustomResourceRole(ctx, g.dyn, rules); err != nil {
				return err
			}
			g.applied = key
			g.logger.Debug("granted custom resources", "rules", len(rules))
		}
		g.synced = true
		w, err := g.dyn.Resource(crdResource).Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			return fmt.Errorf("watch CRDs: %w", err)
		}
		ev, ok := <-w.ResultChan()
		w.Stop()
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			continue // the server ended the watch: list again
		}
		if ev.Type == watch.Error {
			return fmt.Errorf("watch CRDs: %v", ev.Object)
		}
	}
}
