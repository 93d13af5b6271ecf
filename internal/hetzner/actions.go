package hetzner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// watcher polls the running actions of every caller together: one
// GET /actions?id=..&id=.. per round for up to 25 actions, rounds spaced
// with a backoff that starts at the action's expected duration.
type watcher struct {
	client *hcloud.Client
	budget *budget
	sleep  func(context.Context, time.Duration) error
	min    time.Duration
	max    time.Duration

	mu      sync.Mutex
	waiting map[int64][]chan *hcloud.Action
	running bool
}

func newWatcher(c *hcloud.Client, a *budget, sleep func(context.Context, time.Duration) error, min, max time.Duration) *watcher {
	return &watcher{client: c, budget: a, sleep: sleep, min: min, max: max, waiting: map[int64][]chan *hcloud.Action{}}
}

// wait blocks until every action is finished, first waiting expect (the
// typical duration of such an action) to save requests. It returns the
// action's error when one failed.
func (w *watcher) wait(ctx context.Context, expect time.Duration, actions ...*hcloud.Action) error {
	type waiter struct {
		id int64
		ch chan *hcloud.Action
	}
	var chans []waiter
	// A caller that gives up (its context ends) takes its waits back, so
	// the polling stops when nobody waits any more.
	defer func() {
		for _, w2 := range chans {
			w.remove(w2.id, w2.ch)
		}
	}()
	for _, a := range actions {
		if a == nil {
			continue
		}
		if a.Status == hcloud.ActionStatusError {
			return fmt.Errorf("action %d %s: %w", a.ID, a.Command, a.Error())
		}
		if a.Status == hcloud.ActionStatusSuccess {
			continue
		}
		ch := make(chan *hcloud.Action, 1)
		chans = append(chans, waiter{a.ID, ch})
		w.add(ctx, a.ID, ch, expect)
	}
	for _, wt := range chans {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case a := <-wt.ch:
			if a.Status == hcloud.ActionStatusError {
				return fmt.Errorf("action %d %s: %w", a.ID, a.Command, a.Error())
			}
		}
	}
	return nil
}

func (w *watcher) add(ctx context.Context, id int64, ch chan *hcloud.Action, expect time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting[id] = append(w.waiting[id], ch)
	if !w.running {
		w.running = true
		go w.loop(context.WithoutCancel(ctx), max(expect, w.min))
	}
}

func (w *watcher) loop(ctx context.Context, first time.Duration) {
	delay := first
	for {
		_ = w.sleep(ctx, delay)
		w.mu.Lock()
		ids := make([]int64, 0, len(w.waiting))
		for id := range w.waiting {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		slices.Sort(ids)
		progressed := false
		for chunk := range slices.Chunk(ids, 25) {
			var got []*hcloud.Action
			err := w.budget.do(ctx, func() (*hcloud.Response, error) {
				var resp *hcloud.Response
				var err error
				got, resp, err = w.client.Action.List(ctx, hcloud.ActionListOpts{ID: chunk, ListOpts: hcloud.ListOpts{PerPage: 25}})
				return resp, err
			})
			if err != nil {
				continue
			}
			found := map[int64]bool{}
			for _, a := range got {
				found[a.ID] = true
				if a.Status != hcloud.ActionStatusRunning {
					w.deliver(a)
					progressed = true
				}
			}
			for _, id := range chunk {
				if !found[id] {
					// Unknown to the API: report it failed rather than
					// waiting forever.
					w.deliver(&hcloud.Action{ID: id, Status: hcloud.ActionStatusError, ErrorCode: "not_found", ErrorMessage: "action not found"})
				}
			}
		}
		if progressed {
			delay = w.min
		} else {
			delay = min(w.max, delay*2)
		}
	}
}

// remove forgets one wait (a no-op once the action was delivered).
func (w *watcher) remove(id int64, ch chan *hcloud.Action) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := slices.DeleteFunc(w.waiting[id], func(c chan *hcloud.Action) bool { return c == ch })
	if len(rest) == 0 {
		delete(w.waiting, id)
		return
	}
	w.waiting[id] = rest
}

func (w *watcher) deliver(a *hcloud.Action) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.waiting[a.ID] {
		ch <- a
	}
	delete(w.waiting, a.ID)
}
