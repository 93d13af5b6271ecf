package hetzner

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Prices are the live prices the pool's cost model needs, net (without
// VAT), in EUR.
type Prices struct {
	// Location is the location the server prices are of.
	Location string
	// Hourly is the price of one server hour per server type at Location.
	Hourly map[string]float64
	// SnapshotGBMonth is the price of one GB of snapshot (image) a month.
	SnapshotGBMonth float64
}

// BilledTypes returns the server type the backend creates for each
// cluster size: what a member of that size is billed as.
func (b *Backend) BilledTypes() map[string]string {
	return maps.Clone(b.cfg.ServerTypes)
}

// LivePrices reads the project's prices (GET /pricing, one request): the
// net hourly price of every server type at the first configured location,
// where the backend creates servers first, and the net snapshot price per
// GB-month. Hetzner answers in the project owner's currency; anything but
// EUR is an error, since SMEK's reports are in euros.
func (b *Backend) LivePrices(ctx context.Context) (Prices, error) {
	var p hcloud.Pricing
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		p, resp, err = b.cfg.Client.Pricing.Get(ctx)
		return resp, err
	})
	if err != nil {
		return Prices{}, fmt.Errorf("get prices: %w", err)
	}
	if p.Currency != "EUR" {
		return Prices{}, fmt.Errorf("get prices: the project is billed in %q, not EUR: set the prices with --price and --snapshot-price", p.Currency)
	}
	loc := b.cfg.Locations[0]
	out := Prices{Location: loc, Hourly: map[string]float64{}}
	if out.SnapshotGBMonth, err = parseNet(p.Image.PerGBMonth.Net); err != nil {
		return Prices{}, fmt.Errorf("get prices: image price per GB-month: %w", err)
	}
	for _, st := range p.ServerTypes {
		if st.ServerType == nil {
			continue
		}
		for _, lp := range st.Pricings {
			if lp.Location == nil || lp.Location.Name != loc {
				continue
			}
			h, err := parseNet(lp.Hourly.Net)
			if err != nil {
				return Prices{}, fmt.Errorf("get prices: server type %s at %s: %w", st.ServerType.Name, loc, err)
			}
			out.Hourly[st.ServerType.Name] = h
		}
	}
	return out, nil
}

// parseNet parses a price as the API writes it ("0.0769").
func parseNet(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("price %q is not a non-negative number", s)
	}
	return v, nil
}
