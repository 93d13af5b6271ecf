package hetzner

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/latency"
)

// kubeAPI is a TLS server that answers the requests of a claim, a
// credential and a health check the way kube-apiserver does, and counts
// the connections made to it.
type kubeAPI struct {
	*httptest.Server
	conns atomic.Int64 // connections accepted
	ca    []byte       // the server's certificate (PEM), the client's CA
}

func newKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	k := &kubeAPI{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /api/v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[]}`)
	})
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/configmaps", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"smek-ownership"}}`)
	})
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00Z"}}`)
	})
	k.Server = httptest.NewUnstartedServer(mux)
	k.EnableHTTP2 = true
	k.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			k.conns.Add(1)
		}
	}
	k.StartTLS()
	t.Cleanup(k.Close)
	k.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate().Raw})
	return k
}

// addr is the server's host:port.
func (k *kubeAPI) addr() string { return k.Listener.Addr().String() }

// adminFixture is a backend whose member 42 has its API at addr (which a
// test may change, as a boot of the fake's machines does).
type adminFixture struct {
	be   *Backend
	api  *kubeAPI
	addr atomic.Value // string
	m    cluster.Member
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	w := newWorld(t, worldOptions{})
	f := &adminFixture{be: w.backend(http.DefaultTransport), api: newKubeAPI(t)}
	f.addr.Store(f.api.addr())
	f.be.cfg.APIAddr = func(context.Context, *hcloud.Server) (string, error) { return f.addr.Load().(string), nil }
	f.m = cluster.Member{ID: "s-admin", Flavor: flavor, State: cluster.MemberReady}
	f.rebuild(t)
	return f
}

// rebuild seals a new admin credential for the member, as a rebuild does.
func (f *adminFixture) rebuild(t *testing.T) {
	t.Helper()
	cred := adminCredential{CA: f.api.ca}
	cred.Cert, cred.Key = clientCertificate(t)
	doc, err := cred.kubeconfig("https://" + f.api.addr())
	if err != nil {
		t.Fatal(err)
	}
	d := data{ServerID: 4242, Name: "smek-test-s-admin", IP: "127.0.0.1", CA: f.api.ca, Admin: f.be.seal.seal(doc, f.m.ID)}
	f.m.Data = d.marshal()
}

// clientCertificate returns a self-signed client certificate and its key
// (PEM): the test server asks for none, the credential must hold one.
func clientCertificate(t *testing.T) (cert, key []byte) {
	return selfSigned(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "system:admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// TestAdminCallsShareOneConnection makes a member's health checks, claim
// and credential share one connection. A garbage collection runs between
// the calls, as it does between a member's health round and its claim:
// client-go's own transport cache keeps a transport only while a client
// holds it.
func TestAdminCallsShareOneConnection(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	c := cluster.Cluster{ID: cluster.NewID(), Account: "acme", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	calls := []struct {
		name string
		call func() error
	}{
		{"healthy", func() error { return f.be.Healthy(ctx, f.m) }},
		{"claim", func() error { _, err := f.be.Claim(ctx, f.m, c); return err }},
		{"credential", func() error { _, err := f.be.Credential(ctx, f.m, c); return err }},
		{"healthy again", func() error { return f.be.Healthy(ctx, f.m) }},
	}
	for _, call := range calls {
		runtime.GC()
		if err := call.call(); err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
	}
	if got := f.api.conns.Load(); got != 1 {
		t.Errorf("connections to the member's API: got %d, want 1", got)
	}
}

// TestAdminClientFollowsTheMember gives a member a new client when its API
// moves or its credential is sealed anew, and none after Destroy.
func TestAdminClientFollowsTheMember(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	admin := func() any {
		t.Helper()
		a, err := f.be.admin(ctx, f.m)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.be.Healthy(ctx, f.m); err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := admin()
	if again := admin(); again != first {
		t.Errorf("a second call made a new client, want the member's kept one")
	}

	// The fake's machines listen on a new port after a boot.
	p, err := latency.Listen(f.api.addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f.addr.Store(p.Addr())
	moved := admin()
	if moved == first {
		t.Errorf("the API moved from %s to %s and the client for the old address was used", f.api.addr(), p.Addr())
	}

	f.rebuild(t)
	rebuilt := admin()
	if rebuilt == moved {
		t.Errorf("a newly sealed credential used the client made from the old one")
	}
	if again := admin(); again != rebuilt {
		t.Errorf("a call after the rebuild made a new client, want the one made for the new credential")
	}

	if err := f.be.Destroy(ctx, f.m); err != nil {
		t.Fatal(err)
	}
	d, _ := parseData(f.m.Data)
	d.APIServer = "https://" + p.Addr()
	if a := f.be.admins.get(f.m.ID, keyOf(d)); a != nil {
		t.Errorf("the client of member %s outlived its Destroy", f.m.ID)
	}
}
