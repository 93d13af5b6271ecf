package k3snode

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podFS is a container's view of files: its volume mounts, hostPath
// volumes on the node's disk, ConfigMap volumes read from the API, and
// everything else in a scratch root of the pod's own.
type podFS struct {
	kl *kubelet
	p  *corev1.Pod
	c  corev1.Container
}

// mount finds the volume mount that holds the container path cpath and
// the path inside the volume.
func (fs *podFS) mount(cpath string) (*corev1.Volume, string, bool) {
	clean := path.Clean("/" + cpath)
	best := -1
	for i, vm := range fs.c.VolumeMounts {
		mp := path.Clean("/" + vm.MountPath)
		if (clean == mp || strings.HasPrefix(clean, strings.TrimSuffix(mp, "/")+"/")) && (best < 0 || len(mp) > len(path.Clean(fs.c.VolumeMounts[best].MountPath))) {
			best = i
		}
	}
	if best < 0 {
		return nil, "", false
	}
	vm := fs.c.VolumeMounts[best]
	rest := strings.TrimPrefix(strings.TrimPrefix(clean, path.Clean("/"+vm.MountPath)), "/")
	if vm.SubPath != "" {
		rest = path.Join(vm.SubPath, rest)
	}
	for i := range fs.p.Spec.Volumes {
		if fs.p.Spec.Volumes[i].Name == vm.Name {
			return &fs.p.Spec.Volumes[i], rest, true
		}
	}
	return nil, "", false
}

func (fs *podFS) fromConfigMap(cpath string) bool {
	v, _, ok := fs.mount(cpath)
	return ok && v.ConfigMap != nil
}

// configMapFiles returns the files of a ConfigMap volume, by path.
func (fs *podFS) configMapFiles(v *corev1.Volume) (map[string][]byte, error) {
	cm, err := fs.kl.cs.CoreV1().ConfigMaps(fs.p.Namespace).Get(context.Background(), v.ConfigMap.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	if len(v.ConfigMap.Items) == 0 {
		for k, d := range cm.Data {
			files[k] = []byte(d)
		}
		return files, nil
	}
	for _, it := range v.ConfigMap.Items {
		d, ok := cm.Data[it.Key]
		if !ok {
			return nil, fmt.Errorf("configmap %s has no key %s", cm.Name, it.Key)
		}
		files[it.Path] = []byte(d)
	}
	return files, nil
}

// read reads a file as the container sees it.
func (fs *podFS) read(cpath string) ([]byte, error) {
	v, rest, ok := fs.mount(cpath)
	if ok && v.ConfigMap != nil {
		files, err := fs.configMapFiles(v)
		if err != nil {
			return nil, err
		}
		b, ok := files[rest]
		if !ok {
			return nil, os.ErrNotExist
		}
		return b, nil
	}
	full, err := fs.hostPath(cpath)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(full)
}

// hostPath maps a container path to a writable path on the node's disk:
// inside a hostPath volume, the node's own file; elsewhere, the pod's
// scratch root. ConfigMap volumes are read-only.
func (fs *podFS) hostPath(cpath string) (string, error) {
	v, rest, ok := fs.mount(cpath)
	switch {
	case ok && v.HostPath != nil:
		return fs.kl.n.path(path.Join(v.HostPath.Path, rest))
	case ok && v.ConfigMap != nil:
		return "", fmt.Errorf("%s: Read-only file system", cpath)
	case ok && v.EmptyDir != nil:
		return fs.kl.n.path(path.Join("/var/lib/kubelet/pods", string(fs.p.UID), "volumes/kubernetes.io~empty-dir", v.Name, rest))
	case ok:
		return "", fmt.Errorf("%s: volume %s is not simulated", cpath, v.Name)
	}
	return fs.kl.n.path(path.Join("/var/lib/kubelet/pods", string(fs.p.UID), "rootfs", path.Clean("/"+cpath)))
}

// prepareHostPaths does the kubelet's hostPath checks for the volumes
// the container mounts: DirectoryOrCreate makes the folder, Directory
// needs it.
func (fs *podFS) prepareHostPaths() error {
	for _, vm := range fs.c.VolumeMounts {
		for _, v := range fs.p.Spec.Volumes {
			if v.Name != vm.Name || v.HostPath == nil {
				continue
			}
			full, err := fs.kl.n.path(v.HostPath.Path)
			if err != nil {
				return err
			}
			t := corev1.HostPathUnset
			if v.HostPath.Type != nil {
				t = *v.HostPath.Type
			}
			switch t {
			case corev1.HostPathDirectoryOrCreate:
				if err := os.MkdirAll(full, 0o755); err != nil {
					return err
				}
			case corev1.HostPathDirectory:
				if fi, err := os.Stat(full); err != nil || !fi.IsDir() {
					return fmt.Errorf("hostPath type check failed: %s is not a directory", v.HostPath.Path)
				}
			}
		}
	}
	return nil
}

// materialize writes the ConfigMap volume that holds container path arg
// into dir and returns arg's path there; ok is false for a path outside
// ConfigMap volumes.
func (fs *podFS) materialize(arg, dir string) (string, bool, error) {
	if !strings.HasPrefix(arg, "/") {
		return "", false, nil
	}
	v, rest, ok := fs.mount(arg)
	if !ok || v.ConfigMap == nil {
		return "", false, nil
	}
	files, err := fs.configMapFiles(v)
	if err != nil {
		return "", false, err
	}
	root := filepath.Join(dir, "volumes", "kubernetes.io~configmap", v.Name)
	for p, b := range files {
		full := filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", false, err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return "", false, err
		}
	}
	return filepath.Join(root, filepath.FromSlash(rest)), true, nil
}
