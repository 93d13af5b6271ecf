package kube

import (
	"context"
	"fmt"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tenantUser is the user name kube-apiserver gives the tenant's tokens;
// tenantGroups are the groups they carry.
var (
	tenantUser   = "system:serviceaccount:" + SystemNamespace + ":" + TenantServiceAccount
	tenantGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + SystemNamespace, "system:authenticated"}
)

// TenantClusterRoleBinding is the binding of the policy bundle that gives
// the tenant its rights (kube/policy's 10-tenant-rbac.yaml).
const TenantClusterRoleBinding = "smek-tenant"

// Revoke takes the tenant's access away for good, before the cluster is
// wiped. kube-apiserver caches a successful token authentication for 10 s
// (TokenSuccessCacheTTL), so deleting the tenant's ServiceAccount alone
// would leave its tokens working for up to that long; authorization is
// not cached. So Revoke deletes every RoleBinding and ClusterRoleBinding
// that grants anything to the tenant (its ServiceAccount, its user name,
// or a group its tokens carry: SMEK's own bindings, those the tenant
// made, and the defaults for system:authenticated), SMEK's own binding
// last, then the ServiceAccount, and returns once kube-apiserver's
// authorizer denies the tenant what SMEK's binding gave it — the sign
// that it has seen all the deletions, which reach it in order.
func (a *Admin) Revoke(ctx context.Context) error {
	rbs, err := a.cs.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list role bindings: %w", err)
	}
	for _, rb := range rbs.Items {
		if !grantsTenant(rb.Subjects) {
			continue
		}
		if err := a.cs.RbacV1().RoleBindings(rb.Namespace).Delete(ctx, rb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete role binding %s/%s: %w", rb.Namespace, rb.Name, err)
		}
	}
	crbs, err := a.cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list cluster role bindings: %w", err)
	}
	var names []string
	for _, crb := range crbs.Items {
		if grantsTenant(crb.Subjects) && crb.Name != TenantClusterRoleBinding {
			names = append(names, crb.Name)
		}
	}
	names = append(names, TenantClusterRoleBinding)
	for _, name := range names {
		if err := a.cs.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete cluster role binding %s: %w", name, err)
		}
	}
	if err := a.cs.CoreV1().ServiceAccounts(SystemNamespace).Delete(ctx, TenantServiceAccount, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete tenant service account: %w", err)
	}
	return a.waitDenied(ctx)
}

// grantsTenant reports whether a binding's subjects include the tenant.
func grantsTenant(subjects []rbacv1.Subject) bool {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Namespace == SystemNamespace && s.Name == TenantServiceAccount {
				return true
			}
		case rbacv1.UserKind:
			if s.Name == tenantUser {
				return true
			}
		case rbacv1.GroupKind:
			if slices.Contains(tenantGroups, s.Name) {
				return true
			}
		}
	}
	return false
}

// waitDenied asks kube-apiserver's authorizer (a SubjectAccessReview)
// until it refuses the tenant a request SMEK's binding allowed: listing
// ConfigMaps in the default namespace.
func (a *Admin) waitDenied(ctx context.Context) error {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: tenantUser, Groups: tenantGroups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "configmaps"},
	}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := a.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check the tenant's access: %w", err)
		}
		if !got.Status.Allowed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tenant may still list configmaps after its bindings were deleted: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
