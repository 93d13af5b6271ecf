package api

import (
	_ "embed"
	"net/http"

	"github.com/smek/action/internal/wire"
)

// openAPIDoc describes every route of routes(); TestOpenAPICoversRoutes
// keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.Write(openAPIDoc)
}
