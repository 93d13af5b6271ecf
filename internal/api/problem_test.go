package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

// Every route answers a request it must refuse (no token, a token that is
// not allowed there, a bad body, an unknown id, a method it does not take)
// with a problem document in the one type scheme, its status in the body
// as in the answer. A route that answers with http.Error's text/plain
// fails here. The routes are those routes() lists (read from the source)
// and those openapi.json documents.
func TestEveryRouteAnswersProblems(t *testing.T) {
	s := newTestServer(t)
	routes := map[string]bool{}
	for _, p := range routePatterns(t) {
		routes[p] = true
	}
	for path, ops := range loadOpenAPI(t).Paths {
		for method := range ops {
			if slices.Contains(httpMethods, method) {
				routes[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	type attempt struct{ name, method, token, body string }
	for route := range routes {
		method, path, _ := strings.Cut(route, " ")
		t.Run(route, func(t *testing.T) {
			attempts := []attempt{
				{"no token", method, "", "{}"},
				{"bad body", method, "smek_test", `{"cluster-id": `},
				{"unknown field", method, "smek_test", `{"no-such-field": 1}`},
				{"wrong method", http.MethodPut, "smek_test", "{}"},
				{"wrong method without token", http.MethodPut, "", "{}"},
			}
			for _, id := range []string{"c-zzzzzz", "not-an-id"} {
				concrete := strings.ReplaceAll(path, "{id}", id)
				refused := 0
				for _, a := range attempts {
					r := httptest.NewRequest(a.method, concrete, strings.NewReader(a.body))
					// A JSON client: script clients of /create and /start
					// get a script that prints the problem, by design.
					r.Header.Set("Accept", wire.MediaJSON)
					if a.token != "" {
						r.Header.Set("Authorization", "Bearer "+a.token)
					}
					w := httptest.NewRecorder()
					s.ServeHTTP(w, r)
					if w.Code < 400 {
						continue
					}
					refused++
					where := a.method + " " + concrete + " (" + a.name + ")"
					if ct := w.Header().Get("Content-Type"); ct != wire.MediaProblem {
						t.Errorf("%s: got %d with Content-Type %q, want %s; body %q", where, w.Code, ct, wire.MediaProblem, w.Body)
						continue
					}
					var p wire.Problem
					if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
						t.Errorf("%s: problem document: %v", where, err)
						continue
					}
					if want := problem.TypeBase + p.Code; p.Code == "" || p.Type != want {
						t.Errorf("%s: got type %q code %q, want type %q", where, p.Type, p.Code, want)
					}
					if p.Status != w.Code {
						t.Errorf("%s: got status %d in the body, %d in the answer", where, p.Status, w.Code)
					}
				}
				if refused == 0 {
					t.Errorf("%s: no attempt was refused; the test proves nothing for it", concrete)
				}
			}
		})
	}
}
