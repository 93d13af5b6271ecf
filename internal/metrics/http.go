package metrics

import (
	"net/http"
)

// Instrument wraps the server's ServeMux and counts every request by the
// route pattern the mux matched ("POST /create", "GET /v1/clusters/{id}"),
// so that the label set stays bounded whatever paths clients send.
// Requests that match no route count as "unmatched".
func (m *Metrics) Instrument(mux http.Handler) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.clock.Now()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		route := r.Pattern // set by ServeMux on the request it was given
		if route == "" {
			route = "unmatched"
		}
		m.HTTPRequest(route, sw.code(), m.clock.Since(start))
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
