package hcloudfake

import (
	"slices"
	"time"
)

// ServerInfo is what tests see of a fake server without an API request.
type ServerInfo struct {
	ID      int64
	Name    string
	Status  string
	Image   int64
	Labels  map[string]string
	Created time.Time
	// UserData is what the metadata service would serve the server.
	UserData string
}

// Servers returns every server, by id, without counting a request or
// spending the budget (a test's view from outside the API).
func (f *Fake) Servers() []ServerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ServerInfo, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, ServerInfo{ID: s.id, Name: s.name, Status: s.status, Image: s.imageID, Labels: cloneLabels(s.labels), Created: s.created, UserData: s.userData})
	}
	slices.SortFunc(out, func(a, b ServerInfo) int { return int(a.ID - b.ID) })
	return out
}

// ActionCounts returns how many actions of each command were started
// ("create_server": 2, "rebuild_server": 1, ...).
func (f *Fake) ActionCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, a := range f.actions {
		out[a.command]++
	}
	return out
}

// ImageInfo is what tests see of a fake image.
type ImageInfo struct {
	ID     int64
	Type   string
	Status string
	Labels map[string]string
	// Inconsistent: taken of a server that was not off (see Disk).
	Inconsistent bool
}

// Images returns every image, system images included, by id, without a
// request.
func (f *Fake) Images() []ImageInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ImageInfo, 0, len(f.images))
	for _, img := range f.images {
		out = append(out, ImageInfo{ID: img.id, Type: img.typ, Status: img.status, Labels: cloneLabels(img.labels), Inconsistent: img.inconsistent})
	}
	slices.SortFunc(out, func(a, b ImageInfo) int { return int(a.ID - b.ID) })
	return out
}

// SetIgnoreACPI makes server id's operating system ignore (or again
// follow) shutdown requests: its shutdown actions still succeed, and it
// keeps running.
func (f *Fake) SetIgnoreACPI(id int64, ignore bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ignore {
		f.ignoreACPI[id] = true
	} else {
		delete(f.ignoreACPI, id)
	}
}

// FailPlacement makes every create of a server in location fail with 412
// and code (CodePlacementError when empty: "An error during the placement
// occurred", or CodeResourceUnavailable, how the same failure has also
// been answered) until ClearPlacement.
func (f *Fake) FailPlacement(location, code string) {
	if code == "" {
		code = CodePlacementError
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.placement[location] = code
}

// ClearPlacement lets creates in location succeed again.
func (f *Fake) ClearPlacement(location string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.placement, location)
}
