package api

import "github.com/smek/action/internal/sqlite"

// The server wires the database in as the API's Store.
var _ Store = (*sqlite.DB)(nil)
