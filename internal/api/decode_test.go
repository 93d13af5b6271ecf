package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/problem"
	"github.com/smek/action/internal/wire"
)

func ptr[T any](v T) *T { return &v }

// readBody returns a request body kept in testdata. The seed-*.body files
// hold exactly what the announcement's curl examples send with -d, including
// the non-breaking space Cloudflare put into the e-mail address.
func readBody(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantAppError fails unless err is a *cluster.Error with this code and
// field.
func wantAppError(t *testing.T, err error, code cluster.Code, field string) *cluster.Error {
	t.Helper()
	e, ok := errors.AsType[*cluster.Error](err)
	if !ok {
		t.Fatalf("got error %v (%T), want a *cluster.Error with code %s", err, err, code)
	}
	if e.Code != code || e.Field != field {
		t.Fatalf("got code %q field %q (%q), want code %q field %q", e.Code, e.Field, e.Message, code, field)
	}
	return e
}

func TestDecodeSeedCreateBody(t *testing.T) {
	var got wire.CreateRequest
	if err := decodeJSON(readBody(t, "seed-create.body"), &got); err != nil {
		t.Fatalf("the seed's own /create body: %v", err)
	}
	want := wire.CreateRequest{
		K8sVersion:        ptr("1.27.4"),
		MinutesToLive:     ptr(120),
		KeepCluster:       ptr(false),
		NotificationEmail: ptr("[email\u00a0protected]"),
		EnablePrivileged:  ptr(true),
		ClusterSize:       ptr("1-mid"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s, want %s", dump(got), dump(want))
	}
}

func TestDecodeSeedStopBody(t *testing.T) {
	var got wire.StopRequest
	if err := decodeJSON(readBody(t, "seed-stop.body"), &got); err != nil {
		t.Fatalf("the seed's own /stop body: %v", err)
	}
	if got.ClusterID == nil || *got.ClusterID != "c-aaabbb" || got.ForceTerminate == nil || *got.ForceTerminate {
		t.Errorf("got %s, want cluster-id c-aaabbb and force-terminate false", dump(got))
	}
}

// The seed's /start example has a stray quote (""c-aaabbb"): it must be a
// clear 400, not a panic or a silently empty id.
func TestDecodeSeedStartTypo(t *testing.T) {
	var got wire.StartRequest
	err := decodeJSON(readBody(t, "seed-start.body"), &got)
	e := wantAppError(t, err, cluster.EINVALID, "")
	if !strings.Contains(e.Message, "not valid JSON") {
		t.Errorf("got message %q, want it to say the body is not valid JSON", e.Message)
	}
}

func TestDecodeAcceptsRelaxedJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want wire.CreateRequest
	}{
		{"plain object", `{"minutes-to-live": 5}`, wire.CreateRequest{MinutesToLive: ptr(5)}},
		{"trailing comma", `{"minutes-to-live": 5, "keep-cluster": true,}`, wire.CreateRequest{MinutesToLive: ptr(5), KeepCluster: ptr(true)}},
		{"line comments", "{\n// why\n\"cluster-size\": \"1-mid\" // the only size\n}", wire.CreateRequest{ClusterSize: ptr("1-mid")}},
		{"block comment", `{/* a */ "k8s-version": /* b */ "1.36" /* c */}`, wire.CreateRequest{K8sVersion: ptr("1.36")}},
		{"braceless, one field", `"minutes-to-live": 7`, wire.CreateRequest{MinutesToLive: ptr(7)}},
		{"braceless, comment on the last line without newline", `"minutes-to-live": 7 // seven`, wire.CreateRequest{MinutesToLive: ptr(7)}},
		{"braceless, trailing comma", "\n  \"keep-cluster\": false,\n", wire.CreateRequest{KeepCluster: ptr(false)}},
		{"braceless after a leading comment", "// a cluster\n\"cluster-size\": \"1-mid\"", wire.CreateRequest{ClusterSize: ptr("1-mid")}},
		{"braceless after a block comment", "/* a cluster */ \"cluster-size\": \"1-mid\"", wire.CreateRequest{ClusterSize: ptr("1-mid")}},
		{"empty object", `{}`, wire.CreateRequest{}},
		{"null means absent", `{"minutes-to-live": null}`, wire.CreateRequest{}},
		{"CRLF line ends", "{\r\n\"minutes-to-live\": 3,\r\n}\r\n", wire.CreateRequest{MinutesToLive: ptr(3)}},
		{"nested run metadata", `{"run": {"repository": "o/r", "run-id": 42, "pull-request": 7,}}`,
			wire.CreateRequest{Run: &wire.RunMetadata{Repository: "o/r", RunID: 42, PullRequest: 7}}},
		{"wait", `{"wait": "90s"}`, wire.CreateRequest{Wait: ptr("90s")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got wire.CreateRequest
			if err := decodeJSON([]byte(tt.body), &got); err != nil {
				t.Fatalf("decode %q: %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s, want %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
		// words the message must contain
		says []string
	}{
		{"empty", ``, "", []string{"empty"}},
		{"blanks only", " \n\t ", "", []string{"empty"}},
		{"comment only", "// nothing here\n", "", []string{"not valid JSON"}},
		{"array", `[{"minutes-to-live": 5}]`, "", []string{"JSON object"}},
		{"string", `"minutes-to-live"`, "", []string{"JSON object"}},
		{"number", `42`, "", []string{"JSON object"}},
		{"true", `true`, "", []string{"JSON object"}},
		{"null", `null`, "", []string{"JSON object"}},
		{"trailing garbage", `{"minutes-to-live": 5} x`, "", []string{"not valid JSON"}},
		{"two objects", `{} {}`, "", []string{"not valid JSON"}},
		{"unterminated", `{"minutes-to-live": 5`, "", []string{"not valid JSON"}},
		{"braceless garbage", `"a": 1 } {`, "", []string{"not valid JSON"}},
		{"braceless key only", "// c\n\"minutes-to-live\":", "", []string{"not valid JSON"}},
		{"unknown field", `{"nodes": 3}`, "nodes", []string{`"nodes"`, "minutes-to-live", "notification-email"}},
		{"unknown field, braceless", `"node-count": 3, // more`, "node-count", []string{`"node-count"`}},
		{"field names are exact", `{"Minutes-To-Live": 5}`, "Minutes-To-Live", []string{"unknown field"}},
		{"seed field name with underscores", `{"minutes_to_live": 5}`, "minutes_to_live", []string{"unknown field"}},
		{"string for a number", `{"minutes-to-live": "abc"}`, "minutes-to-live", []string{"minutes-to-live", "whole number", "string"}},
		{"fraction for a number", `{"minutes-to-live": 1.5}`, "minutes-to-live", []string{"whole number"}},
		{"huge number", `{"minutes-to-live": 99999999999999999999999}`, "minutes-to-live", []string{"whole number"}},
		{"string for a bool", `{"keep-cluster": "yes"}`, "keep-cluster", []string{"keep-cluster", "true or false"}},
		{"number for a string", `{"k8s-version": 1.27}`, "k8s-version", []string{"k8s-version", "a string", "number"}},
		{"object for a string", `{"notification-email": {"a": 1}}`, "notification-email", []string{"notification-email", "a string"}},
		{"string for an object", `{"run": "x"}`, "run", []string{"run", "an object"}},
		{"wrong type inside run", `{"run": {"run-id": "abc"}}`, "run.run-id", []string{"run.run-id", "whole number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got wire.CreateRequest
			err := decodeJSON([]byte(tt.body), &got)
			e := wantAppError(t, err, cluster.EINVALID, tt.field)
			for _, w := range tt.says {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
		})
	}
}

// A long unknown field name is shortened in the message, so that a client
// cannot make the server echo 64 KiB back in every error.
func TestDecodeShortensLongFieldNames(t *testing.T) {
	name := strings.Repeat("x", 5000)
	err := decodeJSON([]byte(`{"`+name+`": 1}`), &wire.CreateRequest{})
	e := wantAppError(t, err, cluster.EINVALID, name)
	if len(e.Message) > 400 {
		t.Errorf("message is %d bytes long, want it shortened", len(e.Message))
	}
}

func postBody(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/create", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestDecodeBodyLimit(t *testing.T) {
	// A valid object padded with blanks to exactly the limit is fine.
	obj := `{"minutes-to-live": 5}`
	atLimit := obj + strings.Repeat(" ", maxBody-len(obj))
	var got wire.CreateRequest
	if err := decodeBody(httptest.NewRecorder(), postBody(atLimit), &got); err != nil {
		t.Fatalf("a body of exactly %d bytes: %v", maxBody, err)
	}
	if got.MinutesToLive == nil || *got.MinutesToLive != 5 {
		t.Errorf("got %s, want minutes-to-live 5", dump(got))
	}

	err := decodeBody(httptest.NewRecorder(), postBody(atLimit+" "), &wire.CreateRequest{})
	e := wantAppError(t, err, cluster.ETOOLARGE, "")
	if !strings.Contains(e.Message, "64 KiB") {
		t.Errorf("got message %q, want it to name the 64 KiB limit", e.Message)
	}
	if got := problem.From(err, "/").Status; got != http.StatusRequestEntityTooLarge {
		t.Errorf("got status %d, want 413", got)
	}
}

// The limit holds however the body arrives: a chunked body has no
// Content-Length to check up front.
func TestDecodeBodyLimitChunked(t *testing.T) {
	r := postBody("")
	r.Body = readerOnly{strings.NewReader(`"a": "` + strings.Repeat("a", 1<<20) + `"`)}
	r.ContentLength = -1
	err := decodeBody(httptest.NewRecorder(), r, &wire.CreateRequest{})
	wantAppError(t, err, cluster.ETOOLARGE, "")
}

type readerOnly struct{ *strings.Reader }

func (readerOnly) Close() error { return nil }

// Through the whole server: the status codes and the problem document a
// client sees for bad bodies. No backend is needed, the body is refused
// before the lifecycle is reached.
func TestServerRefusesBadBodies(t *testing.T) {
	srv := newTestServer(t)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		field  string
	}{
		{"too large", "/create", `{"notification-email": "` + strings.Repeat("a", maxBody) + `"}`, http.StatusRequestEntityTooLarge, ""},
		{"unknown field", "/create", `"nodes": 3`, http.StatusBadRequest, "nodes"},
		{"wrong type", "/create", `"minutes-to-live": "abc"`, http.StatusBadRequest, "minutes-to-live"},
		{"wait on the seed API", "/create", `"wait": "1m"`, http.StatusBadRequest, "wait"},
		{"bad cluster id", "/stop", `"cluster-id": "c-AAA"`, http.StatusBadRequest, "cluster-id"},
		{"stop field on start", "/start", `"force-terminate": true`, http.StatusBadRequest, "force-terminate"},
		{"empty stop", "/stop", `{}`, http.StatusBadRequest, "cluster-id"},
		{"v1 extend without minutes", "/v1/clusters/c-aaabbb/extend", `{}`, http.StatusBadRequest, "minutes"},
		{"v1 bad wait", "/v1/clusters", `{"wait": "soon"}`, http.StatusBadRequest, "wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postBody(tt.body)
			r.URL.Path = tt.path
			r.Header.Set("Accept", "application/json")
			r.Header.Set("Authorization", "Bearer smek_test")
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			p := decodeProblem(t, w)
			if w.Code != tt.status || p.Status != tt.status {
				t.Fatalf("got status %d (document %d: %s), want %d", w.Code, p.Status, p.Detail, tt.status)
			}
			if p.Field != tt.field {
				t.Errorf("got field %q, want %q", p.Field, tt.field)
			}
			if p.Instance != tt.path || p.RequestID == "" || !strings.HasPrefix(p.Type, problem.TypeBase) {
				t.Errorf("problem document lacks instance, request-id or type: %+v", p)
			}
		})
	}
}

// Unknown fields inside run are refused like top-level ones, and field
// names there are exact too.
func TestDecodeRejectsNestedUnknownFields(t *testing.T) {
	for body, field := range map[string]string{
		`{"run": {"run-id": 3, "bogus": 1}}`: "run.bogus",
		`{"run": {"RUN-ID": 5}}`:             "run.RUN-ID",
	} {
		err := decodeJSON([]byte(body), &wire.CreateRequest{})
		wantAppError(t, err, cluster.EINVALID, field)
	}
}
