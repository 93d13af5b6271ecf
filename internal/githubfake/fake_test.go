package githubfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
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
