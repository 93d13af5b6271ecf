package hcloudfake

import "net/http"

// CodeTokenReadonly is the error of a write with a read-only token.
const CodeTokenReadonly = "token_readonly"

// ReadOnlyToken wraps the fake's handler h (Handler, with Config.Token
// set to full) so that it also accepts token as a read-only API token of
// the same project. Hetzner's Cloud Console makes tokens with the
// permission "Read" or "Read & Write"; the API answers every request of a
// read-only token but GET with the error code token_readonly ("The token
// is only allowed to perform GET requests", docs "Error Codes"), status
// 403 as commonly observed, and the request takes no effect. Refused
// requests are not counted (Counts) and spend no budget.
func ReadOnlyToken(h http.Handler, token, full string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// statusOf does not know the code: it is only ever answered here.
			writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{
				"code": CodeTokenReadonly, "message": "The token is only allowed to perform GET requests", "details": map[string]any{},
			}})
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+full)
		h.ServeHTTP(w, r)
	})
}
