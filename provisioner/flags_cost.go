package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cost"
)

// costFlags are the operator's prices: --price TYPE=EUR_PER_HOUR
// (repeatable; SMEK_PRICE holds a comma-separated list) and
// --snapshot-price EUR_PER_GB_MONTH. Both are net euros, without VAT.
type costFlags struct {
	prices   priceFlag
	snapshot snapshotPriceFlag
}

func addCostFlags(fs *flag.FlagSet) *costFlags {
	c := &costFlags{prices: priceFlag{}}
	fs.Var(c.prices, "price", "price of one hour of a server type in euros without VAT, `TYPE=EUR_PER_HOUR` (e.g. ccx33=0.0769); repeat it or separate with commas; wins over Hetzner's live and the built-in prices")
	fs.Var(&c.snapshot, "snapshot-price", "price of one GB of snapshot a month in euros without VAT, `EUR_PER_GB_MONTH` (built-in 0.0119; the hetzner backend reads the live one)")
	return c
}

// snapshotPrice is the operator's snapshot price, nil when not set.
func (c *costFlags) snapshotPrice() *float64 {
	if !c.snapshot.set {
		return nil
	}
	v := c.snapshot.eur
	return &v
}

// model lays the operator's prices over base.
func (c *costFlags) model(base cost.Model) cost.Model {
	snapshot := -1.0
	if c.snapshot.set {
		snapshot = c.snapshot.eur
	}
	return base.With(c.prices, snapshot)
}

// priceFlag collects --price values; a server type given twice is an
// error.
type priceFlag map[string]float64

func (p priceFlag) String() string {
	types := make([]string, 0, len(p))
	for t := range p {
		types = append(types, t)
	}
	sort.Strings(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = t + "=" + strconv.FormatFloat(p[t], 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (p priceFlag) Set(s string) error {
	prices, err := cost.ParsePrices(s)
	if err != nil {
		return err
	}
	for t, v := range prices {
		if _, dup := p[t]; dup {
			return fmt.Errorf("--price: server type %s is given twice", t)
		}
		p[t] = v
	}
	return nil
}

// snapshotPriceFlag is --snapshot-price.
type snapshotPriceFlag struct {
	eur float64
	set bool
}

func (f *snapshotPriceFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatFloat(f.eur, 'f', -1, 64)
}

func (f *snapshotPriceFlag) Set(s string) error {
	v, err := cost.ParseSnapshotPrice(s)
	if err != nil {
		return err
	}
	f.eur, f.set = v, true
	return nil
}
