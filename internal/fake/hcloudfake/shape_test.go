package hcloudfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fixtures are copies of the Hetzner Cloud API docs examples from the
// project's shared fixtures (see testdata/examples/SOURCES.md).
const fixtures = "testdata/examples"

// missingKeys lists the keys of want (a docs example) that got lacks,
// recursively; arrays are compared by their first elements.
func missingKeys(path string, want, got any) []string {
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			if got == nil {
				return nil // a null object: the key is there
			}
			return []string{path + " (not an object)"}
		}
		for k, wv := range w {
			// Label maps are data, not shape. The docs' applied_to entry
			// merges the server and label_selector variants into one.
			if k == "labels" && path != "" || (strings.HasSuffix(path, "applied_to[0]") && (k == "label_selector" || k == "applied_to_resources")) {
				if _, ok := g[k]; !ok && k == "labels" {
					out = append(out, path+"."+k)
				}
				continue
			}
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingKeys(path+"."+k, wv, gv)...)
		}
	case []any:
		g, ok := got.([]any)
		if ok && len(w) > 0 && len(g) > 0 {
			out = append(out, missingKeys(path+"[0]", w[0], g[0])...)
		}
	}
	sort.Strings(out)
	return out
}

// TestResponsesHaveTheDocumentedShape compares the fake's answers with the
// docs' examples key by key.
func TestResponsesHaveTheDocumentedShape(t *testing.T) {
	if _, err := os.Stat(fixtures); err != nil {
		t.Fatalf("fixtures not found: %v", err)
	}
	s, c := start(t, Config{})
	res := createServer(t, c, "shape", map[string]string{"a": "b"})
	_ = res
	raw := func(method, path, body string) any {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer test-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
		return v
	}
	pub := testPublicKey(t)
	keyBody, _ := json.Marshal(map[string]any{"name": "k", "public_key": pub, "labels": map[string]string{"a": "b"}})
	id := func(v any, kind string) string {
		return jsonNumber(v.(map[string]any)[kind].(map[string]any)["id"])
	}
	created := raw("POST", "/servers", `{"name":"shape2","server_type":"ccx33","image":"ubuntu-24.04","labels":{"a":"b"}}`)
	sid := id(created, "server")
	img := raw("POST", "/servers/"+sid+"/actions/create_image", `{"type":"snapshot","description":"d","labels":{"a":"b"}}`)
	fw := raw("POST", "/firewalls", `{"name":"fw","labels":{"a":"b"},"rules":[{"direction":"in","protocol":"tcp","port":"80","source_ips":["0.0.0.0/0"]}],"apply_to":[{"type":"server","server":{"id":`+sid+`}}]}`)
	cases := []struct {
		fixture string
		got     any
	}{
		{"servers__create_a_server.response.json", created},
		{"servers__get_a_server.response.json", raw("GET", "/servers/"+sid, "")},
		{"servers__get_all_servers.response.json", raw("GET", "/servers?label_selector=a%3Db", "")},
		{"servers__update_a_server.response.json", raw("PUT", "/servers/"+sid, `{"labels":{"a":"c"}}`)},
		{"server_actions__create_image_from_a_server.response.json", img},
		{"actions__get_an_action.response.json", raw("GET", "/actions/"+id(created, "action"), "")},
		{"actions__get_multiple_actions.response.json", raw("GET", "/actions?id="+id(created, "action"), "")},
		{"images__get_all_images.response.json", raw("GET", "/images?type=snapshot", "")},
		{"images__get_an_image.response.json", raw("GET", "/images/"+id(img, "image"), "")},
		{"ssh_keys__create_an_ssh_key.response.json", raw("POST", "/ssh_keys", string(keyBody))},
		{"ssh_keys__get_all_ssh_keys.response.json", raw("GET", "/ssh_keys", "")},
		{"firewalls__create_a_firewall.response.json", fw},
		{"firewalls__get_all_firewalls.response.json", raw("GET", "/firewalls", "")},
		{"locations__get_all_locations.response.json", raw("GET", "/locations", "")},
		{"server_types__get_all_server_types.response.json", raw("GET", "/server_types", "")},
		{"server_types__get_a_server_type.response.json", raw("GET", "/server_types/98", "")},
		{"server_actions__power_on_a_server.response.json", raw("POST", "/servers/"+sid+"/actions/poweron", "")},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(fixtures, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			// The docs' examples show fields that exist only for some
			// resources (iso, placement_group, deprecation); an absent
			// key is still an error, a null value is not.
			if miss := missingKeys("", want, tc.got); len(miss) > 0 {
				t.Errorf("keys missing compared with the docs: %v", miss)
			}
		})
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
