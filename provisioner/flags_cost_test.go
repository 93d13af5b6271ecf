package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/smek/action/internal/cost"
)

func parseCostFlags(args []string, environ map[string]string) (*costFlags, error) {
	fs := newFlagSet("test", "", io.Discard)
	c := addCostFlags(fs)
	return c, parseFlags(fs, args, env(environ))
}

func TestCostFlags(t *testing.T) {
	c, err := parseCostFlags([]string{"--price", "ccx33=0.09", "--price", "cx22=0.005,cx32=0.01", "--snapshot-price", "0.02"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.model(cost.Default())
	if m.Hourly["ccx33"] != 0.09 || m.Hourly["cx22"] != 0.005 || m.Hourly["cx32"] != 0.01 || m.Hourly["ccx13"] != 0.02 || m.SnapshotGBMonth != 0.02 {
		t.Errorf("model: got %+v", m)
	}
	if p := c.snapshotPrice(); p == nil || *p != 0.02 {
		t.Errorf("snapshot price: got %v", p)
	}
	// The environment holds a comma-separated list; a flag wins over it.
	c, err = parseCostFlags(nil, map[string]string{"SMEK_PRICE": "ccx33=0.1,cx22=0.004", "SMEK_SNAPSHOT_PRICE": "0.03"})
	if err != nil || c.prices["ccx33"] != 0.1 || c.prices["cx22"] != 0.004 || *c.snapshotPrice() != 0.03 {
		t.Errorf("from the environment: got %v, %v", c.prices, err)
	}
	c, err = parseCostFlags([]string{"--price", "ccx33=0.2"}, map[string]string{"SMEK_PRICE": "ccx33=0.1"})
	if err != nil || c.prices["ccx33"] != 0.2 {
		t.Errorf("flag over environment: got %v, %v", c.prices, err)
	}
	// Unset: the base model's snapshot price stays, and serve passes nil.
	c, err = parseCostFlags(nil, nil)
	if err != nil || c.snapshotPrice() != nil || c.model(cost.Default()).SnapshotGBMonth != cost.DefaultSnapshotGBMonth {
		t.Errorf("no flags: got %v, %v", c.snapshotPrice(), err)
	}
}

func TestCostFlagsRefuse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
		want    string
	}{
		{"no equals", []string{"--price", "ccx33"}, nil, "--price"},
		{"bad type", []string{"--price", "CCX33=1"}, nil, "server type name"},
		{"negative", []string{"--price", "ccx33=-1"}, nil, "out of range"},
		{"twice", []string{"--price", "ccx33=1", "--price", "ccx33=2"}, nil, "given twice"},
		{"bad snapshot price", []string{"--snapshot-price", "cheap"}, nil, "--snapshot-price"},
		{"bad environment", nil, map[string]string{"SMEK_PRICE": "ccx33=free"}, "$SMEK_PRICE"},
	} {
		_, err := parseCostFlags(tc.args, tc.environ)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errUsage) {
			t.Errorf("%s: got %v, want a usage error containing %q", tc.name, err, tc.want)
		}
	}
	var fs flag.FlagSet
	c := addCostFlags(&fs)
	_ = fs.Set("price", "cx22=0.5,ccx33=0.25")
	if got := c.prices.String(); got != "ccx33=0.25,cx22=0.5" {
		t.Errorf("String: got %q", got)
	}
}
