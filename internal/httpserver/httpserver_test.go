package httpserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/httpserver/httpservertest"
)

// short are the timeouts of these tests. The slow clients below send a
// byte every quarter of a deadline: progress must not extend it. A body
// has Header + Body from the request's first byte.
var short = Timeouts{Header: 200 * time.Millisecond, Body: 200 * time.Millisecond, Idle: 200 * time.Millisecond}

// closeWait bounds the wait for the server to close an idle connection.
// It only ends a test whose server never does.
const closeWait = httpservertest.CloseWait

// start serves h with the short timeouts on a loopback port.
func start(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = New(h, short, nil)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// trickle plays a slow client sending a byte every quarter of the header
// deadline; ask must succeed meanwhile.
func trickle(t *testing.T, addr, head, rest string, ask func() error) time.Duration {
	t.Helper()
	return httpservertest.SlowClient(t, addr, head, rest, short.Header/4, ask)
}

// get asks addr for / on a connection of its own.
func get(addr string) error {
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: closeWait}).Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /: %s", resp.Status)
	}
	return nil
}

func ok(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusRequestTimeout)
		return
	}
	io.WriteString(w, "ok\n")
}

func TestSlowHeadersAreCut(t *testing.T) {
	addr := start(t, http.HandlerFunc(ok))
	lived := trickle(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n", func() error { return get(addr) })
	t.Logf("a head sent a byte every %v was cut after %v (deadline %v)", short.Header/4, lived.Round(time.Millisecond), short.Header)
}

func TestSlowBodiesAreCut(t *testing.T) {
	read := make(chan error, 1)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			ok(w, r)
			return
		}
		_, err := io.ReadAll(r.Body)
		read <- err
	}))
	head := "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
	lived := trickle(t, addr, head, "{}", func() error { return get(addr) })
	if err := <-read; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler's read ended with %v, want the deadline", err)
	}
	t.Logf("a body sent a byte every %v was cut after %v (deadline %v)", short.Body/4, lived.Round(time.Millisecond), short.Header+short.Body)
}

func TestSlowChunkedBodiesAreCut(t *testing.T) {
	addr := start(t, http.HandlerFunc(ok))
	head := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	trickle(t, addr, head, "1\r\nx\r\n", func() error { return get(addr) })
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	addr := start(t, http.HandlerFunc(ok))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(closeWait))
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle kept-alive connection: read %d bytes, %v; want the server to close it", n, err)
	}
}

// A handler that takes far longer than every deadline to answer — as a
// create waiting for a cluster does — still answers, after reading a body
// or without one, and its request's context stays alive.
func TestLongAnswersOutliveTheDeadlines(t *testing.T) {
	longest := max(short.Header, short.Body, short.Idle)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "context canceled while working", http.StatusInternalServerError)
		case <-time.After(5 * longest): // the work
			io.WriteString(w, "done\n")
		}
	}))
	for _, body := range []string{"", `{"wait": "30m"}`} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/clusters", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "done\n" {
			t.Errorf("body %q: got %d %q after %v of work, want 200 done", body, resp.StatusCode, b, 5*longest)
		}
	}
}

func TestOversizedHeadsAreRefused(t *testing.T) {
	addr := start(t, http.HandlerFunc(ok))
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 2*MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d KiB head: got %d, want 431", 2*MaxHeaderBytes>>10, resp.StatusCode)
	}
	// A 16 KiB token, the largest SMEK takes, passes.
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 16<<10))
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a 16 KiB token: got %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
}
