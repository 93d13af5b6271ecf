package cost

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// HoursPerMonth is the month Hetzner caps hourly billing at and the one a
// per-month snapshot price is spread over: a GB kept one hour costs
// SnapshotGBMonth / HoursPerMonth.
const HoursPerMonth = 730

// Default returns the built-in price list: Hetzner Cloud list prices as
// remembered when this was written (net, in EUR, without VAT, for the
// German and Finnish locations), NOT read from Hetzner. They need checking
// against https://www.hetzner.com/cloud before anyone relies on the euros:
// prices change and differ per location. The hetzner backend replaces them
// at start with the live prices of its location (GET /pricing) unless the
// operator set prices (--price, --snapshot-price); the local backend and
// the simulator, which cannot reach Hetzner, use these. Size 1-mid is
// billed as ccx33, the hetzner backend's default server type for it.
func Default() Model {
	return Model{
		Hourly: map[string]float64{
			// Shared vCPU, x86 (Intel).
			"cx22": 0.0060, "cx32": 0.0113, "cx42": 0.0273, "cx52": 0.0540,
			// Shared vCPU, x86 (AMD).
			"cpx11": 0.0070, "cpx21": 0.0128, "cpx31": 0.0237, "cpx41": 0.0436, "cpx51": 0.0860,
			// Shared vCPU, Arm64 (Ampere).
			"cax11": 0.0064, "cax21": 0.0112, "cax31": 0.0224, "cax41": 0.0448,
			// Dedicated vCPU (AMD).
			"ccx13": 0.0200, "ccx23": 0.0392, "ccx33": 0.0769, "ccx43": 0.1538, "ccx53": 0.3077, "ccx63": 0.4615,
		},
		SnapshotGBMonth: DefaultSnapshotGBMonth,
		ServerTypes:     map[string]string{cluster.SizeMid: "ccx33"},
	}
}

// DefaultSnapshotGBMonth is the remembered list price of one GB of
// snapshot for a month (net EUR); see Default.
const DefaultSnapshotGBMonth = 0.0119

// maxPrice bounds a price an operator may set: a typo (a monthly price
// given as hourly, a missing decimal point) should be refused, not turn
// every report into nonsense. The dearest Hetzner server is well under
// €10 an hour.
const maxPrice = 1000

// ParsePrice parses one --price value, TYPE=EUR_PER_HOUR (ccx33=0.0769): a
// server type name as Hetzner spells it (lower-case letters, digits, dashes)
// and a non-negative price in euros per hour. The error names the flag.
func ParsePrice(s string) (serverType string, eurPerHour float64, err error) {
	name, value, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return "", 0, fmt.Errorf("--price: %q is not TYPE=EUR_PER_HOUR, e.g. ccx33=0.0769", s)
	}
	if !validServerType(name) {
		return "", 0, fmt.Errorf("--price: %q is not a server type name (lower-case letters, digits and dashes, e.g. ccx33)", name)
	}
	p, err := parseEuros(value)
	if err != nil {
		return "", 0, fmt.Errorf("--price %s: %w", name, err)
	}
	return name, p, nil
}

// ParsePrices parses a comma-separated list of --price values
// (ccx33=0.0769,cx22=0.006), as SMEK_PRICE holds them; a type given twice
// is an error.
func ParsePrices(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		t, p, err := ParsePrice(part)
		if err != nil {
			return nil, err
		}
		if _, dup := out[t]; dup {
			return nil, fmt.Errorf("--price: server type %s is given twice", t)
		}
		out[t] = p
	}
	return out, nil
}

// ParseSnapshotPrice parses --snapshot-price, a non-negative price in
// euros per GB and month (0.0119). The error names the flag.
func ParseSnapshotPrice(s string) (float64, error) {
	p, err := parseEuros(s)
	if err != nil {
		return 0, fmt.Errorf("--snapshot-price: %w", err)
	}
	return p, nil
}

func parseEuros(s string) (float64, error) {
	s = strings.TrimSpace(s)
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("%q is not a price in euros, e.g. 0.0769", s)
	}
	if p < 0 || p > maxPrice {
		return 0, fmt.Errorf("%s is out of range: a price is between 0 and %d euros", s, maxPrice)
	}
	return p, nil
}

func validServerType(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// With returns a copy of m with the operator's prices laid over it: every
// server type in hourly gets that price, and snapshotGBMonth, when not
// negative, replaces the snapshot price.
func (m Model) With(hourly map[string]float64, snapshotGBMonth float64) Model {
	out := Model{Hourly: map[string]float64{}, SnapshotGBMonth: m.SnapshotGBMonth, ServerTypes: map[string]string{}}
	for t, p := range m.Hourly {
		out.Hourly[t] = p
	}
	for t, p := range hourly {
		out.Hourly[t] = p
	}
	for s, t := range m.ServerTypes {
		out.ServerTypes[s] = t
	}
	if snapshotGBMonth >= 0 {
		out.SnapshotGBMonth = snapshotGBMonth
	}
	return out
}

// Check reports a size whose server type has no price: its members would
// silently cost nothing in every report.
func (m Model) Check() error {
	sizes := make([]string, 0, len(m.ServerTypes))
	for s := range m.ServerTypes {
		sizes = append(sizes, s)
	}
	sort.Strings(sizes)
	for _, s := range sizes {
		if _, ok := m.Hourly[m.ServerTypes[s]]; !ok {
			return fmt.Errorf("--price: no price for server type %s (size %s); add --price %s=EUR_PER_HOUR", m.ServerTypes[s], s, m.ServerTypes[s])
		}
	}
	return nil
}
