package server

import (
	"context"
	"strings"
	"time"

	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/pool"
)

// livePricer is a backend that can read its provider's live prices (the
// hetzner backend).
type livePricer interface {
	LivePrices(ctx context.Context) (hetzner.Prices, error)
}

// typedBackend is a backend that bills each cluster size as a server
// type (the hetzner backend, with its --hetzner-server-type).
type typedBackend interface {
	BilledTypes() map[string]string
}

// livePricesTimeout bounds the start's wait for the live prices: without
// them the server starts on the built-in list.
const livePricesTimeout = 15 * time.Second

// costModel is the price list the pool is accounted with, and where it
// comes from: the built-in list prices (cost.Default), replaced by the
// backend's live prices when it has them and the operator did not set
// every price the pool needs, then the operator's --price and
// --snapshot-price on top. Sizes are billed as the server types the
// backend creates for them.
func (s *Server) costModel(ctx context.Context, backend pool.Backend) (cost.Model, string) {
	cfg := s.cfg
	model := cost.Default()
	if tb, ok := backend.(typedBackend); ok {
		model.ServerTypes = tb.BilledTypes()
	}
	source := []string{"built-in list prices"}
	if lp, ok := backend.(livePricer); ok && !s.operatorPricesAll(model) {
		pctx, cancel := context.WithTimeout(ctx, livePricesTimeout)
		live, err := lp.LivePrices(pctx)
		cancel()
		if err != nil {
			s.log.Warn("the pool's cost is priced with the built-in list prices, which may be out of date", logkey.Err, err)
		} else {
			model = model.With(live.Hourly, live.SnapshotGBMonth)
			source = []string{"Hetzner /pricing at " + live.Location}
		}
	}
	snapshot := -1.0
	if cfg.SnapshotPrice != nil {
		snapshot = *cfg.SnapshotPrice
	}
	if len(cfg.Prices) > 0 || cfg.SnapshotPrice != nil {
		model = model.With(cfg.Prices, snapshot)
		source = append(source, "the operator's prices")
	}
	if err := model.Check(); err != nil {
		s.log.Warn("some pool members are not priced", logkey.Err, err)
	}
	return model, strings.Join(source, " + ")
}

// operatorPricesAll reports whether the operator set the snapshot price
// and the price of every server type the model bills sizes as: then the
// live prices are not read.
func (s *Server) operatorPricesAll(m cost.Model) bool {
	if s.cfg.SnapshotPrice == nil {
		return false
	}
	for _, t := range m.ServerTypes {
		if _, ok := s.cfg.Prices[t]; !ok {
			return false
		}
	}
	return true
}
