package httpservertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// RawBody is what RawPost sends after the head: Data as it is, or, when
// Data is nil, Length spaces made on the fly, so that a flood of large
// bodies costs the client no memory. Chunked sends it with
// Transfer-Encoding: chunked instead of a Content-Length.
type RawBody struct {
	Data    []byte
	Length  int64
	Chunked bool
}

// RawPost sends a POST of body to path over its own connection to addr
// and returns the answer's status, 0 when the server closed the connection
// without one; the error is the failure to connect. It writes the body while it waits for the answer, as a
// client that ignores an early answer would, and stops writing once the
// server closes. deadline bounds the whole exchange: it ends a hung test,
// it is no measurement.
func RawPost(addr, path string, header http.Header, body RawBody, deadline time.Duration) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(deadline))
	if body.Data != nil {
		body.Length = int64(len(body.Data))
	}
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	header.Write(&head)
	if body.Chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", body.Length)
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		return 0, nil
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		writeBody(conn, body)
	}()
	status := 0
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	conn.Close()
	<-written
	return status, nil
}

// writeBody writes body to w until it is sent or w fails (the server
// answered and closed).
func writeBody(w io.Writer, body RawBody) {
	if body.Data != nil && !body.Chunked {
		w.Write(body.Data)
		return
	}
	chunk := body.Data
	if chunk == nil {
		chunk = bytes.Repeat([]byte(" "), 64<<10)
	}
	for sent := int64(0); sent < body.Length; sent += int64(len(chunk)) {
		part := chunk[:min(int64(len(chunk)), body.Length-sent)]
		var err error
		if body.Chunked {
			_, err = fmt.Fprintf(w, "%x\r\n%s\r\n", len(part), part)
		} else {
			_, err = w.Write(part)
		}
		if err != nil {
			return
		}
	}
	if body.Chunked {
		io.WriteString(w, "0\r\n\r\n")
	}
}
