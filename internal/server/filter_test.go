package server_test

import "github.com/smek/action/internal/sqlite"

func sqliteAll() sqlite.ClusterFilter { return sqlite.ClusterFilter{} }
