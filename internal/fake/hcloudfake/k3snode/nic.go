package k3snode

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// The machine's public network interface. A real server listens on its
// public address (SSH on 22, k3s on 6443, ServiceLB on a Service's port);
// a simulated one listens on a loopback port per public port, and the
// fake publishes the mapping (GET /_hcloudfake/servers/{id}). Every
// connection passes the firewalls the cloud applies to the server
// (MachineSpec.Admit) before the machine sees it.

// port is one public port of the machine.
type port struct {
	public int
	l      net.Listener
	admit  func(port int, src netip.Addr) bool

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// listen opens public port p on loopback. Connections a firewall drops
// are held open without a byte until the peer gives up or the machine
// goes off: on a real cloud the SYN is dropped, so the client sees a
// timeout, never a refusal. n.mu is held.
func (n *Node) listen(p int) (net.Listener, error) {
	if _, ok := n.ports[p]; ok {
		return nil, fmt.Errorf("public port %d is already in use", p)
	}
	// A public port keeps its loopback address for the machine's life,
	// as a real server keeps its address across reboots: credentials
	// sealed at bootstrap name it.
	addr := n.portAddrs[p]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on public port %d: %w", p, err)
	}
	if n.portAddrs == nil {
		n.portAddrs = map[int]string{}
	}
	n.portAddrs[p] = l.Addr().String()
	pt := &port{public: p, l: l, admit: n.spec.Admit, conns: map[net.Conn]struct{}{}}
	if n.ports == nil {
		n.ports = map[int]*port{}
	}
	n.ports[p] = pt
	return pt, nil
}

// unlisten closes public port p and every connection through it. n.mu is
// held.
func (n *Node) unlisten(p int) error {
	pt, ok := n.ports[p]
	if !ok {
		return nil
	}
	delete(n.ports, p)
	return pt.Close()
}

// forward opens public port p and relays every admitted connection to
// target (a loopback address of a process on the machine). n.mu is held.
func (n *Node) forward(p int, target string) error {
	l, err := n.listen(p)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go relay(c, target)
		}
	}()
	return nil
}

func relay(c net.Conn, target string) {
	defer c.Close()
	t, err := net.Dial("tcp", target)
	if err != nil {
		return // nothing listens behind the port: the connection is reset
	}
	defer t.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(t, c)
	go cp(c, t)
	<-done
	<-done
}

// Accept returns the next connection a firewall admits.
func (pt *port) Accept() (net.Conn, error) {
	for {
		c, err := pt.l.Accept()
		if err != nil {
			return nil, err
		}
		pt.mu.Lock()
		if pt.closed {
			pt.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		pt.conns[c] = struct{}{}
		pt.mu.Unlock()
		if pt.admitted(c) {
			return &trackedConn{Conn: c, pt: pt}, nil
		}
		// Dropped: keep it open and silent; Close cuts it.
	}
}

func (pt *port) admitted(c net.Conn) bool {
	if pt.admit == nil {
		return true
	}
	src, err := netip.ParseAddrPort(c.RemoteAddr().String())
	return err == nil && pt.admit(pt.public, src.Addr().Unmap())
}

// Close stops listening and cuts every connection, like a power cut.
func (pt *port) Close() error {
	pt.mu.Lock()
	pt.closed = true
	conns := pt.conns
	pt.conns = map[net.Conn]struct{}{}
	pt.mu.Unlock()
	err := pt.l.Close()
	for c := range conns {
		c.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (pt *port) Addr() net.Addr { return pt.l.Addr() }

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	pt *port
}

func (c *trackedConn) Close() error {
	c.pt.mu.Lock()
	delete(c.pt.conns, c.Conn)
	c.pt.mu.Unlock()
	return c.Conn.Close()
}

// Ports maps each public port the machine listens on to the loopback
// address that stands for it; empty while off.
func (n *Node) Ports() map[int]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[int]string, len(n.ports))
	for p, pt := range n.ports {
		out[p] = pt.Addr().String()
	}
	return out
}

// Addr is the loopback address standing for public port p, "" when
// nothing listens on it.
func (n *Node) Addr(p int) string {
	return n.Ports()[p]
}
