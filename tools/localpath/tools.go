//go:build tools

// Package localpath pins rancher/local-path-provisioner, the dynamic
// provisioner k3s ships as its local-storage component, so that `make
// kube-bin` can build it from the Go module proxy for the simulated k3s
// node (internal/fake/hcloudfake/k3snode). It is a module of its own: its Kubernetes
// client libraries must not meet tools/kube's replaced k8s.io modules.
package localpath

import _ "github.com/rancher/local-path-provisioner"
