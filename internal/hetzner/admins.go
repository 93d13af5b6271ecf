package hetzner

import (
	"crypto/sha256"
	"net/http"
	"sync"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/kube"
)

// admins keeps one admin client per member, so that its claim, credentials,
// revocation and health checks share one open HTTP/2 connection to the
// member's API instead of paying a TCP and a TLS handshake (two round trips
// to a real server) before each request.
//
// client-go shares a transport between clientsets with the same TLS
// options, but since v1.36 only while a clientset still holds it
// (ClientsAllowTLSCacheGC, kubernetes/kubernetes#136355): a client made per
// call finds the connection open only when no garbage collection ran in
// between. Holding the client here makes that certain.
//
// The connection stays open only while it is used: kube-apiserver closes
// a connection idle for 90 s (http.Server and http2.Server IdleTimeout in
// k8s.io/apiserver's secure serving), and client-go's transport drops its
// own idle ones after as long (IdleConnTimeout, from http.DefaultTransport).
// The pool's health round asks every member's /readyz every 30 s: that is
// what keeps a ready member's connection open for its claim.
//
// There is at most one entry per member id; Destroy, Release and Stop drop
// it, so the map is bounded by the members alive.
type admins struct {
	mu sync.Mutex // guards byMember
	// byMember holds each member's client with the key it was made for.
	byMember map[string]adminEntry
}

// adminKey is what an admin client was made from. A rebuild seals a new
// credential under a new CA, and a fake machine listens on a new port at
// every boot: a client is used only for the same address, sealed
// credential and pinned CA.
type adminKey struct {
	server string
	sealed [sha256.Size]byte
	ca     [sha256.Size]byte
}

type adminEntry struct {
	key    adminKey
	admin  *kube.Admin
	client *http.Client // the clientset's, to close its idle connections
}

func keyOf(d data) adminKey {
	return adminKey{server: d.APIServer, sealed: sha256.Sum256(d.Admin), ca: sha256.Sum256(d.CA)}
}

// get returns the member's client made for key, or nil.
func (c *admins) get(id string, key adminKey) *kube.Admin {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byMember[id]; ok && e.key == key {
		return e.admin
	}
	return nil
}

// put keeps a for the member and key, replacing a client made for another
// key, and returns the member's client for key: a, or the one a concurrent
// put kept first.
func (c *admins) put(id string, key adminKey, a *kube.Admin) *kube.Admin {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byMember[id]; ok {
		if e.key == key {
			return e.admin
		}
		closeIdle(e.client)
	}
	if c.byMember == nil {
		c.byMember = map[string]adminEntry{}
	}
	c.byMember[id] = adminEntry{key: key, admin: a, client: httpClientOf(a)}
	return a
}

// drop forgets the member's client and closes its idle connections: the
// server they reach is being stopped, rebuilt or deleted.
func (c *admins) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byMember[id]; ok {
		closeIdle(e.client)
		delete(c.byMember, id)
	}
}

// httpClientOf returns the HTTP client under a's clientset (all its API
// groups share it), or nil when client-go made it otherwise.
func httpClientOf(a *kube.Admin) *http.Client {
	rc, ok := a.Clientset().CoreV1().RESTClient().(*rest.RESTClient)
	if !ok {
		return nil
	}
	return rc.Client
}

// closeIdle closes hc's idle connections through client-go's wrappers
// around its transport. Another client with the same TLS options shares
// that transport: it only loses its idle connections, and dials again.
func closeIdle(hc *http.Client) {
	if hc != nil {
		utilnet.CloseIdleConnectionsFor(hc.Transport)
	}
}
