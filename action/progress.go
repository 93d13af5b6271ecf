package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints a line every p.progressEvery until stop is called, so a
// job log shows that a create waiting for the pool is alive. stop returns
// after the last line is written.
func (p *program) progress(w io.Writer, what string, budget time.Duration) (stop func()) {
	ticks, stopTicker := p.ticker(p.progressEvery)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		waited := time.Duration(0)
		for {
			select {
			case <-done:
				return
			case <-ticks:
				waited += p.progressEvery
				fmt.Fprintf(w, "still waiting for %s: %s of up to %s\n", what, waited, budget)
			}
		}
	})
	return func() {
		stopTicker()
		close(done)
		wg.Wait()
	}
}
