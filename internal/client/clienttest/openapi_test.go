package clienttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The fake re-implements the /v1 API by hand, so it could drift from the
// real server. TestAgreesWithOpenAPI holds it to the document the server
// publishes (internal/api/openapi.json): every route the fake serves is
// in the document, every answer's status and media type are listed for
// its operation, and every JSON body validates against the operation's
// schema. The document is OpenAPI 3.1, whose schemas are JSON Schema
// 2020-12, so a JSON Schema validator reads them as they are.

const openAPIFile = "../../api/openapi.json"

type openAPI struct {
	// Paths maps a path template to its methods (and its "parameters").
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

// responses is what the document lists for an operation: the media types
// of each status code.
type responses map[string]struct {
	Content map[string]json.RawMessage `json:"content"`
}

func (d *openAPI) responses(tmpl, method string) (responses, error) {
	var op struct {
		Responses responses `json:"responses"`
	}
	err := json.Unmarshal(d.Paths[tmpl][strings.ToLower(method)], &op)
	return op.Responses, err
}

// operation finds the document's path template for method and path, "" if
// none matches.
func (d *openAPI) operation(method, path string) string {
	for tmpl, ops := range d.Paths {
		if _, ok := ops[strings.ToLower(method)]; !ok {
			continue
		}
		re := "^" + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			return tmpl
		}
	}
	return ""
}

// servedRoutes reads the fake's route patterns from its source, so that a
// route added there is checked here without a second list to keep.
func servedRoutes(t *testing.T) []string {
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`mux\.HandleFunc\("([A-Z]+ /[^"]*)"`).FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1]))
	}
	if len(routes) == 0 {
		t.Fatal("found no routes in server.go")
	}
	return routes
}

// pointerEscape escapes one JSON pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func TestAgreesWithOpenAPI(t *testing.T) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	whole, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	const docURL = "https://smek.invalid/openapi.json"
	if err := compiler.AddResource(docURL, whole); err != nil {
		t.Fatal(err)
	}

	for _, route := range servedRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		if tmpl := doc.operation(method, strings.ReplaceAll(path, "{id}", "c-abc123")); tmpl == "" {
			t.Errorf("the fake serves %s, which the document does not have", route)
		}
	}

	hit := map[string]bool{}      // "POST /v1/clusters"
	answered := map[string]bool{} // "POST /v1/clusters 201"
	check := func(method, path string, status int, header http.Header, body []byte) {
		tmpl := doc.operation(method, path)
		if tmpl == "" {
			t.Errorf("%s %s: not in the document", method, path)
			return
		}
		op := method + " " + tmpl
		hit[op] = true
		answered[fmt.Sprintf("%s %d", op, status)] = true
		all, err := doc.responses(tmpl, method)
		if err != nil {
			t.Errorf("%s: %v", op, err)
			return
		}
		resp, ok := all[strconv.Itoa(status)]
		if !ok {
			t.Errorf("%s answered %d, which the document does not list", op, status)
			return
		}
		media, _, err := mime.ParseMediaType(header.Get("Content-Type"))
		if err != nil {
			t.Errorf("%s %d: Content-Type %q: %v", op, status, header.Get("Content-Type"), err)
			return
		}
		if _, ok := resp.Content[media]; !ok {
			t.Errorf("%s %d answered %s, which the document does not list", op, status, media)
			return
		}
		if media != "application/json" && media != "application/problem+json" {
			return
		}
		ptr := fmt.Sprintf("%s#/paths/%s/%s/responses/%d/content/%s/schema", docURL,
			pointerEscape(tmpl), strings.ToLower(method), status, pointerEscape(media))
		sch, err := compiler.Compile(ptr)
		if err != nil {
			t.Errorf("%s %d: schema: %v", op, status, err)
			return
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Errorf("%s %d: body %s: %v", op, status, body, err)
			return
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s %d: the body does not fit the document:\n%s\n%v", op, status, body, err)
		}
	}

	const token = "smek_test"
	s := NewServer(token)
	s.Close()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		s.routes().ServeHTTP(rec, r)
		check(r.Method, r.URL.Path, rec.Code, rec.Header(), rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(s.Close)
	s.MaxClusters = 1

	call := func(method, path, bearer, accept, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}

	call("GET", "/v1/versions", token, "", "")
	call("GET", "/v1/versions", "wrong", "", "")
	call("POST", "/v1/clusters", token, "", "{not json")
	call("POST", "/v1/clusters", token, "", `{"enable-privileged": true}`)
	status, b := call("POST", "/v1/clusters", token, "", `{}`)
	var created struct {
		ClusterID string `json:"cluster-id"`
	}
	if err := json.Unmarshal(b, &created); err != nil || status != http.StatusCreated || created.ClusterID == "" {
		t.Fatalf("create: %d %s", status, b)
	}
	id := created.ClusterID
	call("POST", "/v1/clusters", token, "", `{}`) // over MaxClusters
	call("GET", "/v1/clusters", token, "", "")
	call("GET", "/v1/clusters/"+id, token, "", "")
	call("GET", "/v1/clusters/c-zzzzzz", token, "", "")
	call("GET", "/v1/clusters/"+id+"/kubeconfig", token, "", "")
	call("GET", "/v1/clusters/"+id+"/kubeconfig", token, "application/yaml", "")
	call("GET", "/v1/clusters/"+id+"/events", token, "", "")
	call("POST", "/v1/clusters/"+id+"/extend", token, "", `{"minutes": 15}`)
	call("POST", "/v1/clusters/"+id+"/keep", token, "", `{"minutes": 30, "reason": "job e2e failed"}`)
	call("POST", "/v1/clusters/"+id+"/keep", token, "", `{}`)
	call("POST", "/v1/clusters/"+id+"/stop", token, "", `{}`)
	call("POST", "/v1/clusters/"+id+"/stop", token, "", `{}`)
	call("POST", "/v1/clusters/"+id+"/start", token, "", `{}`)
	call("POST", "/v1/clusters/"+id+"/terminate", token, "", `{}`)
	call("POST", "/v1/clusters/"+id+"/terminate", token, "", `{}`)

	// Every route the fake serves was exercised, at least its success.
	for _, route := range servedRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		ok := false
		for op := range hit {
			ok = ok || op == method+" "+doc.operation(method, strings.ReplaceAll(path, "{id}", "c-abc123"))
		}
		if !ok {
			t.Errorf("the test did not call %s", route)
		}
	}
	for _, want := range []string{"GET /v1/versions 401", "POST /v1/clusters 400", "POST /v1/clusters 403",
		"POST /v1/clusters 429", "GET /v1/clusters/{id} 404", "POST /v1/clusters/{id}/terminate 409"} {
		if !answered[want] {
			t.Errorf("no %s among the answers checked: %v", want, answered)
		}
	}

	// A guard against a check that passes for the wrong reason: the
	// schema it found refuses a body of the wrong shape.
	sch, err := compiler.Compile(docURL + "#/paths/" + pointerEscape("/v1/clusters") + "/post/responses/201/content/application~1json/schema")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(map[string]any{"cluster-id": json.Number("5")}); err == nil {
		t.Error("the create answer's schema accepts a numeric cluster-id")
	}
}
