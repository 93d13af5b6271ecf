//go:build tools

// Package coredns pins the CoreDNS release that the local backend's nodes
// run as their cluster DNS, as k3s packages it. It is its own module so that
// the main go.mod carries none of its dependencies.
package coredns

import _ "github.com/coredns/coredns"
