package githubapp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
		want Command
		err  string
	}{
		{"/smek create", true, Command{Name: CmdCreate}, ""},
		{"  /smek   CREATE 45 Privileged keep version=v1.36.3  ", true, Command{Name: CmdCreate, Minutes: 45, Privileged: true, Keep: true, Version: "1.36.3"}, ""},
		{"text first\n/smek list\n/smek create", true, Command{Name: CmdList}, ""},
		{"/smek stop c-abc123", true, Command{Name: CmdStop, ClusterID: "c-abc123"}, ""},
		{"/smek start c-abc123", true, Command{Name: CmdStart, ClusterID: "c-abc123"}, ""},
		{"/smek extend c-abc123 30", true, Command{Name: CmdExtend, ClusterID: "c-abc123", Minutes: 30}, ""},
		{"/smek", true, Command{Name: CmdHelp}, ""},
		{"/smek help", true, Command{Name: CmdHelp}, ""},
		{"/smek frobnicate", true, Command{Name: CmdHelp}, `unknown command "frobnicate"`},
		{"/smek create 0", true, Command{Name: CmdHelp}, "minutes must be a whole number"},
		{"/smek create 99999999999999999999", true, Command{Name: CmdHelp}, "minutes must be a whole number"},
		{"/smek create 30 30", true, Command{Name: CmdHelp}, "does not understand \"30\""},
		{"/smek create version=latest!", true, Command{Name: CmdHelp}, "is not a Kubernetes version"},
		{"/smek create please", true, Command{Name: CmdHelp}, "does not understand"},
		{"/smek stop", true, Command{Name: CmdHelp}, "takes one cluster id"},
		{"/smek stop C-ABC123", true, Command{Name: CmdHelp}, "is not a SMEK cluster id"},
		{"/smek extend c-abc123 -5", true, Command{Name: CmdHelp}, "minutes must be"},
		{"/smek list all", true, Command{Name: CmdHelp}, "takes no arguments"},
		{"/smeky create", false, Command{}, ""},
		{"> /smek create", false, Command{}, ""},
		{"please /smek create", false, Command{}, ""},
		{"", false, Command{}, ""},
	}
	for _, tt := range tests {
		got, ok := ParseCommand(tt.body)
		if ok != tt.ok {
			t.Errorf("ParseCommand(%q) ok = %v, want %v", tt.body, ok, tt.ok)
			continue
		}
		gotErr := ""
		if got.Err != nil {
			gotErr = got.Err.Error()
		}
		got.Err = nil
		if got != tt.want || (tt.err == "") != (gotErr == "") || !strings.Contains(gotErr, tt.err) {
			t.Errorf("ParseCommand(%q) = %+v, %q; want %+v, %q", tt.body, got, gotErr, tt.want, tt.err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/smek create 30 privileged keep version=1.36.3", "/smek extend c-abc123 30",
		"/smek stop c-abc123", "/smek", "x\n/smek list", "/smek create \xff", "/smek ünknown-ünïcode-ünknown-ünïcode"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c, ok := ParseCommand(body)
		if !ok {
			return
		}
		switch c.Name {
		case CmdStop, CmdStart, CmdExtend:
			if _, err := cluster.ParseID(c.ClusterID); err != nil || c.Err != nil {
				t.Fatalf("%q: %s with bad id %q or error %v", body, c.Name, c.ClusterID, c.Err)
			}
		case CmdCreate, CmdList:
		case CmdHelp:
			if c.Err != nil && strings.HasPrefix(strings.TrimSpace(c.Err.Error()), "/smek") {
				t.Fatalf("%q: an error line that is itself a command: %v", body, c.Err)
			}
		default:
			t.Fatalf("%q: unknown name %q", body, c.Name)
		}
		if c.Minutes < 0 || c.Minutes > maxCommandMinutes || len(c.Version) > maxVersionLen {
			t.Fatalf("%q: out of bounds: %+v", body, c)
		}
	})
}

// compact returns a fixture with only the fields the App reads: Go's
// fuzzer stalls on seeds of tens of kilobytes.
func compact(tb testing.TB, name string) []byte {
	var shape struct {
		// The envelope's fields, at the top so that they win over the
		// envelopes embedded in each event type.
		Action       string           `json:"action"`
		Installation *installationRef `json:"installation,omitempty"`
		Repository   *repositoryRef   `json:"repository,omitempty"`
		workflowRunEvent
		workflowJobEvent
		issueCommentEvent
		installationRepositoriesEvent
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal(fixture(tb, name), &shape); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(shape)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzWebhook sends arbitrary bodies, signed and unsigned, under every
// event the App handles: the answer is never a 5xx and never a panic.
func FuzzWebhook(f *testing.F) {
	for _, name := range []string{"workflow_run.completed.json", "workflow_job.completed.json", "pull_request.closed.json",
		"installation.deleted.json", "issue_comment.created.json", "ping.json"} {
		f.Add(compact(f, name), uint8(0), true)
	}
	f.Add([]byte(`{"action":"completed","workflow_run":{"id":1,"run_attempt":1},"repository":{"id":1}}`), uint8(1), true)
	f.Add([]byte(`{"action":"created","issue":{"number":1,"pull_request":{}},"comment":{"id":1,"body":"/smek create","user":{"login":"a"}},"installation":{"id":1},"repository":{"name":"r","owner":{"login":"o"}}}`), uint8(5), true)
	f.Add([]byte(`{}`), uint8(2), false)

	// No Run: accepted work stays queued, the fuzzer checks the endpoint.
	// Deliveries live in a map: SQLite under coverage instrumentation
	// would slow the fuzzer a thousandfold, and it is tested on its own.
	app, err := New(Config{Secret: []byte(testSecret), Clusters: newMemClusters(nil), Deliveries: &memDeliveries{},
		GitHub: nopGitHub{}, QueueSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	events := []string{"workflow_run", "workflow_job", "pull_request", "installation", "installation_repositories", "issue_comment", "ping", "push"}
	var n int
	f.Fuzz(func(t *testing.T, body []byte, event uint8, signed bool) {
		n++
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		req.Header.Set(EventHeader, events[int(event)%len(events)])
		req.Header.Set(DeliveryHeader, "fuzz-"+strings.Repeat("x", n%3)+string(rune('a'+n%26))+filepath.Base(t.Name()))
		if signed {
			req.Header.Set(SignatureHeader, Sign([]byte(testSecret), body))
		} else {
			req.Header.Set(SignatureHeader, "sha256="+strings.Repeat("0", 64))
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, req)
		_, handled := planners[req.Header.Get(EventHeader)]
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		case !signed && handled && w.Code != http.StatusUnauthorized:
			t.Fatalf("unsigned body: status %d, want 401", w.Code)
		case !handled && w.Code != http.StatusOK:
			t.Fatalf("unhandled event: status %d, want 200 (acknowledged unread)", w.Code)
		}
	})
}

type nopGitHub struct{}

func (nopGitHub) Permission(context.Context, int64, string, string, string) (Access, error) {
	return NoAccess, nil
}
func (nopGitHub) Comment(context.Context, int64, string, string, int, string) error { return nil }
func (nopGitHub) React(context.Context, int64, string, string, int64, string) error { return nil }
