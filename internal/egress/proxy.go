// Package egress is the HTTP CONNECT proxy through which a tenant's
// kube-apiserver opens every connection it makes on the tenant's behalf.
//
// The local backend runs each tenant's kube-apiserver on SMEK's own machine,
// and a tenant can make it connect almost anywhere: admission webhooks by URL
// or by a Service (an ExternalName Service names any host), and the
// pods/services proxy subresources. Unguarded, that turns the API server
// into a port scanner and request forwarder into SMEK's host (its API, the
// other tenants' etcd and API servers on loopback, the cloud metadata
// service) and the operator's LAN. kube-apiserver's egress selector
// (--egress-selector-config-file, see SelectorConfig) sends those
// connections to this proxy instead, which resolves names itself, refuses
// every address that is not public unicast or belongs to this host, and dials
// exactly the address it checked.
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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/logkey"
)

// ErrClosed is returned by Serve once the proxy has been closed.
var ErrClosed = errors.New("egress proxy closed")

const (
	// maxRequestBytes caps the CONNECT request line and headers;
	// kube-apiserver sends about 60 bytes.
	maxRequestBytes = 8 << 10
	// requestTimeout bounds reading the request and writing the answer.
	requestTimeout = 10 * time.Second
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config says what the proxy may reach and how.
type Config struct {
	// Allow lists destinations that are reachable although the default
	// policy denies them. It is checked first.
	Allow []netip.Prefix
	// HostAddresses lists the addresses of this host, which are denied
	// (default: the addresses of all network interfaces, asked on every
	// request so that a new address is covered at once).
	HostAddresses func() ([]netip.Addr, error)
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver Resolver
	// Dial connects to an address the policy permitted, given as ip:port
	// (default net.Dialer). Tests count or fake connections with it.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// DialTimeout bounds resolving and connecting, all addresses together
	// (default 10 s, the default timeout of an admission webhook).
	DialTimeout time.Duration
	// MaxTunnels bounds the open tunnels of each listener, so that one
	// tenant's API server cannot use up another's (default 256). A request
	// beyond it is answered 503.
	MaxTunnels int
	// HalfCloseTimeout is how long a tunnel stays open after one side has
	// finished sending, for the other to finish too (default 30 s). HTTP and
	// TLS never need long; a peer that never closes would hold the tunnel.
	HalfCloseTimeout time.Duration
	// Logger gets denials and failed dials at debug level, with the
	// destination and never a byte of payload (default: discard).
	Logger *slog.Logger
	// Clock is the clock of the denial log's rate limit (nil: the wall
	// clock); socket deadlines and the accept backoff run on the wall
	// clock, which the kernel and the listener keep.
	Clock clockwork.Clock
}

// Stats counts what the proxy did since it was created.
type Stats struct {
	// Allowed counts tunnels established.
	Allowed int64
	// Denied counts requests refused by the policy, or for a name that
	// did not resolve.
	Denied int64
	// Failed counts permitted destinations that could not be connected.
	Failed int64
	// Rejected counts malformed requests and requests beyond MaxTunnels.
	Rejected int64
	// Active is the number of tunnels open now.
	Active int64
}

// Proxy is an HTTP CONNECT proxy that only reaches permitted destinations.
// One Proxy serves any number of listeners, one per control plane.
type Proxy struct {
	cfg     Config
	policy  policy
	log     *slog.Logger
	denials *sampler

	// ctx is cancelled by Close; it aborts lookups and dials and closes
	// every tunnel.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards closed and listeners; wg counts Serve loops and
	// connection handlers, and is only added to while !closed.
	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	wg        sync.WaitGroup

	allowed, denied, failed, rejected, active atomic.Int64

	// handled, when set (by tests, before Serve), is called after each
	// connection's handler has closed everything it opened.
	handled func()
}

// New returns a proxy; it serves once Serve is called.
func New(cfg Config) (*Proxy, error) {
	for _, p := range cfg.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("new egress proxy: invalid allowed prefix %v", p)
		}
	}
	if cfg.MaxTunnels < 0 || cfg.DialTimeout < 0 || cfg.HalfCloseTimeout < 0 {
		return nil, errors.New("new egress proxy: negative limit")
	}
	if cfg.HostAddresses == nil {
		cfg.HostAddresses = interfaceAddrs
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxTunnels == 0 {
		cfg.MaxTunnels = 256
	}
	if cfg.HalfCloseTimeout == 0 {
		cfg.HalfCloseTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	allow := make([]netip.Prefix, len(cfg.Allow))
	for i, p := range cfg.Allow {
		allow[i] = p.Masked()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		cfg:       cfg,
		policy:    policy{allow: allow, hostAddrs: cfg.HostAddresses},
		log:       cfg.Logger.With(logkey.Component, "egress"),
		denials:   &sampler{clock: cfg.Clock, n: 10, interval: time.Second},
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
	}, nil
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Allowed:  p.allowed.Load(),
		Denied:   p.denied.Load(),
		Failed:   p.failed.Load(),
		Rejected: p.rejected.Load(),
		Active:   p.active.Load(),
	}
}

// Serve accepts connections on l until l or the proxy is closed, and
// returns ErrClosed after Close, or the error that ended it. Tunnels
// already open when l is closed stay open until they end.
func (p *Proxy) Serve(l net.Listener) error { return p.ServeAllowing(l, nil) }

