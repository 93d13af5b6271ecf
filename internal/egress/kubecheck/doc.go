// Package kubecheck proves internal/egress against the client that will
// use it: kube-apiserver's own egress selector (k8s.io/apiserver
// pkg/server/egressselector), reading the configuration SelectorConfig
// renders and dialing through the proxy. It is a module of its own so that
// the main module does not depend on k8s.io/apiserver; run it with
//
//	cd internal/egress/kubecheck && go test .
package kubecheck
