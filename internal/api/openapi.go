package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of routes(); TestOpenAPICoversRoutes
// keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
