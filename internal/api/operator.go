package api

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// operatorOnly guards an operator's route with Config.OperatorToken; with
// no token configured the route is open to whoever reaches its address.
// The token is compared in constant time.
func (s *Server) operatorOnly(h http.Handler) http.Handler {
	want := s.cfg.OperatorToken
	if want == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			s.writeError(w, r, cluster.Errorf(cluster.EUNAUTHORIZED, "Authorization", "this page needs the operator's bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
