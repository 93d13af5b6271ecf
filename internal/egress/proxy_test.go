package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// connectLikeKubeAPIServer opens a tunnel to addr through the proxy on
// socket exactly as kube-apiserver's egress selector does
// (k8s.io/apiserver@v0.36.3 pkg/server/egressselector/egress_selector.go,
// udsHTTPConnectConnector.connect and tunnelHTTPConnect): one connection
// per tunnel, a CONNECT line with Host 127.0.0.1, the answer read with
// http.ReadResponse, anything but 200 an error, and no byte of the
// destination's allowed before the client has spoken.
func connectLikeKubeAPIServer(t *testing.T, socket, addr string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, "127.0.0.1")
	br := bufio.NewReader(io.LimitReader(c, http.DefaultMaxHeaderBytes))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the answer to CONNECT %s: %v", addr, err)
	}
	if res.StatusCode == http.StatusOK && br.Buffered() > 0 {
		t.Fatalf("CONNECT %s: %d bytes after the answer, which kube-apiserver refuses", addr, br.Buffered())
	}
	return c, res
}

// rawExchange sends req on a new connection to socket and returns all the
// proxy answers until it closes the connection.
func rawExchange(t *testing.T, socket, req string) string {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	// A proxy that closes with some of the request unread (a huge header)
	// makes the kernel report a reset after its answer.
	got, err := io.ReadAll(c)
	if err != nil && len(got) == 0 {
		t.Fatal(err)
	}
	return string(got)
}

// testProxy is a proxy serving on a unix socket, and what it did.
type testProxy struct {
	*Proxy
	socket string
	// handled receives a value each time a connection's handler returns.
	handled chan struct{}
}

// startProxy serves a proxy made from cfg on a fresh unix socket. The
// host's own addresses are none unless cfg says otherwise.
func startProxy(t *testing.T, cfg Config) *testProxy {
	t.Helper()
	if cfg.HostAddresses == nil {
		cfg.HostAddresses = func() ([]netip.Addr, error) { return nil, nil }
	}
	if cfg.Resolver == nil {
		cfg.Resolver = fakeResolver{}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testProxy{Proxy: p, handled: make(chan struct{}, 100)}
	p.handled = func() { tp.handled <- struct{}{} }
	tp.socket = serveUnix(t, p)
	t.Cleanup(func() {
		p.Close()
		if n := settleGoroutines(0); n != 0 {
			t.Errorf("%d goroutines of the proxy are left after Close", n)
		}
	})
	return tp
}

// serveUnix serves p on a new unix socket and returns its path. The path
// is short: a socket path is limited to 108 bytes.
func serveUnix(t *testing.T, p *Proxy) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "egress")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "egress.sock")
	l, err := ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return socket
}

// waitHandled waits until n more connections have been handled completely.
func (tp *testProxy) waitHandled(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-tp.handled:
		case <-time.After(10 * time.Second):
			t.Fatal("a connection is still being handled after 10 s")
		}
	}
}

// settleGoroutines counts the goroutines running the proxy's Serve loops,
// handlers and copies, until there are want of them or it gave up: those
// that are ending return right after the handled hook or Close, so a few
// yields are all they need.
func settleGoroutines(want int) int {
	var n int
	for range 1000 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		n = 0
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "egress.(*Proxy).handle") || strings.Contains(g, "egress.pipe") ||
				strings.Contains(g, "egress.splice") || strings.Contains(g, "egress.(*Proxy).Serve") {
				n++
			}
		}
		if n == want {
			return n
		}
		runtime.Gosched()
	}
	return n
}

// fakeResolver is a DNS that knows only its names.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	if network != "ip" {
		return nil, fmt.Errorf("lookup %s: network %q", host, network)
	}
	if as, ok := r[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// echoServer echoes on 127.0.0.1 and counts the connections it accepts.
type echoServer struct {
	addr    string
	accepts atomic.Int64
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			e.accepts.Add(1)
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			})
		}
	})
	return e
}

// dialer routes the proxy's dials: an address in routes is dialed at the
// address it maps to, any other fails. It records every address asked for.
type dialer struct {
	routes map[string]string
	mu     sync.Mutex
	asked  []string
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, addr)
	d.mu.Unlock()
	if to, ok := d.routes[addr]; ok {
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}
	return nil, fmt.Errorf("dial %s %s: connection refused", network, addr)
}

func (d *dialer) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// echo writes msg into c and wants it back; it writes while it reads, so
// that a message larger than the sockets' buffers does not deadlock.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, msg)
		werr <- err
	}()
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("got %d bytes back, which differ from the %d sent", len(got), len(msg))
	}
}

