package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/githubapp"
)

// TestManifest pins the App's permissions and events: exactly what it
// uses, and every subscribed event is one the App handles.
func TestManifest(t *testing.T) {
	b, err := os.ReadFile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name           string               `json:"name"`
		HookAttributes struct{ URL string } `json:"hook_attributes"`
		Public         bool                 `json:"public"`
		Permissions    map[string]string    `json:"default_permissions"`
		Events         []string             `json:"default_events"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	wantPerms := map[string]string{
		"actions":       "read",  // workflow_run and workflow_job events
		"issues":        "read",  // issue_comment events
		"members":       "read",  // member, membership, organization and team events: cached access forgotten
		"metadata":      "read",  // the collaborator-permission lookup
		"pull_requests": "write", // pull_request events; replies and reactions on PR comments
	}
	if len(m.Permissions) != len(wantPerms) {
		t.Errorf("permissions: got %v, want %v", m.Permissions, wantPerms)
	}
	for k, v := range wantPerms {
		if m.Permissions[k] != v {
			t.Errorf("permission %s: got %q, want %q", k, m.Permissions[k], v)
		}
	}
	if want := []string{"issue_comment", "member", "membership", "organization", "pull_request", "team", "workflow_job", "workflow_run"}; !slices.Equal(m.Events, want) {
		t.Errorf("events: got %v, want %v (installation events come to every App unasked)", m.Events, want)
	}
	if m.Public || !strings.HasSuffix(m.HookAttributes.URL, githubapp.WebhookPath) {
		t.Errorf("got public %v, hook %q; want a private App posting to %s", m.Public, m.HookAttributes.URL, githubapp.WebhookPath)
	}

	// Each event is one the App acts on, not one it ignores as unknown.
	app, err := githubapp.New(githubapp.Config{Secret: []byte("s"), Clusters: &githubapp.APIClusters{}, Deliveries: deliveries(func(string) bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	for _, event := range m.Events {
		body := []byte(`{"action":"opened"}`)
		req := httptest.NewRequest(http.MethodPost, githubapp.WebhookPath, bytes.NewReader(body))
		req.Header.Set(githubapp.EventHeader, event)
		req.Header.Set(githubapp.DeliveryHeader, "d")
		req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte("s"), body))
		w := httptest.NewRecorder()
		app.ServeHTTP(w, req)
		if strings.Contains(w.Body.String(), "does not handle") {
			t.Errorf("the manifest subscribes to %s, which the App does not handle", event)
		}
	}
}