// ServeAllowing serves l as Serve does, and lets the connections accepted
// on it reach the networks in allow too: the addresses of the node and
// pods of the one control plane that dials through l.
func (p *Proxy) ServeAllowing(l net.Listener, allow []netip.Prefix) error {
	pol := p.policy
	pol.allow = append(slices.Clone(pol.allow), allow...)
	for i := range pol.allow {
		pol.allow[i] = pol.allow[i].Masked()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	p.listeners[l] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.listeners, l)
		p.mu.Unlock()
		p.wg.Done()
	}()

	log := p.log.With(logkey.Listener, l.Addr().String())
	slots := make(chan struct{}, p.cfg.MaxTunnels)
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept", logkey.Err, err, logkey.RetryIn, backoff)
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
			}
			continue
		}
		backoff = 0
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return ErrClosed
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.handle(c, pol, slots, log)
		}()
	}
}

// Close stops every Serve loop, closes every tunnel and waits until all
// of them have ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	ls := make([]net.Listener, 0, len(p.listeners))
	for l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	p.cancel()
	for _, l := range ls {
		l.Close()
	}
	p.wg.Wait()
	return nil
}

// handle answers one CONNECT request on c and, if it is permitted, splices
// c to the destination until the tunnel ends. slots bounds the listener's
// open tunnels.
func (p *Proxy) handle(c net.Conn, pol policy, slots chan struct{}, log *slog.Logger) {
	if p.handled != nil {
		defer p.handled()
	}
	defer c.Close()
	stop := context.AfterFunc(p.ctx, func() { c.Close() })
	defer stop()

	haveSlot := false
	select {
	case slots <- struct{}{}:
		haveSlot = true
		defer func() { <-slots }()
	default:
	}

	c.SetReadDeadline(time.Now().Add(requestTimeout))
	br := bufio.NewReader(io.LimitReader(c, maxRequestBytes))
	req, err := http.ReadRequest(br)
	if err != nil {
		p.reject(c, http.StatusBadRequest, "malformed request")
		return
	}
	if req.Method != http.MethodConnect {
		p.reject(c, http.StatusMethodNotAllowed, "only CONNECT is supported")
		return
	}
	if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
		p.reject(c, http.StatusBadRequest, "CONNECT with a body")
		return
	}
	t, err := parseTarget(req.RequestURI)
	if err != nil {
		p.reject(c, http.StatusBadRequest, "bad target: "+err.Error())
		return
	}
	if !haveSlot {
		p.reject(c, http.StatusServiceUnavailable, "too many open tunnels")
		return
	}

	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	addrs := p.permitted(ctx, pol, t, log)
	if len(addrs) == 0 {
		p.denied.Add(1)
		// The same answer for every refused destination, without a dial:
		// it says nothing about what listens there.
		writeStatus(c, http.StatusForbidden, "destination not allowed or not resolvable")
		return
	}
	dst, err := p.dial(ctx, addrs, t.port)
	if err != nil {
		p.failed.Add(1)
		log.Debug("egress dial failed", logkey.Target, t.String(), logkey.Addresses, addrs, logkey.Err, err)
		writeStatus(c, http.StatusBadGateway, "cannot connect to destination")
		return
	}
	defer dst.Close()
	stopDst := context.AfterFunc(p.ctx, func() { dst.Close() })
	defer stopDst()

	c.SetWriteDeadline(time.Now().Add(requestTimeout))
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.failed.Add(1)
		return
	}
	p.allowed.Add(1)
	c.SetDeadline(time.Time{})

	// Bytes the client sent after its request, before our answer.
	var fromClient io.Reader = c
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		fromClient = io.MultiReader(bytes.NewReader(bytes.Clone(early)), c)
	}
	p.active.Add(1)
	defer p.active.Add(-1)
	splice(c, fromClient, dst, p.cfg.HalfCloseTimeout)
}

// permitted resolves t and returns the addresses the policy permits, in
// the resolver's order. It logs a denial, rate-limited: a tenant can
// cause any number of them.
func (p *Proxy) permitted(ctx context.Context, pol policy, t target, log *slog.Logger) []netip.Addr {
	addrs := []netip.Addr{t.addr}
	if !t.addr.IsValid() {
		var err error
		addrs, err = p.cfg.Resolver.LookupNetIP(ctx, "ip", t.host)
		if err != nil {
			p.logDenial(log, "egress denied: lookup failed", t, nil, "err", err)
			return nil
		}
	}
	host, err := pol.hostAddrs()
	if err != nil {
		// Without the host's addresses nothing can be judged: refuse.
		log.Warn("list host addresses", logkey.Err, err)
		return nil
	}
	var ok []netip.Addr
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if pol.permits(a, host) && !slices.Contains(ok, a) {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		p.logDenial(log, "egress denied", t, addrs)
	}
	return ok
}

func (p *Proxy) logDenial(log *slog.Logger, msg string, t target, addrs []netip.Addr, args ...any) {
	ok, suppressed := p.denials.allow()
	if !ok {
		return
	}
	args = append(args, logkey.Target, t.String(), logkey.Addresses, addrs)
	if suppressed > 0 {
		args = append(args, logkey.Suppressed, suppressed)
	}
	log.Debug(msg, args...)
}

// dial connects to the first of addrs that answers.
func (p *Proxy) dial(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, error) {
	var errs []error
	for _, a := range addrs {
		c, err := p.cfg.Dial(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// reject answers a request that is not served.
func (p *Proxy) reject(c net.Conn, code int, msg string) {
	p.rejected.Add(1)
	writeStatus(c, code, msg)
}

// writeStatus writes a complete response that ends the connection.
func writeStatus(c net.Conn, code int, msg string) {
	c.SetWriteDeadline(time.Now().Add(requestTimeout))
	var allow string
	if code == http.StatusMethodNotAllowed {
		allow = "Allow: CONNECT\r\n"
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		code, http.StatusText(code), allow, len(msg)+1, msg)
}