func TestTunnelToAllowedDestination(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, Config{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		// Only a half-close passed on can end this tunnel in time.
		HalfCloseTimeout: time.Hour,
	})

	c, res := connectLikeKubeAPIServer(t, p.socket, e.addr)
	if res.StatusCode != http.StatusOK || res.Status != "200 Connection established" {
		t.Fatalf("got %q, want 200 Connection established", res.Status)
	}
	echo(t, c, "hello")
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, both ways at once
	echo(t, c, big)
	if got := p.Stats(); got.Active != 1 || got.Allowed != 1 {
		t.Errorf("stats %+v, want 1 allowed and active", got)
	}

	// Half-close: the echo server sees EOF, answers what is left and closes.
	io.WriteString(c, "last words")
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after half-close got %q, %v; want %q, EOF", rest, err, "last words")
	}
	p.waitHandled(t, 1)
	if n := settleGoroutines(1); n != 1 { // the Serve loop
		t.Errorf("%d goroutines of the proxy after the tunnel ended, want 1 (Serve)", n)
	}
	if got, want := p.Stats(), (Stats{Allowed: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if n := e.accepts.Load(); n != 1 {
		t.Errorf("echo server accepted %d connections, want 1", n)
	}
}

func TestDeniedDestinationIsNeverDialed(t *testing.T) {
	e := startEcho(t)
	_, port, _ := net.SplitHostPort(e.addr)
	d := &dialer{}
	p := startProxy(t, Config{
		Dial: d.dial,
		HostAddresses: func() ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("203.0.114.7"), netip.MustParseAddr("2a01:4f8::42")}, nil
		},
		Resolver: fakeResolver{
			"localhost":        {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
			"evil.example":     {netip.MustParseAddr("127.0.0.1")},
			"mapped.example":   {netip.MustParseAddr("::ffff:127.0.0.1")},
			"metadata.example": {netip.MustParseAddr("169.254.169.254")},
			"lan.example":      {netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00::10")},
			"self.example":     {netip.MustParseAddr("203.0.114.7")},
		},
	})
	// A port that is open and a port that is closed get the same answer.
	want := rawExchange(t, p.socket, "CONNECT 127.0.0.1:"+port+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if !strings.HasPrefix(want, "HTTP/1.1 403 Forbidden\r\n") {
		t.Fatalf("got %q, want 403", want)
	}
	targets := []string{
		"127.0.0.1:1",
		"127.0.0.53:53",
		"[::1]:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"[::ffff:7f00:1]:" + port,
		"0.0.0.0:" + port,
		"[::]:" + port,
		"169.254.169.254:80",
		"[fe80::1]:80",
		"10.0.0.1:443",
		"172.16.0.1:443",
		"192.168.1.1:443",
		"100.64.0.1:443",
		"[fc00::1]:443",
		"224.0.0.1:443",
		"[ff02::1]:443",
		"203.0.114.7:22",    // the host's own public address
		"[2a01:4f8::42]:22", // and its IPv6 one
		"[64:ff9b::7f00:1]:" + port,
		"localhost:" + port,
		"evil.example:" + port,
		"mapped.example:" + port,
		"metadata.example:80",
		"lan.example:445",
		"self.example:22",
		"nxdomain.example:443", // unknown names too: no hint which names exist
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			got := rawExchange(t, p.socket, "CONNECT "+target+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			if got != want {
				t.Errorf("got %q, want the same answer as for every denied destination, %q", got, want)
			}
			_, res := connectLikeKubeAPIServer(t, p.socket, target)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("got %s, want 403", res.Status)
			}
		})
	}
	p.waitHandled(t, 1+2*len(targets))
	if n := e.accepts.Load(); n != 0 {
		t.Errorf("the target accepted %d connections, want none", n)
	}
	if got := d.dialed(); len(got) != 0 {
		t.Errorf("the proxy dialed %v, want nothing", got)
	}
	if got, want := p.Stats(), (Stats{Denied: int64(1 + 2*len(targets))}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestNameDialsOnlyAllowedAddresses(t *testing.T) {
	e := startEcho(t)
	d := &dialer{routes: map[string]string{
		"8.8.8.8:443": e.addr,
		"1.1.1.1:443": e.addr,
	}}
	p := startProxy(t, Config{
		Dial: d.dial,
		Resolver: fakeResolver{
			"mixed.example":    {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::ffff:8.8.8.8")},
			"fallback.example": {netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("1.1.1.1")},
			"dead.example":     {netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("2620:fe::fe")},
		},
	})
	tests := []struct {
		target string
		status int
		dialed []string
	}{
		{"mixed.example:443", http.StatusOK, []string{"8.8.8.8:443"}},
		{"fallback.example:443", http.StatusOK, []string{"9.9.9.9:443", "1.1.1.1:443"}},
		{"dead.example:443", http.StatusBadGateway, []string{"9.9.9.9:443", "[2620:fe::fe]:443"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			before := len(d.dialed())
			c, res := connectLikeKubeAPIServer(t, p.socket, tt.target)
			if res.StatusCode != tt.status {
				t.Fatalf("got %s, want %d", res.Status, tt.status)
			}
			if got := d.dialed()[before:]; !equal(got, tt.dialed) {
				t.Errorf("dialed %v, want %v", got, tt.dialed)
			}
			if tt.status == http.StatusOK {
				echo(t, c, "through "+tt.target)
			}
			c.Close()
			p.waitHandled(t, 1)
		})
	}
	if got, want := p.Stats(), (Stats{Allowed: 2, Failed: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestMalformedRequests(t *testing.T) {
	d := &dialer{}
	p := startProxy(t, Config{Dial: d.dial, Resolver: fakeResolver{"example.com": {netip.MustParseAddr("8.8.8.8")}}})
	tests := []struct {
		name   string
		req    string
		status string
	}{
		{"GET", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "405 Method Not Allowed"},
		{"absolute GET", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "405 Method Not Allowed"},
		{"POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "405 Method Not Allowed"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "405 Method Not Allowed"},
		{"no port", "CONNECT example.com HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"port 0", "CONNECT example.com:0 HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"port too big", "CONNECT example.com:65536 HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"user info", "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"path", "CONNECT /_goRPC_ HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"numeric name", "CONNECT 2130706433:443 HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"unbracketed IPv6", "CONNECT ::1:443 HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"body", "CONNECT example.com:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "400 Bad Request"},
		{"chunked", "CONNECT example.com:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400 Bad Request"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "400 Bad Request"},
		{"no version", "CONNECT example.com:443\r\n\r\n", "400 Bad Request"},
		{"huge header", "CONNECT example.com:443 HTTP/1.1\r\nX: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", "400 Bad Request"},
		{"empty", "", "400 Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawExchange(t, p.socket, tt.req)
			res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
			if err != nil {
				t.Fatalf("answer %q: %v", got, err)
			}
			if res.Status != tt.status {
				t.Errorf("got %s, want %s", res.Status, tt.status)
			}
			if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "CONNECT" {
				t.Errorf("405 without Allow: CONNECT: %q", got)
			}
		})
	}
	p.waitHandled(t, len(tests))
	if got := d.dialed(); len(got) != 0 {
		t.Errorf("the proxy dialed %v, want nothing", got)
	}
	if got, want := p.Stats(), (Stats{Rejected: int64(len(tests))}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestTunnelLimitPerListener(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxTunnels: 2})
	other := serveUnix(t, p.Proxy) // another control plane's socket

	first, _ := connectLikeKubeAPIServer(t, p.socket, e.addr)
	second, _ := connectLikeKubeAPIServer(t, p.socket, e.addr)
	echo(t, first, "1")
	echo(t, second, "2")
	if _, res := connectLikeKubeAPIServer(t, p.socket, e.addr); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("third tunnel: got %s, want 503", res.Status)
	}
	p.waitHandled(t, 1)
	// Not even a denied destination is looked at beyond the limit.
	if _, res := connectLikeKubeAPIServer(t, p.socket, "10.0.0.1:443"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("beyond the limit: got %s, want 503", res.Status)
	}
	p.waitHandled(t, 1)
	// The other listener has its own tunnels.
	c, res := connectLikeKubeAPIServer(t, other, e.addr)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("tunnel through another listener: got %s, want 200", res.Status)
	}
	echo(t, c, "other")

	first.Close()
	p.waitHandled(t, 1)
	c, res = connectLikeKubeAPIServer(t, p.socket, e.addr)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after one tunnel ended: got %s, want 200", res.Status)
	}
	echo(t, c, "again")
	if got, want := p.Stats(), (Stats{Allowed: 4, Rejected: 2, Active: 3}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestHalfCloseTimeoutEndsTunnel(t *testing.T) {
	// A destination that accepts and then neither reads, writes nor closes.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			held <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		select {
		case c := <-held:
			c.Close()
		default:
		}
	})
	p := startProxy(t, Config{
		Allow:            []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		HalfCloseTimeout: time.Millisecond,
	})
	c, res := connectLikeKubeAPIServer(t, p.socket, l.Addr().String())
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %s, want 200", res.Status)
	}
	c.Close()
	p.waitHandled(t, 1)
	if got := p.Stats(); got.Active != 0 {
		t.Errorf("stats %+v, want no active tunnel", got)
	}
}

func TestCloseEndsTunnels(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	c, _ := connectLikeKubeAPIServer(t, p.socket, e.addr)
	echo(t, c, "before")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a tunnel after Close", n)
	}
	if n := settleGoroutines(0); n != 0 {
		t.Errorf("%d goroutines of the proxy are left after Close", n)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Serve(l); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Close left its listener open: %v", err)
	}
}

