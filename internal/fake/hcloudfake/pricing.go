package hcloudfake

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// snapshotPrice is the catalog's price of a GB of image (snapshot) per
// month, net and gross at 19 % VAT.
var snapshotPrice = price("0.0119", "0.0142")

// getPricing answers GET /pricing as documented (fixtures, "Get all
// prices"): the currency and VAT rate of the project, the image price per
// GB-month, and every server type's hourly and monthly prices per location,
// the same prices GET /server_types shows. Differences from Hetzner: every
// server type costs the catalog's 0.0800 net an hour in every location
// (Hetzner's prices differ per type and, for some, per location); the VAT
// rate is always 19 %; the fake models no primary or floating IPs or load
// balancers: their lists are empty where the real API lists them; volumes
// cost a fixed catalog price; the deprecated floating_ip and traffic
// objects carry empty price strings where Hetzner's carry prices. The
// currency is Config.Currency.
func (f *Fake) getPricing(_ *http.Request, _ time.Time) (int, any, *apiError) {
	p := schema.Pricing{
		Currency: f.cfg.Currency, VATRate: "19.00",
		Image:             schema.PricingImage{PricePerGBMonth: snapshotPrice},
		Volume:            schema.PricingVolume{PricePerGBPerMonth: price("0.0440", "0.0524")},
		FloatingIPs:       []schema.PricingFloatingIPType{},
		PrimaryIPs:        []schema.PricingPrimaryIP{},
		ServerBackup:      schema.PricingServerBackup{Percentage: "20.00"},
		LoadBalancerTypes: []schema.PricingLoadBalancerType{},
	}
	if p.Currency == "" {
		p.Currency = "EUR"
	}
	for _, st := range serverTypes {
		p.ServerTypes = append(p.ServerTypes, schema.PricingServerType{ID: st.ID, Name: st.Name, Prices: st.Prices})
	}
	return http.StatusOK, schema.PricingGetResponse{Pricing: p}, nil
}
