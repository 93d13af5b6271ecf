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
}

// Servers returns every server, by id, without counting a request or
// spending the budget (a test's view from outside the API).
func (f *Fake) Servers() []ServerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ServerInfo, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, ServerInfo{ID: s.id, Name: s.name, Status: s.status, Image: s.imageID, Labels: cloneLabels(s.labels), Created: s.created})
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
