package egress

import (
	"encoding/json"
	"fmt"
)

// SelectorConfig returns the EgressSelectorConfiguration that sends a
// kube-apiserver's connections on the tenant's behalf through the proxy
// listening on the unix socket socketPath (an absolute path; see
// ListenUnix), for --egress-selector-config-file.
//
// "cluster" carries webhooks named by a Service, the pods, services and
// nodes proxy subresources and the kubelet; "controlplane" carries webhooks
// named by URL (and authentication, authorization and audit webhooks, which
// SMEK does not configure). "etcd" stays direct: the control plane's own
// etcd is on loopback.
//
// The transport is a unix socket because it is the only one kube-apiserver
// speaks plain HTTP CONNECT over: over TCP it always dials TLS with a client
// certificate, and an http:// URL, which its validation accepts, makes it
// dereference a nil TLS config at startup.
func SelectorConfig(socketPath string) []byte {
	// A JSON string is a valid YAML double-quoted scalar, whatever the path holds.
	name, _ := json.Marshal(socketPath)
	return fmt.Appendf(nil, `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %[1]s
- name: controlplane
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %[1]s
- name: etcd
  connection:
    proxyProtocol: Direct
`, name)
}