func TestEarlyDataReachesDestination(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	c, err := net.Dial("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A client that does not wait for the answer before it speaks.
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\nearly bytes", e.addr)
	want := "HTTP/1.1 200 Connection established\r\n\r\nearly bytes"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Allow: []netip.Prefix{{}}},
		{MaxTunnels: -1},
		{DialTimeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestHostAddressErrorDeniesAll(t *testing.T) {
	d := &dialer{}
	p := startProxy(t, Config{
		Dial:          d.dial,
		HostAddresses: func() ([]netip.Addr, error) { return nil, errors.New("netlink: no") },
	})
	if _, res := connectLikeKubeAPIServer(t, p.socket, "8.8.8.8:443"); res.StatusCode != http.StatusForbidden {
		t.Errorf("got %s, want 403", res.Status)
	}
	if got := d.dialed(); len(got) != 0 {
		t.Errorf("dialed %v, want nothing", got)
	}
}

func TestDenialsLogRateLimited(t *testing.T) {
	var buf syncBuffer
	clock := clockwork.NewFakeClockAt(time.Unix(0, 0))
	p := startProxy(t, Config{
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  clock,
	})
	for i := range 15 {
		rawExchange(t, p.socket, fmt.Sprintf("CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", 1000+i))
	}
	clock.Advance(time.Second)
	rawExchange(t, p.socket, "CONNECT 10.0.0.1:22 HTTP/1.1\r\n\r\nsecret payload")
	p.waitHandled(t, 16)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("got %d log lines, want 10 and one after the pause:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "target=127.0.0.1:1000") || !strings.Contains(lines[0], "level=DEBUG") {
		t.Errorf("first line %q, want the destination at debug level", lines[0])
	}
	if !strings.Contains(lines[10], "target=10.0.0.1:22") || !strings.Contains(lines[10], "suppressed=5") {
		t.Errorf("last line %q, want the destination and suppressed=5", lines[10])
	}
	if strings.Contains(buf.String(), "secret") {
		t.Error("the log holds payload")
	}
}

func TestSampler(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(0, 0))
	s := &sampler{clock: clock, n: 2, interval: time.Second}
	steps := []struct {
		advance    time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{0, true, 0},
		{0, false, 0},
		{500 * time.Millisecond, false, 0},
		{500 * time.Millisecond, true, 2}, // a new interval
		{0, true, 0},
		{0, false, 0},
		{-time.Hour, true, 1}, // the clock went back
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		ok, suppressed := s.allow()
		if ok != st.ok || suppressed != st.suppressed {
			t.Errorf("step %d: got %v, %d; want %v, %d", i, ok, suppressed, st.ok, st.suppressed)
		}
	}
}

// syncBuffer is a bytes.Buffer for concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeAllowingIsPerListener: the networks one listener may reach
// beside the policy (a local cluster's own node and pods) are open to the
// connections of that listener only, never to another control plane's.
func TestServeAllowingIsPerListener(t *testing.T) {
	e := startEcho(t)
	d := &dialer{routes: map[string]string{"10.213.1.2:10250": e.addr}}
	p := startProxy(t, Config{Dial: d.dial})
	dir, err := os.MkdirTemp("", "egress")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	own, err := ListenUnix(filepath.Join(dir, "node.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go p.ServeAllowing(own, []netip.Prefix{netip.MustParsePrefix("10.213.1.2/32"), netip.MustParsePrefix("10.214.1.0/24")})
	ownSocket := filepath.Join(dir, "node.sock")

	c, res := connectLikeKubeAPIServer(t, ownSocket, "10.213.1.2:10250")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("own node: got %s, want 200", res.Status)
	}
	echo(t, c, "kubelet")
	c.Close()
	for _, tc := range []struct{ socket, target, why string }{
		{p.socket, "10.213.1.2:10250", "another control plane's listener, the same node"},
		{ownSocket, "10.213.2.2:10250", "the own listener, another node"},
		{ownSocket, "10.214.2.5:8080", "the own listener, another node's pod"},
	} {
		if _, res := connectLikeKubeAPIServer(t, tc.socket, tc.target); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s (%s): got %s, want 403", tc.why, tc.target, res.Status)
		}
	}
	p.waitHandled(t, 4)
	if got := d.dialed(); len(got) != 1 || got[0] != "10.213.1.2:10250" {
		t.Errorf("dialed %v, want only the own node", got)
	}
}
