package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOperatorToken: with an operator token the mounted routes answer only
// requests that bear it; the rest of the API does not take it.
func TestOperatorToken(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("operator page")) })
	mounts := map[string]http.Handler{"GET /metrics": page}
	for _, tt := range []struct {
		name, token, auth string
		want              int
	}{
		{"no token configured", "", "", http.StatusOK},
		{"none sent", "s3cret-ops", "", http.StatusUnauthorized},
		{"wrong", "s3cret-ops", "Bearer s3cret-opz", http.StatusUnauthorized},
		{"prefix", "s3cret-ops", "Bearer s3cret", http.StatusUnauthorized},
		{"not bearer", "s3cret-ops", "Basic s3cret-ops", http.StatusUnauthorized},
		{"right", "s3cret-ops", "Bearer s3cret-ops", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Mounts: mounts, OperatorToken: tt.token})
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if w.Code == http.StatusUnauthorized && (w.Header().Get("WWW-Authenticate") == "" || w.Body.String() == "operator page") {
				t.Fatalf("a 401 without WWW-Authenticate, or with the page: %v %s", w.Header(), w.Body)
			}
		})
	}
}
