package hcloudfake

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// The catalog: what a project sees without creating anything.

var locations = []schema.Location{
	{ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
	{ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
	{ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
}

var datacenterNames = map[string]string{"fsn1": "fsn1-dc14", "nbg1": "nbg1-dc3", "hel1": "hel1-dc2"}

func price(net, gross string) schema.Price { return schema.Price{Net: net, Gross: gross} }

func serverType(id int64, name string, cores int, mem float32, disk int, cpu string) schema.ServerType {
	st := schema.ServerType{
		ID: id, Name: name, Description: upper(name), Cores: cores, Memory: mem, Disk: disk,
		StorageType: "local", CPUType: cpu, Architecture: "x86",
	}
	for _, l := range locations {
		st.Prices = append(st.Prices, schema.PricingServerTypePrice{
			Location: l.Name, PriceHourly: price("0.0800", "0.0952"), PriceMonthly: price("49.9900", "59.4881"),
			IncludedTraffic: 21990232555520, PricePerTBTraffic: price("1.0000", "1.1900"),
		})
		st.Locations = append(st.Locations, schema.ServerTypeLocation{ID: l.ID, Name: l.Name})
	}
	return st
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// serverTypes: cpx11 as in the docs' example; ccx33 is SMEK's 1-mid
// (8 dedicated vCPU, 32 GB, 240 GB).
var serverTypes = []schema.ServerType{
	serverType(1, "cpx11", 2, 2, 40, "shared"),
	serverType(22, "cx22", 2, 4, 40, "shared"),
	serverType(96, "ccx13", 2, 8, 80, "dedicated"),
	serverType(98, "ccx33", 8, 32, 240, "dedicated"),
}

func findServerType(idOrName schema.IDOrName) (schema.ServerType, bool) {
	for _, st := range serverTypes {
		if (idOrName.ID != 0 && st.ID == idOrName.ID) || (idOrName.Name != "" && st.Name == idOrName.Name) {
			return st, true
		}
	}
	return schema.ServerType{}, false
}

func findLocation(name string) (schema.Location, bool) {
	for _, l := range locations {
		if l.Name == name {
			return l, true
		}
	}
	return schema.Location{}, false
}

func datacenter(l schema.Location) *schema.Datacenter {
	ids := make([]int64, len(serverTypes))
	for i, st := range serverTypes {
		ids[i] = st.ID
	}
	return &schema.Datacenter{
		ID: l.ID, Name: datacenterNames[l.Name], Description: l.Description, Location: l,
		ServerTypes: schema.DatacenterServerTypes{Supported: ids, Available: ids, AvailableForMigration: ids},
	}
}

// addSystemImages adds the public system images a builder starts from.
func (f *Fake) addSystemImages() {
	created := time.Date(2024, 4, 25, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"ubuntu-24.04", "ubuntu-22.04", "debian-12"} {
		id := f.id()
		flavor, version := "ubuntu", name[len("ubuntu-"):]
		if name == "debian-12" {
			flavor, version = "debian", "12"
		}
		f.images[id] = &image{
			id: id, typ: "system", status: "available", name: name, description: name,
			created: created, osFlavor: flavor, osVersion: version, diskSize: 5, labels: map[string]string{},
		}
	}
}

func (f *Fake) listServerTypes(r *http.Request, _ time.Time) (int, any, *apiError) {
	items := serverTypes
	if n := r.URL.Query().Get("name"); n != "" {
		items = nil
		if st, ok := findServerType(schema.IDOrName{Name: n}); ok {
			items = []schema.ServerType{st}
		}
	}
	out, meta, err := page(r, items)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		ServerTypes []schema.ServerType `json:"server_types"`
		Meta        schema.Meta         `json:"meta"`
	}{nonNil(out), meta}, nil
}

func (f *Fake) getServerType(r *http.Request, _ time.Time) (int, any, *apiError) {
	id, err := pathID(r, "server_type")
	if err != nil {
		return 0, nil, err
	}
	st, ok := findServerType(schema.IDOrName{ID: id})
	if !ok {
		return 0, nil, notFound("server_type", id)
	}
	return http.StatusOK, schema.ServerTypeGetResponse{ServerType: st}, nil
}

func (f *Fake) listLocations(r *http.Request, _ time.Time) (int, any, *apiError) {
	items := locations
	if n := r.URL.Query().Get("name"); n != "" {
		items = nil
		if l, ok := findLocation(n); ok {
			items = []schema.Location{l}
		}
	}
	out, meta, err := page(r, items)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		Locations []schema.Location `json:"locations"`
		Meta      schema.Meta       `json:"meta"`
	}{nonNil(out), meta}, nil
}

func (f *Fake) getLocation(r *http.Request, _ time.Time) (int, any, *apiError) {
	id, err := pathID(r, "location")
	if err != nil {
		return 0, nil, err
	}
	for _, l := range locations {
		if l.ID == id {
			return http.StatusOK, schema.LocationGetResponse{Location: l}, nil
		}
	}
	return 0, nil, notFound("location", id)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
