package latency

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// These tests measure the proxy with real time, as inequalities: the
// delay is its whole point.

// echo starts a TCP server that writes back what it reads and closes its
// side at EOF.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialThrough(t *testing.T, target string, delay time.Duration) net.Conn {
	t.Helper()
	p, err := Listen(target, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTripTakesTwoDelays(t *testing.T) {
	const delay = 30 * time.Millisecond
	c := dialThrough(t, echo(t), delay)
	buf := make([]byte, 4)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < 2*delay {
			t.Errorf("round trip %d took %v, want at least %v", i, got, 2*delay)
		}
		if string(buf) != "ping" {
			t.Errorf("round trip %d: got %q, want %q", i, buf, "ping")
		}
	}
}

// TestNewConnectionCostsAHandshake: the first request on a connection
// waits for TCP's handshake, a round trip, before its own.
func TestNewConnectionCostsAHandshake(t *testing.T) {
	const delay = 30 * time.Millisecond
	target := echo(t)
	start := time.Now()
	c := dialThrough(t, target, delay)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < 4*delay {
		t.Errorf("connect and a round trip took %v, want at least %v (two round trips)", got, 4*delay)
	}
}

func TestBytesArriveIntactAndInOrder(t *testing.T) {
	c := dialThrough(t, echo(t), 5*time.Millisecond)
	want := make([]byte, 1<<20)
	rand.Read(want)
	go func() {
		for b := want; len(b) > 0; b = b[min(len(b), 1000):] {
			if _, err := c.Write(b[:min(len(b), 1000)]); err != nil {
				return
			}
		}
		// The end of the stream travels too: the echo server sees EOF
		// and closes, and the read below ends.
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes back, want the %d sent, in order", len(got), len(want))
	}
}

// TestDelayDoesNotAddUp sends chunks spaced out in time: each arrives one
// delay after it was sent, so the last one arrives about one delay after
// it was sent, not one delay per chunk before it.
func TestDelayDoesNotAddUp(t *testing.T) {
	const (
		delay  = 50 * time.Millisecond
		chunks = 20
	)
	c := dialThrough(t, echo(t), delay)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, chunks)
		_, err := io.ReadFull(c, buf)
		done <- err
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for range chunks {
		<-tick.C
		if _, err := c.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := time.Since(start)
	if got < 2*delay || got >= chunks*delay {
		t.Errorf("%d chunks echoed in %v, want at least %v (one round trip) and well under %v (a delay per chunk)", chunks, got, 2*delay, chunks*delay)
	}
}

func TestCloseCutsOpenConnections(t *testing.T) {
	p, err := Listen(echo(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes after Close, want the connection cut", n)
	}
}
