package hetzner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/fake/hcloudfake"
)

func pricingBackend(t *testing.T, currency string, locations ...string) (*Backend, *hcloudfake.Server) {
	t.Helper()
	fake := hcloudfake.New(hcloudfake.Config{Token: "t", Currency: currency}).Start()
	t.Cleanup(fake.Close)
	b := &Backend{cfg: Config{
		Client:    hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0})),
		Locations: locations, ServerTypes: map[string]string{"1-mid": "ccx33"},
	}, budget: newBudget(func(context.Context, time.Duration) error { return nil }, time.Millisecond, 0, 0)}
	return b, fake
}

func TestLivePrices(t *testing.T) {
	b, fake := pricingBackend(t, "", "hel1")
	p, err := b.LivePrices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Location != "hel1" || p.Hourly["ccx33"] != 0.08 || p.Hourly["cx22"] != 0.08 || p.SnapshotGBMonth != 0.0119 {
		t.Errorf("got %+v; want hel1, ccx33 and cx22 at the fake's 0.08 net, snapshots at 0.0119", p)
	}
	if types := b.BilledTypes(); types["1-mid"] != "ccx33" {
		t.Errorf("server types: got %v, want 1-mid billed as ccx33", types)
	}
	if n := fake.Counts()["GET /pricing"]; n != 1 {
		t.Errorf("GET /pricing: %d requests, want 1", n)
	}
}

func TestLivePricesRefusesAnotherCurrency(t *testing.T) {
	b, _ := pricingBackend(t, "USD", "fsn1")
	_, err := b.LivePrices(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"USD", not EUR`) {
		t.Errorf("got %v, want a refusal of USD prices", err)
	}
}
