package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// onTicks calls f at every tick of p.ticker(d) until stop is called. stop
// returns after f's last call, so that nothing prints after it.
func (p *program) onTicks(d time.Duration, f func()) (stop func()) {
	ticks, stopTicker := p.ticker(d)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-ticks:
				f()
			}
		}
	})
	return func() {
		stopTicker()
		close(done)
		wg.Wait()
	}
}

// progress prints a line every p.progressEvery until stop is called, so a
// job log shows that a create waiting for the pool is alive. stop returns
// after the last line is written.
func (p *program) progress(w io.Writer, what string, budget time.Duration) (stop func()) {
	waited := time.Duration(0)
	return p.onTicks(p.progressEvery, func() {
		waited += p.progressEvery
		fmt.Fprintf(w, "still waiting for %s: %s of up to %s\n", what, waited, budget)
	})
}
