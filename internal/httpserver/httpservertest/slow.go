// Package httpservertest plays slow clients against a server, to show
// that its deadlines cut them off while others are served.
package httpservertest

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// CloseWait bounds the wait for a server to close a slow connection. It
// only ends a test whose server never does.
const CloseWait = 20 * time.Second

// SlowClient connects to addr (host:port), writes head, then the bytes of
// rest one at a time every interval (round and round) until the server
// closes the connection. It returns once the server has closed it, with
// how long the connection lived, and fails t if that takes CloseWait.
// Meanwhile it calls ask, another client, which must succeed.
func SlowClient(t testing.TB, addr, head, rest string, every time.Duration, ask func() error) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begin := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	defer close(closed)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i = (i + 1) % len(rest) {
			select {
			case <-closed:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(conn, rest[i:i+1]); err != nil {
				return // closed by the server
			}
		}
	}()
	if err := ask(); err != nil {
		t.Errorf("another client while a slow one is connected: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(CloseWait))
	// Whatever answer there is, until the close.
	if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the server did not close the slow connection: %v", err)
	}
	return time.Since(begin)
}
