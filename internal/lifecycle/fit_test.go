package lifecycle_test

import (
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

// The database and the pool are what the server wires into the lifecycle;
// the lifecycle itself knows only the interfaces it declares.
var (
	_ lifecycle.Store = (*sqlite.DB)(nil)
	_ lifecycle.Pool  = (*pool.Pool)(nil)
)
