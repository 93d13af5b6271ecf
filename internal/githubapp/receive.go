package githubapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/smek/action/internal/cluster"
)

// readPayload reads a delivery's body into one buffer and checks it
// against the HMAC its signature header claims (want). size is the
// request's Content-Length, or -1 when it is sent chunked; then the body
// may be at most limit bytes. The buffer is allocated once with the
// capacity reserved for it (size, or limit), so the memory held is never
// more than the reservation. The HMAC and the payload's SHA-256 are
// computed while reading, chunk by chunk.
//
// Errors are application errors: ETOOLARGE for a chunked body over
// limit, EINVALID when the body cannot be read (cut short, too slow),
// EUNAUTHORIZED when the signature does not match.
func readPayload(body io.Reader, size, limit int64, secret, want []byte) (payload []byte, digest [sha256.Size]byte, err error) {
	capacity := size
	if size < 0 {
		capacity = limit
	}
	buf := make([]byte, 0, capacity)
	mac := hmac.New(sha256.New, secret)
	sum := sha256.New()
	for len(buf) < cap(buf) {
		n, err := body.Read(buf[len(buf):cap(buf)])
		mac.Write(buf[len(buf) : len(buf)+n])
		sum.Write(buf[len(buf) : len(buf)+n])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, digest, cluster.Errorf(cluster.EINVALID, "body", "reading the payload: %v", err)
		}
	}
	if size < 0 && len(buf) == cap(buf) {
		// A full buffer of a chunked body: one byte more is too large.
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n > 0 {
			return nil, digest, cluster.Errorf(cluster.ETOOLARGE, "body", "the payload is over %d bytes", limit)
		}
	}
	if err := checkSignature(want, mac.Sum(nil)); err != nil {
		return nil, digest, err
	}
	sum.Sum(digest[:0])
	return buf, digest, nil
}
