package main

import (
	"context"
	"fmt"

	"github.com/smek/action/internal/client"
)

// statusHibernated is the /v1 cluster-status of a stopped cluster whose
// server is kept as a snapshot alone: a start restores it in minutes.
const statusHibernated = "hibernated"

// restoreWatch prints the restore steps the server records in a
// hibernated cluster's event log while its start waits.
type restoreWatch struct {
	p       *program
	c       *client.Client
	id      string
	printed int // restoring events printed so far: by the watching goroutine, then by stop after it ended
	// stopTicks ends the looks at the event log.
	stopTicks func()
}

// watchRestore looks at the event log every p.progressEvery until stop.
func (p *program) watchRestore(ctx context.Context, c *client.Client, id string) *restoreWatch {
	w := &restoreWatch{p: p, c: c, id: id}
	w.stopTicks = p.onTicks(p.progressEvery, func() {
		if ctx.Err() == nil {
			w.print(ctx)
		}
	})
	return w
}

// print writes the restore steps not printed yet.
func (w *restoreWatch) print(ctx context.Context) {
	events, err := w.c.Events(ctx, w.id)
	if err != nil {
		return // the start's answer says what matters
	}
	n := 0
	for _, e := range events {
		if e.Type != "restoring" {
			continue
		}
		n++
		if n > w.printed {
			fmt.Fprintf(w.p.stderr, "restoring %s: %s\n", w.id, e.Message)
			w.printed = n
		}
	}
}

// stop ends the watch and prints the steps recorded since the last look.
func (w *restoreWatch) stop(ctx context.Context) {
	w.stopTicks()
	w.print(ctx)
}
