// Package packaged holds k3s's packaged components that SMEK's clusters
// carry on every backend: the hetzner backend's k3s applies them itself
// (and the simulated k3s node of the tests as k3s does), the local backend
// applies them to its kubelet nodes.
package packaged

import (
	_ "embed"
	"strings"
)

// localStorage is k3s's packaged local-storage component: the
// local-path-provisioner, its configuration and the default StorageClass
// local-path.
//
//go:embed local-storage.yaml
var localStorage string

// LocalStoragePath is where k3s keeps local-path volumes (its
// default-local-storage-path).
const LocalStoragePath = "/var/lib/rancher/k3s/storage"

// Images of the local-storage component.
const (
	LocalPathProvisionerImage = "docker.io/rancher/local-path-provisioner:v0.0.30"
	LocalPathHelperImage      = "docker.io/rancher/mirrored-library-busybox:1.36.1"
)

// LocalStorage is the local-storage manifest as k3s writes it, with
// volumes under path and images from registry (a prefix ending in "/",
// empty for the images' own registries).
func LocalStorage(path, registry string) string {
	return strings.NewReplacer("%{DEFAULT_LOCAL_STORAGE_PATH}%", path, "%{SYSTEM_DEFAULT_REGISTRY}%", registry).Replace(localStorage)
}
