package diagnostics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxResponseBytes caps one answer of the cluster: a page of pods or
// events (a log is capped by its own limit below this).
const maxResponseBytes = 16 << 20

// errTooLarge is an answer over maxResponseBytes.
var errTooLarge = errors.New("answer too large")

// capBodies wraps a transport so that no response body yields more than
// n bytes: reading past them is an error, not more memory.
func capBodies(n int64) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err != nil {
				return nil, err
			}
			resp.Body = &cappedBody{ReadCloser: resp.Body, max: n, left: n}
			return resp, nil
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cappedBody is a body that fails once more than left bytes came.
type cappedBody struct {
	io.ReadCloser
	max, left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w: over %d bytes", errTooLarge, b.max)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("%w: over %d bytes", errTooLarge, b.max)
	}
	return n, err
}
