package main

import (
	"context"
	"errors"
	"io"
)

// cmdPoolSimulate replays a demand trace against the pool's policies.
func cmdPoolSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("pool simulate: not built yet")
}
