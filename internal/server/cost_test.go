package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/pool"
)

// pricedBackend is a backend with live prices; only LivePrices is used.
type pricedBackend struct {
	pool.Backend
	prices hetzner.Prices
	err    error
	calls  int
}

// typedPricedBackend also bills sizes as server types of its own.
type typedPricedBackend struct {
	*pricedBackend
	types map[string]string
}

func (b typedPricedBackend) BilledTypes() map[string]string { return b.types }

func (b *pricedBackend) LivePrices(context.Context) (hetzner.Prices, error) {
	b.calls++
	return b.prices, b.err
}

func TestCostModelSources(t *testing.T) {
	live := hetzner.Prices{Location: "hel1", Hourly: map[string]float64{"ccx33": 0.5, "cx22": 0.01}, SnapshotGBMonth: 0.02}
	snap := 0.05
	for _, tc := range []struct {
		name      string
		cfg       Config
		err       error
		wantCalls int
		source    string
		ccx33     float64
		snapshot  float64
		midType   string
		types     map[string]string // the backend's, if any
	}{
		{name: "live", wantCalls: 1, source: "Hetzner /pricing at hel1", ccx33: 0.5, snapshot: 0.02, midType: "cx22", types: map[string]string{"1-mid": "cx22"}},
		{name: "live refused", err: errors.New("billed in USD"), wantCalls: 1, source: "built-in list prices", ccx33: 0.0769, snapshot: 0.0119, midType: "ccx33"},
		{name: "live and the operator's", cfg: Config{Prices: map[string]float64{"ccx33": 0.3}}, wantCalls: 1,
			source: "Hetzner /pricing at hel1 + the operator's prices", ccx33: 0.3, snapshot: 0.02, midType: "cx22", types: map[string]string{"1-mid": "cx22"}},
		{name: "the operator set all", cfg: Config{Prices: map[string]float64{"ccx33": 0.3}, SnapshotPrice: &snap}, wantCalls: 0,
			source: "built-in list prices + the operator's prices", ccx33: 0.3, snapshot: 0.05, midType: "ccx33"},
		// The backend bills 1-mid as cx42 and the operator priced it: no
		// live read, and members are billed as cx42 even without one.
		{name: "the operator set all for the backend's types", cfg: Config{Prices: map[string]float64{"cx42": 0.3}, SnapshotPrice: &snap}, wantCalls: 0,
			source: "built-in list prices + the operator's prices", ccx33: 0.0769, snapshot: 0.05, midType: "cx42", types: map[string]string{"1-mid": "cx42"}},
		{name: "live refused, the backend's types", err: errors.New("billed in USD"), wantCalls: 1, source: "built-in list prices",
			ccx33: 0.0769, snapshot: 0.0119, midType: "cx42", types: map[string]string{"1-mid": "cx42"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &pricedBackend{prices: live, err: tc.err}
			var backend pool.Backend = b
			if tc.types != nil {
				backend = typedPricedBackend{b, tc.types}
			}
			s := &Server{cfg: tc.cfg, log: slog.New(slog.DiscardHandler)}
			m, source := s.costModel(context.Background(), backend)
			if b.calls != tc.wantCalls {
				t.Errorf("live price requests: got %d, want %d", b.calls, tc.wantCalls)
			}
			if source != tc.source || m.Hourly["ccx33"] != tc.ccx33 || m.SnapshotGBMonth != tc.snapshot || m.ServerTypes["1-mid"] != tc.midType {
				t.Errorf("got %q, ccx33 %v, snapshots %v, 1-mid as %s; want %q, %v, %v, %s", source, m.Hourly["ccx33"], m.SnapshotGBMonth,
					m.ServerTypes["1-mid"], tc.source, tc.ccx33, tc.snapshot, tc.midType)
			}
		})
	}
}
