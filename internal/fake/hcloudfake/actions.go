package hcloudfake

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// action is an asynchronous operation: running until its finish time on the
// clock, then success (or error when one was scripted with FailNextAction).
type action struct {
	id        int64
	command   string
	started   time.Time
	finishAt  time.Time
	finished  *time.Time
	status    string
	fail      *schema.ActionError
	resources []schema.ActionResourceReference
	// done applies the action's outcome to the fake's state; ok is false
	// when the action failed. Called once, with the mutex held.
	done func(ok bool)
}

// startAction records a running action. The fake's mutex is held.
func (f *Fake) startAction(now time.Time, command string, done func(ok bool), resources ...schema.ActionResourceReference) *action {
	d, ok := f.cfg.Durations[command]
	if !ok {
		d = f.cfg.DefaultDuration
	}
	a := &action{
		id: f.id(), command: command, started: now, finishAt: now.Add(d),
		status: "running", resources: resources, done: done,
	}
	if q := f.failNext[command]; len(q) > 0 {
		a.fail = &q[0]
		f.failNext[command] = q[1:]
	}
	f.actions[a.id] = a
	f.running = append(f.running, a)
	return a
}

// timer is a change due at a time on the clock that no action stands for.
type timer struct {
	at time.Time
	fn func()
}

// after schedules fn at t on the clock. The fake's mutex is held.
func (f *Fake) after(t time.Time, fn func()) {
	f.timers = append(f.timers, &timer{at: t, fn: fn})
}

// settle finishes every running action and fires every timer that is due,
// in time order (actions first at equal times, each kind in start order);
// what they start or schedule is settled too when it is due. The fake's
// mutex is held.
func (f *Fake) settle(now time.Time) {
	for {
		ai, ti := -1, -1
		for i, a := range f.running {
			if !now.Before(a.finishAt) && (ai < 0 || a.finishAt.Before(f.running[ai].finishAt)) {
				ai = i
			}
		}
		for i, t := range f.timers {
			if !now.Before(t.at) && (ti < 0 || t.at.Before(f.timers[ti].at)) {
				ti = i
			}
		}
		switch {
		case ai >= 0 && (ti < 0 || !f.timers[ti].at.Before(f.running[ai].finishAt)):
			a := f.running[ai]
			f.running = slices.Delete(f.running, ai, ai+1)
			t := a.finishAt
			a.finished = &t
			if a.fail != nil {
				a.status = "error"
			} else {
				a.status = "success"
			}
			if a.done != nil {
				a.done(a.fail == nil)
			}
		case ti >= 0:
			t := f.timers[ti]
			f.timers = slices.Delete(f.timers, ti, ti+1)
			t.fn()
		default:
			return
		}
	}
}

func (a *action) schema(now time.Time) schema.Action {
	s := schema.Action{
		ID: a.id, Command: a.command, Status: a.status, Started: a.started,
		Finished: a.finished, Resources: a.resources, Progress: 100,
	}
	if a.status == "running" {
		total := a.finishAt.Sub(a.started)
		s.Progress = 0
		if total > 0 {
			s.Progress = min(99, int(100*now.Sub(a.started)/total))
		}
	}
	if a.status == "error" {
		e := *a.fail
		s.Error = &e
	}
	if s.Resources == nil {
		s.Resources = []schema.ActionResourceReference{}
	}
	return s
}

func (f *Fake) getAction(r *http.Request, now time.Time) (int, any, *apiError) {
	id, err := pathID(r, "action")
	if err != nil {
		return 0, nil, err
	}
	a, ok := f.actions[id]
	if !ok {
		return 0, nil, notFound("action", id)
	}
	return http.StatusOK, schema.ActionGetResponse{Action: a.schema(now)}, nil
}

// listActions answers GET /actions?id=..&id=..; listing without ids was
// removed from the API on 2025-01-30.
func (f *Fake) listActions(r *http.Request, now time.Time) (int, any, *apiError) {
	ids := r.URL.Query()["id"]
	if len(ids) == 0 {
		return 0, nil, &apiError{
			Code: CodeDeprecatedEndpoint, Message: "API functionality was removed",
			Details: map[string]any{"announcement": "https://docs.hetzner.cloud/changelog#2025-01-30-listing-arbitrary-actions-in-the-actions-list-endpoint-is-removed"},
		}
	}
	var out []schema.Action
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return 0, nil, invalidField("id", "must be a positive integer")
		}
		if a, ok := f.actions[id]; ok {
			out = append(out, a.schema(now))
		}
	}
	statuses := r.URL.Query()["status"]
	if len(statuses) > 0 {
		out = slices.DeleteFunc(out, func(a schema.Action) bool { return !slices.Contains(statuses, a.Status) })
	}
	slices.SortFunc(out, func(a, b schema.Action) int { return int(a.ID - b.ID) })
	items, meta, apiErr := page(r, out)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if items == nil {
		items = []schema.Action{}
	}
	return http.StatusOK, struct {
		Actions []schema.Action `json:"actions"`
		Meta    schema.Meta     `json:"meta"`
	}{items, meta}, nil
}

func serverRef(id int64) schema.ActionResourceReference {
	return schema.ActionResourceReference{ID: id, Type: "server"}
}
