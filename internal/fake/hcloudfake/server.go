package hcloudfake

import (
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/smek/action/internal/logkey"
)

// Server is a running fake on a loopback port.
type Server struct {
	*Fake
	// URL is the API endpoint for hcloud.WithEndpoint.
	URL string
	ts  *httptest.Server
}

func startServer(f *Fake) *Server {
	ts := httptest.NewServer(f.Handler())
	return &Server{Fake: f, URL: ts.URL, ts: ts}
}

// Close stops serving and destroys every simulated machine.
func (s *Server) Close() {
	s.ts.Close()
	s.Fake.Close()
}

// Close destroys every simulated machine.
func (f *Fake) Close() {
	f.effMu.Lock()
	defer f.effMu.Unlock()
	for id, m := range f.machines {
		if err := m.Destroy(); err != nil {
			f.log.Error("destroy machine", logkey.Server, id, logkey.Err, err)
		}
		delete(f.machines, id)
	}
}

// Serve serves the fake on l until it fails (for the standalone main).
func (f *Fake) Serve(l net.Listener) error {
	return (&http.Server{Handler: f.Handler()}).Serve(l)
}
