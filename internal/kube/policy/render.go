package policy

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/template"
)

//go:embed manifests/*.yaml
var manifestFS embed.FS

// templates are parsed once; the embedded files cannot change.
var templates = template.Must(template.New("bundle").Option("missingkey=error").ParseFS(manifestFS, "manifests/*.yaml"))

// renderData fills the manifest templates.
type renderData struct {
	Options
	Namespace            string
	TenantServiceAccount string
	NodeLabel            string
	ManagedBy            string
	AllVerbs             string
	ProtectedNamespaces  string
	TenantExpression     string
	Enforce              string
	AllowedLevels        string
	AllowedLevelsText    string
	ReservedGroups       string
	Policies             []string

	ProtectedNamespacesCEL string
	ExemptionCondition     string
	ExemptionCheck         string
	ExemptionApply         string
	ForbiddenHost          string
	GuardedRoles           string
	TenantRole             string
	CustomResourcesRole    string
	AllVerbsCEL            string
	TrustedUsers           string
}

// managedByLabel marks every object of the bundle; smek-cluster-rbac keeps
// the tenant from changing the ClusterRoles and bindings that carry it.
const managedByLabel = "app.kubernetes.io/managed-by: smek"

// allVerbs are the verbs of a resource the tenant fully controls. No
// escalate, bind, impersonate or approve.
var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

// Manifests returns the bundle rendered for o as multi-document YAML, in the
// order it must be applied (namespace first, policy bindings after their
// policies). k3s can deploy it unchanged from its manifests directory.
func Manifests(o Options) ([]byte, error) {
	levels := o.allowedLevels()
	data := renderData{
		Options:              o,
		Namespace:            Namespace,
		TenantServiceAccount: TenantServiceAccount,
		NodeLabel:            NodeLabel,
		ManagedBy:            managedByLabel,
		AllVerbs:             strings.Join(allVerbs, ", "),
		ProtectedNamespaces:  strings.Join(ProtectedNamespaces, ", "),
		TenantExpression:     yamlString(TenantExpression()),
		Enforce:              o.enforceLevel(),
		AllowedLevels:        celList(levels),
		AllowedLevelsText:    strings.Join(levels, " or "),
		ReservedGroups:       celList(reservedGroups),
		Policies:             policyNames,

		ProtectedNamespacesCEL: celList(ProtectedNamespaces),
		ExemptionCondition:     ExemptionCondition,
		ExemptionCheck:         yamlString(exemptionCheck()),
		ExemptionApply:         yamlString(exemptionApply()),
		ForbiddenHost:          forbiddenHost,
		GuardedRoles:           celList(guardedRoles),
		TenantRole:             TenantClusterRole,
		CustomResourcesRole:    CustomResourcesClusterRole,
		AllVerbsCEL:            celList(allVerbs),
		TrustedUsers:           celList(trustedUsers),
	}
	names, err := fs.Glob(manifestFS, "manifests/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, name := range names {
		var doc bytes.Buffer
		base := name[strings.LastIndex(name, "/")+1:]
		if err := templates.ExecuteTemplate(&doc, base, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", base, err)
		}
		if !hasObject(doc.Bytes()) {
			continue
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(bytes.TrimLeft(doc.Bytes(), "\n"))
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// hasObject reports whether a rendered file holds more than comments and
// blank lines (an option may render a file empty).
func hasObject(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return true
		}
	}
	return false
}
