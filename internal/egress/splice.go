package egress

import (
	"io"
	"net"
	"time"
)

// splice copies both ways between client and dst until both directions
// have ended; fromClient reads client's bytes. A direction ends at EOF,
// which is passed on as a half-close, or at an error, which ends the whole
// tunnel. Once one direction has ended, the other has halfClose to finish:
// neither HTTP nor TLS keeps a connection half-open for long, and a peer
// that never closes must not hold the tunnel forever.
func splice(client net.Conn, fromClient io.Reader, dst net.Conn, halfClose time.Duration) {
	errc := make(chan error, 2)
	go func() { errc <- pipe(dst, fromClient) }()
	go func() { errc <- pipe(client, dst) }()
	if err := <-errc; err != nil {
		client.Close()
		dst.Close()
	} else {
		deadline := time.Now().Add(halfClose)
		client.SetDeadline(deadline)
		dst.SetDeadline(deadline)
	}
	<-errc
}

// pipe copies src to dst until EOF, then closes dst for writing.
func pipe(dst net.Conn, src io.Reader) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	// dst cannot half-close: ending it is the only way to pass the EOF on.
	return dst.Close()
}
