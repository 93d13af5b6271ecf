package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/smek/action/internal/cluster"
)

// event is a state change to record.
type event struct {
	subject  string
	typ      string
	from, to string
	cause    string
	actor    string
	message  string
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (db *DB) recordEvent(ctx context.Context, x execer, e event) error {
	_, err := x.ExecContext(ctx, `INSERT INTO events (time, subject, type, from_state, to_state, cause, actor, message)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ms(db.Now()), e.subject, e.typ, e.from, e.to, e.cause, e.actor, e.message)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// RecordEvent records an event that is not a state change made by this
// package, such as "left alone because keep-cluster".
func (db *DB) RecordEvent(ctx context.Context, subject, typ, cause, actor, message string) error {
	return db.recordEvent(ctx, db.w, event{subject: subject, typ: typ, cause: cause, actor: actor, message: message})
}

// Events returns the events of a subject (cluster or member id), oldest
// first.
func (db *DB) Events(ctx context.Context, subject string) ([]cluster.Event, error) {
	evs, err := db.queryEvents(ctx, `WHERE subject = ? ORDER BY time, id`, subject)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", subject, err)
	}
	return evs, nil
}

// RecentEvents returns the newest events of all subjects, newest first, at
// most limit of them.
func (db *DB) RecentEvents(ctx context.Context, limit int) ([]cluster.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	evs, err := db.queryEvents(ctx, `ORDER BY time DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list recent events: %w", err)
	}
	return evs, nil
}

// queryEvents reads the events that the rest of a query (WHERE, ORDER BY,
// LIMIT) selects.
func (db *DB) queryEvents(ctx context.Context, rest string, args ...any) ([]cluster.Event, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT time, subject, type, from_state, to_state, cause, actor, message
		FROM events `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cluster.Event
	for rows.Next() {
		var e cluster.Event
		var t sql.NullInt64
		if err := rows.Scan(&t, &e.Subject, &e.Type, &e.From, &e.To, &e.Cause, &e.Actor, &e.Message); err != nil {
			return nil, err
		}
		e.Time = fromMS(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// execCount runs a statement and returns how many rows it changed.
func (db *DB) execCount(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := db.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
