package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/smek/action/internal/cost"
)

// RecordedCostModel is the price list a server priced the pool with.
type RecordedCostModel struct {
	Model cost.Model
	// Source says where the prices come from ("built-in list prices",
	// "Hetzner /pricing at fsn1", each with "+ --price" when the operator
	// set some).
	Source     string
	RecordedAt time.Time
}

// RecordCostModel replaces the recorded price list by that of the server
// that is starting.
func (db *DB) RecordCostModel(ctx context.Context, m cost.Model, source string) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("record cost model: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO cost_model (id, model, source, recorded_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET model = excluded.model, source = excluded.source, recorded_at = excluded.recorded_at`,
		string(b), source, ms(db.Now()))
	if err != nil {
		return fmt.Errorf("record cost model: %w", err)
	}
	return nil
}

// RecordedCostModel returns the price list the last server that started
// recorded; ok is false when none has.
func (db *DB) RecordedCostModel(ctx context.Context) (r RecordedCostModel, ok bool, err error) {
	var model string
	var at sql.NullInt64
	err = db.db.QueryRowContext(ctx, `SELECT model, source, recorded_at FROM cost_model WHERE id = 1`).Scan(&model, &r.Source, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read cost model: %w", err)
	}
	if err := json.Unmarshal([]byte(model), &r.Model); err != nil {
		return r, false, fmt.Errorf("read cost model: %w", err)
	}
	r.RecordedAt = fromMS(at)
	return r, true, nil
}
