package githubapp

import "sync"

// byteBudget bounds the bytes of webhook payloads held in memory at once.
// A payload must be read before its signature can be checked, so anyone
// can make the endpoint hold one; the budget keeps their sum bounded, and
// a request that does not fit is refused instead of waiting.
type byteBudget struct {
	limit int64

	mu   sync.Mutex
	used int64 // mu guards used and peak; 0 ≤ used ≤ limit
	peak int64
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// take reserves n bytes; false, reserving nothing, when they do not fit.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit-b.used {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

// give returns n bytes reserved by take.
func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// stats returns the bytes reserved now and the most ever reserved at once.
func (b *byteBudget) stats() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}
