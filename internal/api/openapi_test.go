package api

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/wire"
)

// openAPI is the part of an OpenAPI 3.1 document the tests look at.
type openAPI struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	// Components.Schemas maps a schema name to its definition.
	Components struct {
		Schemas         map[string]openAPISchema   `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type openAPISchema struct {
	Type       string                     `json:"type"`
	Properties map[string]json.RawMessage `json:"properties"`
}

type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("got openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// routePatterns reads the method patterns registered by routes() from the
// package's source, so that a route added there without documentation
// fails this test.
func routePatterns(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(p, " ") { // method patterns only; "/" is the catch-all
				patterns = append(patterns, p)
			}
			return true
		})
	}
	if len(patterns) < 10 {
		t.Fatalf("found only %d route patterns in the source: %q", len(patterns), patterns)
	}
	return patterns
}

func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, p := range routePatterns(t) {
		method, path, _ := strings.Cut(p, " ")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %q: path %s is not in openapi.json", p, path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("route %q: openapi.json has %s without %s", p, path, method)
		}
	}
}

// Every documented operation is served by the route it claims, asked of
// the server's own mux.
func TestOpenAPIOperationsAreServed(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newTestServer(t)
	for path, ops := range doc.Paths {
		for method := range ops {
			if !slices.Contains(httpMethods, method) {
				continue // parameters, summary
			}
			m := strings.ToUpper(method)
			concrete := strings.ReplaceAll(path, "{id}", "c-abc123")
			_, pattern := s.mux.Handler(httptest.NewRequest(m, concrete, nil))
			if want := m + " " + path; pattern != want {
				t.Errorf("%s %s is documented but served by %q", m, path, pattern)
			}
		}
	}
}

func TestOpenAPIOperationsAreComplete(t *testing.T) {
	doc := loadOpenAPI(t)
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", where, other, op.OperationID)
			}
			ids[op.OperationID] = where
			if len(op.Responses) == 0 {
				t.Errorf("%s documents no responses", where)
			}
		}
	}
	if _, ok := doc.Components.SecuritySchemes["bearer"]; !ok {
		t.Error("openapi.json has no bearer security scheme")
	}
}

// Every $ref points at a schema that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var all any
	if err := json.Unmarshal(openAPIDoc, &all); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				name, ok := strings.CutPrefix(ref, "#/components/schemas/")
				if _, exists := doc.Components.Schemas[name]; !ok || !exists {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(all)
	if n == 0 {
		t.Error("openapi.json has no $ref at all")
	}
}

// The documented schemas have exactly the fields of the wire types the
// server speaks.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"CreateRequest": wire.CreateRequest{}, "StopRequest": wire.StopRequest{}, "StartRequest": wire.StartRequest{},
		"ExtendRequest": wire.ExtendRequest{}, "ListItem": wire.ListItem{}, "RunMetadata": wire.RunMetadata{},
		"Timings": wire.Timings{}, "Cluster": wire.Cluster{}, "ClusterList": wire.ClusterList{}, "Event": wire.Event{},
		"EventList": wire.EventList{}, "Versions": wire.Versions{}, "Problem": wire.Problem{},
		"ImageLoad": wire.ImageLoad{}, "Image": wire.Image{},
		"DeliveryRecord": githubapp.DeliveryRecord{}, "DeliveryState": githubapp.DeliveryState{}, "DeliveryList": githubapp.DeliveryList{},
	}
	for name, v := range types {
		sc, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		want := jsonFields(v)
		var got []string
		for p := range sc.Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %q, want the fields of %s %q", name, got, reflect.TypeOf(v), want)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	s := newTestServer(t)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if !json.Valid(w.Body.Bytes()) || w.Body.Len() != len(openAPIDoc) {
		t.Error("GET /v1/openapi.json does not serve the embedded document")
	}
}

// The documented problem codes are exactly the application error codes,
// so that a new code cannot go undocumented.
func TestOpenAPIProblemCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"Problem"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Components.Schemas.Problem.Properties.Code.Enum
	var want []string
	for _, c := range cluster.Codes() {
		want = append(want, string(c))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Problem.code lists %q, want the application error codes %q", got, want)
	}
}
