package kubecheck

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/egress"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/server/egressselector"
)

// startProxy serves a proxy that allows 127.0.0.1 only, on a unix socket,
// and returns the egress selector kube-apiserver would build from
// SelectorConfig, read from a file as --egress-selector-config-file is.
func startProxy(t *testing.T) (*egress.Proxy, *egressselector.EgressSelector) {
	t.Helper()
	p, err := egress.New(egress.Config{
		Allow:         []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		HostAddresses: func() ([]netip.Addr, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kubecheck") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "egress.sock")
	l, err := egress.ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; !errors.Is(err, egress.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})

	file := filepath.Join(dir, "egress-selector.yaml")
	if err := os.WriteFile(file, egress.SelectorConfig(socket), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := egressselector.ReadEgressSelectorConfiguration(file)
	if err != nil {
		t.Fatal(err)
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		t.Fatalf("kube-apiserver refuses the configuration: %v", errs.ToAggregate())
	}
	es, err := egressselector.NewEgressSelector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, es
}

// TestEgressSelectorThroughProxy calls an HTTPS server the way
// kube-apiserver calls a webhook: through the dialer of the "cluster" or
// "controlplane" egress selection.
func TestEgressSelectorThroughProxy(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admitted")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the bare etcd dial below
	srv.StartTLS()
	defer srv.Close()
	srvAddr := strings.TrimPrefix(srv.URL, "https://")
	p, es := startProxy(t)

	for _, et := range []egressselector.EgressType{egressselector.Cluster, egressselector.ControlPlane} {
		t.Run(et.String(), func(t *testing.T) {
			dial, err := es.Lookup(et.AsNetworkContext())
			if err != nil || dial == nil {
				t.Fatalf("no dialer for %s: %v", et, err)
			}
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.DialContext = dial
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr}).Get(srv.URL)
			if err != nil {
				t.Fatalf("GET through the proxy: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(body) != "admitted" {
				t.Errorf("got %q, want admitted", body)
			}

			_, port, _ := net.SplitHostPort(srvAddr)
			for _, denied := range []string{"10.0.0.1:443", "[::1]:" + port, "[::ffff:127.0.0.2]:" + port, "169.254.169.254:80"} {
				c, err := dial(context.Background(), "tcp", denied)
				if err == nil {
					c.Close()
					t.Errorf("dial %s through the proxy succeeded", denied)
					continue
				}
				if !strings.Contains(err.Error(), "code 403") {
					t.Errorf("dial %s: %v, want the proxy's 403", denied, err)
				}
			}
		})
	}
	if got := p.Stats(); got.Allowed != 2 || got.Denied != 8 {
		t.Errorf("stats %+v, want 2 allowed and 8 denied", got)
	}

	// etcd stays direct: the control plane's etcd is on loopback.
	dial, err := es.Lookup(egressselector.Etcd.AsNetworkContext())
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(context.Background(), "tcp", srvAddr)
	if err != nil {
		t.Fatalf("direct dial for etcd: %v", err)
	}
	c.Close()
	if got := p.Stats(); got.Allowed+got.Denied+got.Rejected != 10 {
		t.Errorf("stats %+v: the etcd dial went through the proxy", got)
	}
}

// TestPlainTCPTransportCrashes documents why SelectorConfig uses a unix
// socket: an http:// proxy URL over TCP passes kube-apiserver's validation
// (egressselector/config.go, validateTCPConnection), but building the
// dialer dereferences the absent TLS config (egress_selector.go,
// connectionToDialerCreator calls getTLSConfig(nil)). Should this test
// fail, a newer k8s.io/apiserver has fixed that and plain TCP became an
// option.
func TestPlainTCPTransportCrashes(t *testing.T) {
	cfg := &apiserver.EgressSelectorConfiguration{
		EgressSelections: []apiserver.EgressSelection{{
			Name: "cluster",
			Connection: apiserver.Connection{
				ProxyProtocol: apiserver.ProtocolHTTPConnect,
				Transport:     &apiserver.Transport{TCP: &apiserver.TCPTransport{URL: "http://127.0.0.1:8131"}},
			},
		}},
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		t.Fatalf("validation refuses http:// over TCP: %v", errs.ToAggregate())
	}
	defer func() {
		if recover() == nil {
			t.Error("NewEgressSelector accepted http:// over TCP without TLS: plain TCP now works")
		}
	}()
	egressselector.NewEgressSelector(cfg)
}
