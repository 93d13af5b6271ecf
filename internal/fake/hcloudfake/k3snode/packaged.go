package k3snode

import (
	"os"

	"github.com/smek/action/internal/kube/packaged"
)

// Where k3s keeps local-path volumes (its default-local-storage-path).
const localStoragePath = packaged.LocalStoragePath

// writePackaged does what k3s does with its packaged components at every
// start: it (re)writes their manifests into the manifests folder, where
// the deploy controller finds them, and deletes those of disabled
// components.
func writePackaged(n *Node, cfg k3sConfig) error {
	const name = ManifestsDir + "/local-storage.yaml"
	if contains(cfg.Disable, "local-storage") {
		full, _ := n.path(name)
		if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	doc := packaged.LocalStorage(localStoragePath, "")
	return n.writeFile(name, []byte(doc), 0o600)
}
