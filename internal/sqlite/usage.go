package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
)

// PoolUsage accounts the pool members' time in [from, to), per flavor:
// server hours in each cost.Category, from the members' state changes (the
// events every member transition records with its time, in the same
// transaction). A member's paid time starts when it is created; one deleted
// before the end of its last started hour is billed to that hour's end
// (cost.PaidHourEnd), and the unused remainder counts as idle: a server
// created and deleted within 10 minutes is 10 minutes of building and 50
// of idle. Hibernated hours are billed by the member's snapshot size
// (servers.snapshot_gb): the size of the snapshot it has now, so the
// hours of a member hibernated earlier in the window and restored since,
// whose snapshot is gone, count at 0 GB. Flavors come out sorted by name.
//
// The query is bounded by the window: it reads the members that lived in
// it and their events since from. A member whose events before from were
// pruned is still counted right: its state at from is the from-state of
// its first event since, or its current state when it has none.
func (db *DB) PoolUsage(ctx context.Context, from, to time.Time) ([]cost.Usage, error) {
	if !from.Before(to) {
		return nil, nil
	}
	// A member deleted up to an hour before from may still be paid for
	// in the window.
	rows, err := db.db.QueryContext(ctx, `SELECT id, k8s_version, size, privileged, state, snapshot_gb, created_at, updated_at FROM servers
		WHERE created_at < ? AND (state <> 'deleted' OR updated_at >= ?)`, ms(to), ms(from.Add(-time.Hour)))
	if err != nil {
		return nil, fmt.Errorf("pool usage: list members: %w", err)
	}
	type member struct {
		flavor           cluster.Flavor
		state            cluster.MemberState
		snapshotGB       float64
		created, updated time.Time
		events           []memberChange
	}
	members := map[string]*member{}
	var ids []string
	for rows.Next() {
		var id string
		var snapshot sql.NullFloat64
		var m member
		var priv int
		var created, updated sql.NullInt64
		if err := rows.Scan(&id, &m.flavor.K8sVersion, &m.flavor.Size, &priv, &m.state, &snapshot, &created, &updated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pool usage: list members: %w", err)
		}
		m.flavor.Privileged = priv == 1
		m.created, m.updated = fromMS(created), fromMS(updated)
		m.snapshotGB = snapshot.Float64
		members[id] = &m
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pool usage: list members: %w", err)
	}
	// The members' transitions since from, in chunks that keep the
	// statement under SQLite's limit of bound variables.
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		args := []any{ms(from)}
		for _, id := range part {
			args = append(args, id)
		}
		ev, err := db.db.QueryContext(ctx, `SELECT subject, time, from_state, to_state FROM events
			WHERE time >= ? AND to_state <> '' AND subject IN (`+placeholders(len(part))+`) ORDER BY time, id`, args...)
		if err != nil {
			return nil, fmt.Errorf("pool usage: read member events: %w", err)
		}
		for ev.Next() {
			var id string
			var t sql.NullInt64
			var c memberChange
			if err := ev.Scan(&id, &t, &c.from, &c.to); err != nil {
				ev.Close()
				return nil, fmt.Errorf("pool usage: read member events: %w", err)
			}
			c.at = fromMS(t)
			members[id].events = append(members[id].events, c)
		}
		ev.Close()
		if err := ev.Err(); err != nil {
			return nil, fmt.Errorf("pool usage: read member events: %w", err)
		}
	}
	byFlavor := map[cluster.Flavor]*cost.Usage{}
	for _, id := range ids {
		m := members[id]
		u := byFlavor[m.flavor]
		if u == nil {
			u = &cost.Usage{Flavor: m.flavor, Hours: map[cost.Category]float64{}}
			byFlavor[m.flavor] = u
		}
		spans := memberSpans(m.state, m.events, from, to)
		if m.state == cluster.MemberDeleted {
			// The deletion's event says when; without it (pruned), the
			// member's last update.
			deleted := m.updated
			for _, c := range m.events {
				if c.to == cluster.MemberDeleted {
					deleted = c.at
				}
			}
			if end := cost.PaidHourEnd(m.created, deleted.Add(-time.Millisecond)); end.After(deleted) {
				spans = append(spans, span{cost.Idle, deleted, end})
			}
		}
		for _, s := range spans {
			h := overlap(s.start, s.end, from, to).Hours()
			if h <= 0 {
				continue
			}
			u.Add(s.category, h)
			if s.category == cost.Hibernated {
				u.SnapshotGBHours += h * m.snapshotGB
			}
		}
	}
	out := make([]cost.Usage, 0, len(byFlavor))
	for _, u := range byFlavor {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flavor.String() < out[j].Flavor.String() })
	return out, nil
}

// memberChange is one state transition of a member.
type memberChange struct {
	at       time.Time
	from, to cluster.MemberState
}

// span is time a member spent in one category.
type span struct {
	category   cost.Category
	start, end time.Time
}

// memberSpans turns a member's transitions since from (oldest first) into
// the time it spent in each category until to. Its state at from is the
// from-state of its first transition, or current when it has none; a
// creation's empty from-state is no time at all.
func memberSpans(current cluster.MemberState, changes []memberChange, from, to time.Time) []span {
	state := current
	if len(changes) > 0 {
		state = changes[0].from
	}
	var out []span
	at := from
	for _, c := range changes {
		if !c.at.Before(to) {
			break
		}
		if cat, ok := cost.CategoryOf(state); ok {
			out = append(out, span{cat, at, c.at})
		}
		state, at = c.to, c.at
	}
	if cat, ok := cost.CategoryOf(state); ok {
		out = append(out, span{cat, at, to})
	}
	return out
}

// overlap is how much of [s, e) lies in [from, to).
func overlap(s, e, from, to time.Time) time.Duration {
	if s.Before(from) {
		s = from
	}
	if e.After(to) {
		e = to
	}
	if !e.After(s) {
		return 0
	}
	return e.Sub(s)
}
