// Package latency is a TCP proxy for tests that puts a network's latency
// between a client and a server on loopback: every byte arrives a fixed
// delay after it was sent, in each direction. It models latency, not
// bandwidth: what is read at time t is written at t+delay, in order, so a
// stream of chunks takes the delay once, not once per chunk. A new
// connection costs the round trip of TCP's handshake too: the client's
// connect returns at once on loopback, so its first bytes are held until
// they would have arrived after it.
package latency

import (
	"net"
	"sync"
	"time"
)

// Proxy forwards the connections it accepts to a target address, each
// direction delayed by the same one-way delay.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// Listen starts a proxy on a loopback port in front of target (host:port),
// delaying each direction by delay.
func Listen(target string, delay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, cuts every open connection and waits until all
// of the proxy's goroutines are done.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c, time.Now())
	}
}

// track registers c so that Close can cut it; false once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

// serve connects c to the target and forwards both ways until both
// directions have ended.
func (p *Proxy) serve(c net.Conn, accepted time.Time) {
	defer p.wg.Done()
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(t) {
		t.Close()
		return
	}
	defer p.untrack(t)
	// Over a real link, connect returns after a round trip (SYN, SYN-ACK),
	// and what the client sends then arrives a delay later.
	handshake := accepted.Add(3 * p.delay)
	var both sync.WaitGroup
	both.Go(func() { p.forward(t, c, handshake) })
	both.Go(func() { p.forward(c, t, time.Time{}) })
	both.Wait()
}

// chunk is what one read returned and when it is due at the other end.
type chunk struct {
	b   []byte
	due time.Time
}

// forward copies src to dst, every chunk written delay after it was read
// and not before notBefore: one goroutine reads and stamps, this one
// writes when due. The end of src is passed on as a half close of dst,
// after the delay too. A failed write cuts both connections.
func (p *Proxy) forward(dst, src net.Conn, notBefore time.Time) {
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(p.delay)}
			}
			if err != nil {
				// The end, delayed like data.
				q <- chunk{due: time.Now().Add(p.delay)}
				return
			}
		}
	}()
	for c := range q {
		if c.due.Before(notBefore) {
			c.due = notBefore
		}
		time.Sleep(time.Until(c.due))
		if c.b == nil {
			closeWrite(dst)
			continue
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			dst.Close()
			for range q {
			}
			return
		}
	}
}

// closeWrite half-closes a TCP connection (the peer reads EOF) and closes
// any other.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}
