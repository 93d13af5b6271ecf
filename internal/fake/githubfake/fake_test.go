package githubfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

func TestFake(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := New(7, &key.PublicKey)
	defer s.Close()
	s.AddInstallation(1, "o/r")

	jwtFor := func(iss string, iat, exp time.Time, k *rsa.PrivateKey) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
			Issuer: iss, IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(exp),
		}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	call := func(method, path, auth, body string) int {
		req, _ := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tt := range []struct {
		name string
		auth string
		want int
	}{
		{"no jwt", "", http.StatusUnauthorized},
		{"other key", "Bearer " + jwtFor("7", now, now.Add(time.Minute), other), http.StatusUnauthorized},
		{"other app", "Bearer " + jwtFor("8", now, now.Add(time.Minute), key), http.StatusUnauthorized},
		{"expired", "Bearer " + jwtFor("7", now.Add(-20*time.Minute), now.Add(-10*time.Minute), key), http.StatusUnauthorized},
		{"too long", "Bearer " + jwtFor("7", now, now.Add(time.Hour), key), http.StatusUnauthorized},
		{"good", "Bearer " + jwtFor("7", now.Add(-30*time.Second), now.Add(2*time.Minute), key), http.StatusCreated},
	} {
		if got := call(http.MethodPost, "/app/installations/1/access_tokens", tt.auth, ""); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := call(http.MethodPost, "/app/installations/2/access_tokens", "Bearer "+jwtFor("7", now, now.Add(time.Minute), key), ""); got != http.StatusNotFound {
		t.Errorf("unknown installation: got %d, want 404", got)
	}

	// An installation token reaches the installation's repositories only,
	// until it expires.
	s.mu.Lock()
	s.tokens["ghs_live"] = token{installation: 1, expires: now.Add(time.Hour)}
	s.tokens["ghs_old"] = token{installation: 1, expires: now.Add(-time.Second)}
	s.mu.Unlock()
	react := func(tok, repo, content string) int {
		return call(http.MethodPost, "/api/v3/repos/"+repo+"/issues/comments/5/reactions", "token "+tok, `{"content":"`+content+`"}`)
	}
	for _, tt := range []struct {
		tok, repo, content string
		want               int
	}{
		{"ghs_live", "o/r", "eyes", http.StatusCreated},
		{"ghs_live", "o/r", "eyes", http.StatusOK},
		{"ghs_live", "o/r", "thumbsup", http.StatusUnprocessableEntity},
		{"ghs_live", "o/other", "eyes", http.StatusNotFound},
		{"ghs_old", "o/r", "rocket", http.StatusUnauthorized},
		{"ghs_none", "o/r", "rocket", http.StatusUnauthorized},
	} {
		if got := react(tt.tok, tt.repo, tt.content); got != tt.want {
			t.Errorf("react %s with %s on %s: got %d, want %d", tt.content, tt.tok, tt.repo, got, tt.want)
		}
	}
	if got := len(s.Reactions()); got != 1 {
		t.Errorf("reactions: got %d, want 1", got)
	}
	s.Fail(RouteComment, http.StatusBadGateway)
	comment := func() int {
		return call(http.MethodPost, "/repos/o/r/issues/3/comments", "token ghs_live", `{"body":"hi"}`)
	}
	if got := comment(); got != http.StatusBadGateway {
		t.Errorf("injected failure: got %d, want 502", got)
	}
	if got := comment(); got != http.StatusCreated {
		t.Errorf("after the failure: got %d, want 201", got)
	}
	if cs := s.Comments(); len(cs) != 1 || cs[0].Number != 3 || cs[0].Body != "hi" {
		t.Errorf("comments: got %+v", cs)
	}
	if got := s.Requests(RouteComment); got != 2 {
		t.Errorf("comment requests: got %d, want 2", got)
	}
}

// TestFakePermission answers the collaborator-permission lookup from the
// model of accounts, members and roles, as GitHub documents it.
func TestFakePermission(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := New(7, &key.PublicKey)
	defer s.Close()
	s.AddInstallation(1, "alice/tool", "alice/secret", "octo-org/public", "octo-org/private")
	s.AddInstallation(2, "octo-org/private")
	s.SetGrants(2, map[string]string{"pull_requests": "write"})
	s.SetPrivate("alice/secret", true)
	s.SetRole("alice/tool", "bob", "write")
	s.AddOrganization("octo-org", "none")
	s.SetPrivate("octo-org/private", true)
	s.AddMember("octo-org", "owner", true)
	s.AddMember("octo-org", "member", false)
	s.AddCustomRole("octo-org", "deployer", "write")
	for user, role := range map[string]string{"reader": "read", "triager": "triage", "maintainer": "maintain", "deployer": "deployer", "member": "admin"} {
		s.SetRole("octo-org/public", user, role)
		s.SetRole("octo-org/private", user, role)
	}
	s.mu.Lock()
	s.tokens["ghs_one"] = token{installation: 1, expires: time.Now().Add(time.Hour)}
	s.tokens["ghs_two"] = token{installation: 2, expires: time.Now().Add(time.Hour)}
	s.mu.Unlock()

	for _, tt := range []struct {
		tok, repo, user  string
		status           int
		permission, role string
	}{
		{"ghs_one", "alice/tool", "alice", 200, "admin", "admin"},
		{"ghs_one", "alice/tool", "Bob", 200, "write", "write"},
		{"ghs_one", "alice/tool", "stranger", 200, "read", "read"},
		{"ghs_one", "alice/secret", "stranger", 404, "", ""},
		{"ghs_one", "alice/secret", "alice", 200, "admin", "admin"},
		{"ghs_one", "octo-org/private", "owner", 200, "admin", "admin"},
		{"ghs_one", "octo-org/private", "member", 200, "admin", "admin"},
		{"ghs_one", "octo-org/private", "nobody", 404, "", ""},
		{"ghs_one", "octo-org/public", "nobody", 200, "read", "read"},
		{"ghs_one", "octo-org/private", "reader", 200, "read", "read"},
		{"ghs_one", "octo-org/private", "triager", 200, "read", "triage"},
		{"ghs_one", "octo-org/private", "maintainer", 200, "write", "maintain"},
		{"ghs_one", "octo-org/private", "deployer", 200, "write", "deployer"},
		{"ghs_one", "octo-org/public", "triager", 200, "read", "triage"},
		{"ghs_two", "octo-org/private", "reader", 403, "", ""}, // no metadata permission
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/repos/"+tt.repo+"/collaborators/"+tt.user+"/permission", nil)
		req.Header.Set("Authorization", "token "+tt.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Permission string `json:"permission"`
			RoleName   string `json:"role_name"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tt.status || got.Permission != tt.permission || got.RoleName != tt.role {
			t.Errorf("%s on %s: got %d %q %q, want %d %q %q", tt.user, tt.repo, resp.StatusCode, got.Permission, got.RoleName, tt.status, tt.permission, tt.role)
		}
	}

	// An organization member whose base role is read reads a private
	// repository; without membership the grant is gone.
	s.AddOrganization("base-org", "read")
	s.AddMember("base-org", "carol", false)
	s.mu.Lock()
	s.repository("base-org/repo").private = true
	role, ok := s.roleOf("base-org", "repo", "carol")
	s.mu.Unlock()
	if !ok || role != "read" {
		t.Errorf("member of a read organization: got %q %t, want read", role, ok)
	}
	s.RemoveMember("base-org", "carol")
	s.mu.Lock()
	_, ok = s.roleOf("base-org", "repo", "carol")
	s.mu.Unlock()
	if ok {
		t.Error("a former member keeps a role")
	}

	// What GitHub refuses, the fake refuses.
	for name, bad := range map[string]func(){
		"triage on a user's repository": func() { s.SetRole("alice/tool", "bob", "triage") },
		"an unknown role":               func() { s.SetRole("octo-org/public", "bob", "owner") },
		"a custom role extending admin": func() { s.AddCustomRole("octo-org", "boss", "admin") },
		"a base role of maintain":       func() { s.AddOrganization("x", "maintain") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: accepted", name)
				}
			}()
			bad()
		}()
	}
}

func TestFakeRateLimits(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := New(7, &key.PublicKey)
	defer s.Close()
	s.AddInstallation(1, "o/r")
	s.mu.Lock()
	s.tokens["ghs_live"] = token{installation: 1, expires: time.Now().Add(time.Hour)}
	s.mu.Unlock()
	comment := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/repos/o/r/issues/3/comments", strings.NewReader(`{"body":"hi"}`))
		req.Header.Set("Authorization", "token ghs_live")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Every call reports the window; the last request of the window
	// passes, the next is refused with the reset time.
	if resp := comment(); resp.StatusCode != http.StatusCreated || resp.Header.Get("X-RateLimit-Remaining") != "4999" || resp.Header.Get("X-RateLimit-Limit") != "5000" {
		t.Fatalf("first call: %d, remaining %q, limit %q; want 201, 4999, 5000", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Limit"))
	}
	reset := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	s.SetRateLimit(1, 5000, 1, reset)
	if resp := comment(); resp.StatusCode != http.StatusCreated || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("last call of the window: %d, remaining %q; want 201, 0", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	resp := comment()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		resp.Header.Get("X-RateLimit-Reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Fatalf("call over the limit: %d, remaining %q, reset %q; want 403, 0, %d", resp.StatusCode,
			resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Reset"), reset.Unix())
	}
	if n := len(s.Comments()); n != 2 {
		t.Fatalf("comments: got %d, want 2 (the refused one is not written)", n)
	}
	s.SetRateLimit(1, 5000, 5000, reset.Add(time.Hour))
	if resp := comment(); resp.StatusCode != http.StatusCreated {
		t.Fatalf("call in the next window: got %d, want 201", resp.StatusCode)
	}

	// A secondary rate limit: 403 or 429, Retry-After when given.
	s.SecondaryRateLimit(RouteComment, http.StatusTooManyRequests, 90*time.Second)
	s.SecondaryRateLimit(RouteComment, http.StatusForbidden, 0)
	if resp := comment(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "90" {
		t.Fatalf("secondary limit: %d, Retry-After %q; want 429, 90", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := comment(); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("secondary limit without Retry-After: %d, Retry-After %q; want 403 and none", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := comment(); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the secondary limits: got %d, want 201", resp.StatusCode)
	}
}

func TestFakeHang(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := New(7, &key.PublicKey)
	first, second := s.Hang(RoutePermission), s.Hang(RoutePermission)
	// A client that gives up is released.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/repos/o/r/collaborators/u/permission", nil)
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	<-first
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a hanging request was answered")
	}
	// Close releases the ones still hanging.
	go func() {
		resp, err := http.Get(s.URL + "/repos/o/r/collaborators/u/permission")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-second
	s.Close()
	<-errc
}
