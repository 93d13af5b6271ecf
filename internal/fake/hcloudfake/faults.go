package hcloudfake

import "net/http"

// Fault is an injected failure of one request.
type Fault struct {
	// Status is the HTTP status answered. With Code empty the body is not
	// JSON (like a proxy's 502), otherwise it is the API's error envelope.
	Status int
	Code   string
	// AfterEffect makes the request take effect before the failure is
	// answered: the client sees an error although the server was created,
	// the way a lost response looks.
	AfterEffect bool
}

// faultFor returns the fault to inject for a request on route, if any:
// first the scripted ones, then the random rate. The fake's mutex is held.
func (f *Fake) faultFor(route string) (Fault, bool) {
	if q := f.scripted[route]; len(q) > 0 {
		f.scripted[route] = q[1:]
		return q[0], true
	}
	if f.cfg.FaultRate > 0 && f.rand.Float64() < f.cfg.FaultRate {
		faults := f.cfg.RandomFaults
		if len(faults) == 0 {
			faults = defaultRandomFaults
		}
		return faults[f.rand.IntN(len(faults))], true
	}
	return Fault{}, false
}

var defaultRandomFaults = []Fault{
	{Status: http.StatusInternalServerError, Code: CodeServerError},
	{Status: http.StatusServiceUnavailable, Code: CodeUnavailable},
	{Status: http.StatusBadGateway},
	{Status: http.StatusTooManyRequests, Code: CodeRateLimitExceeded},
	{Status: http.StatusGatewayTimeout, Code: CodeTimeout},
}

func writeFault(w http.ResponseWriter, ft Fault) {
	if ft.Code == "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(ft.Status)
		_, _ = w.Write([]byte("<html><body><h1>" + http.StatusText(ft.Status) + "</h1></body></html>\n"))
		return
	}
	writeJSON(w, ft.Status, map[string]any{"error": map[string]any{
		"code": ft.Code, "message": "injected fault: " + http.StatusText(ft.Status), "details": map[string]any{},
	}})
}
