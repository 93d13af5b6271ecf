package api

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// FuzzDecodeCreate feeds arbitrary bodies to the request decoder. Whatever
// comes in, the answer is a decoded request or an application error that
// becomes a 400 or 413 — never a panic, never an internal error. A body
// that decodes must survive a round trip through standard JSON unchanged.
func FuzzDecodeCreate(f *testing.F) {
	for _, name := range []string{"seed-create.body", "seed-stop.body", "seed-start.body"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"k8s-version": "1.36.3", "minutes-to-live": 60, "keep-cluster": true, "notification-email": "dev@example.com", "enable-privileged": false, "cluster-size": "1-mid"}`,
		`"minutes-to-live": 5, // braceless`,
		"// leading comment\n\"cluster-size\": \"1-mid\",\n",
		`{/* block */ "k8s-version": "1.36",}`,
		`{"wait": "90s", "run": {"repository": "o/r", "repository-id": 1, "run-id": 2, "run-attempt": 1, "job": "e2e", "runner-name": "r1", "pull-request": 7, "verified": true}}`,
		`{"run": {"run-id": "x"}}`,
		`{"minutes-to-live": "abc"}`,
		`{"nodes": 3}`,
		`[1, 2]`,
		`"x"`,
		`{} trailing`,
		`{"a": {"b": {"c": [1, {"d": null}]}}}`,
		"{\"minutes-to-live\": 1e400}",
		"{\"k8s-version\": \"\\ud800\"}",
		"\"\xff\": 1",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.CreateRequest
		err := decodeJSON(body, &req)
		if err != nil {
			e, ok := errors.AsType[*cluster.Error](err)
			if !ok {
				t.Fatalf("decode %q: got %T %v, want a *cluster.Error", body, err, err)
			}
			if e.Code != cluster.EINVALID && e.Code != cluster.ETOOLARGE {
				t.Fatalf("decode %q: got code %s, want invalid or too-large", body, e.Code)
			}
			if e.Message == "" {
				t.Fatalf("decode %q: an error without a message", body)
			}
			return
		}
		std, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %+v: %v", req, err)
		}
		var again wire.CreateRequest
		if err := decodeJSON(std, &again); err != nil {
			t.Fatalf("decode %q decoded, but its standard form %s does not: %v", body, std, err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip of %q changed the request: %s became %s", body, std, dump(again))
		}
	})
}
