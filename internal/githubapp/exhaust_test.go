package githubapp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Unauthenticated requests must not make the endpoint read (and hold) their
// bodies. These tests send a request's head only, never its body, and read
// the answer: a handler that waits for the body before deciding never
// answers, and the connection's read deadline ends the test.

// noBodyAnswerWait bounds the wait for an answer to a request whose body
// is never sent. It only stops a server that waits for the body; an answer
// that does not need the body comes in milliseconds.
const noBodyAnswerWait = 10 * time.Second

// headOnly writes a request's head announcing contentLength bytes (-1:
// chunked) on a new connection, sends no body, and returns the answer.
func headOnly(t *testing.T, addr string, header http.Header, contentLength int64) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", WebhookPath, addr)
	if contentLength >= 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", contentLength)
	} else {
		head.WriteString("Transfer-Encoding: chunked\r\n")
	}
	header.Write(&head)
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(noBodyAnswerWait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent (%v): the endpoint waits for the body", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// webhookHeader is the head of a delivery with a well-formed but wrong
// signature (nobody but GitHub can sign).
func webhookHeader(event string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(EventHeader, event)
	h.Set(DeliveryHeader, "head-only-1")
	h.Set(SignatureHeader, "sha256="+strings.Repeat("0", 64))
	return h
}

func TestWebhookRefusesUnsignedRequestsBeforeTheBody(t *testing.T) {
	h := newHarness(t)
	addr := h.srv.Listener.Addr().String()
	for _, length := range []int64{24 << 20, -1} {
		t.Run(fmt.Sprintf("length %d", length), func(t *testing.T) {
			header := webhookHeader("workflow_run")
			header.Del(SignatureHeader)
			resp, body := headOnly(t, addr, header, length)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, SignatureHeader) {
				t.Fatalf("got %d %s, want 401 naming %s", resp.StatusCode, body, SignatureHeader)
			}
		})
	}
}

func TestWebhookRefusesMalformedSignaturesBeforeTheBody(t *testing.T) {
	h := newHarness(t)
	addr := h.srv.Listener.Addr().String()
	for _, sig := range []string{"sha1=" + strings.Repeat("ab", 20), "sha256=zz", "sha256=" + strings.Repeat("a", 62)} {
		t.Run(sig, func(t *testing.T) {
			header := webhookHeader("workflow_run")
			header.Set(SignatureHeader, sig)
			resp, body := headOnly(t, addr, header, 1<<20)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", resp.StatusCode, body)
			}
		})
	}
}

func TestWebhookRefusesOversizedBodiesBeforeReadingThem(t *testing.T) {
	h := newHarness(t)
	resp, body := headOnly(t, h.srv.Listener.Addr().String(), webhookHeader("workflow_run"), MaxPayload+1)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"too-large"`) {
		t.Fatalf("got %d %s, want 413 too-large", resp.StatusCode, body)
	}
}

// An event the App does not act on is acknowledged from its headers: its
// body is neither read nor verified, and nothing is recorded or done.
func TestWebhookAcknowledgesUnhandledEventsUnread(t *testing.T) {
	h := newHarness(t)
	resp, body := headOnly(t, h.srv.Listener.Addr().String(), webhookHeader("star"), 1<<20)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ignored"`) {
		t.Fatalf("got %d %s, want 200 ignored", resp.StatusCode, body)
	}
	if d, ok := h.deliveries.get("head-only-1"); ok {
		t.Fatalf("the unread delivery was recorded: %+v", d)
	}
}

// A signed payload captured once and re-sent under a new delivery id is a
// duplicate: the signature covers the body, not X-GitHub-Delivery.
func TestWebhookReplayedPayloadUnderANewIDIsADuplicate(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(runCluster("c-run001", false))
	body := fixture(t, "workflow_run.completed.json")
	if status, answer := h.send(delivery{event: "workflow_run", id: "original", body: body}); status != http.StatusAccepted {
		t.Fatalf("first delivery: got %d %s, want 202", status, answer)
	}
	if r := h.wait(); r.Err != nil {
		t.Fatalf("work failed: %v", r.Err)
	}
	for _, id := range []string{"replay-1", "replay-2"} {
		status, answer := h.send(delivery{event: "workflow_run", id: id, body: body})
		if status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) {
			t.Fatalf("payload under id %s: got %d %s, want 200 duplicate", id, status, answer)
		}
	}
	// Under another event name it is the same payload too.
	if status, answer := h.send(delivery{event: "workflow_job", id: "replay-3", body: body}); status == http.StatusAccepted {
		t.Fatalf("payload as workflow_job: got %d %s, want it refused or a duplicate", status, answer)
	}
	// After a restart as well (the store outlives the App).
	h.start()
	if status, answer := h.send(delivery{event: "workflow_run", id: "replay-4", body: body}); status != http.StatusOK || !strings.Contains(string(answer), `"duplicate"`) {
		t.Fatalf("payload after restart: got %d %s, want 200 duplicate", status, answer)
	}
	if got := h.clusters.count("List"); got != 1 {
		t.Fatalf("List calls: got %d, want 1 (the replays did work)", got)
	}
	// Another payload is new.
	other := variant(t, "workflow_run.completed.json", func(m map[string]any) { obj(m, "workflow_run")["id"] = 42 })
	if status, answer := h.send(delivery{event: "workflow_run", id: "other", body: other}); status != http.StatusAccepted {
		t.Fatalf("another payload: got %d %s, want 202", status, answer)
	}
	h.wait()
}
