package api

import (
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/sqlite"
)

// A revoked token and one that never existed get the same answer, byte
// for byte: status, headers and body (the request id is sent, so that it
// is the same too). Anything else tells a guesser that a token was real.
func TestRevokedAndUnknownTokensAnswerAlike(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := db.EnsureAccount(ctx, "ci", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	revoked, prefix, hash := auth.NewToken()
	if _, err := db.CreateToken(ctx, sqlite.NewToken{AccountID: a.ID, Prefix: prefix, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	unknown, _, _ := auth.NewToken()
	srv := New(Config{Auth: &auth.Authenticator{Tokens: db}, DB: db})

	tests := []struct{ method, path, accept, body string }{
		{"GET", "/v1/clusters", "application/json", ""},
		{"POST", "/v1/clusters", "application/json", `{"wait": "1m"}`},
		{"GET", "/list", "", ""},
		{"POST", "/create", "*/*", `"notification-email": "you@example.com"`}, // curl | sh -: a script
		{"POST", "/start", "application/yaml", `"cluster-id": "c-aaabbb"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			answer := func(token string) string {
				r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
				r.Header.Set("Authorization", "Bearer "+token)
				r.Header.Set("X-Request-Id", "same-request-id")
				if tt.accept != "" {
					r.Header.Set("Accept", tt.accept)
				}
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				b, err := httputil.DumpResponse(w.Result(), true)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			got, want := answer(revoked), answer(unknown)
			if !strings.HasPrefix(want, "HTTP/1.1 401") {
				t.Fatalf("unknown token: got\n%s\nwant a 401", want)
			}
			if got != want {
				t.Errorf("revoked token answered\n%s\nunknown token answered\n%s", got, want)
			}
		})
	}
}
