package cost

import "github.com/smek/action/internal/cluster"

// Usage is what the members of one flavor used over a window: server hours
// per category, and the snapshot GB-hours of its hibernated members.
type Usage struct {
	Flavor cluster.Flavor
	// Hours are server hours per category. Hibernated hours are counted
	// for information; a hibernated member has no server and is billed
	// by SnapshotGBHours instead.
	Hours map[Category]float64
	// SnapshotGBHours is the size of the hibernated members' snapshots
	// times the hours they were kept.
	SnapshotGBHours float64
}

// Add adds h hours in category c.
func (u *Usage) Add(c Category, h float64) {
	if u.Hours == nil {
		u.Hours = map[Category]float64{}
	}
	u.Hours[c] += h
}

// IdleOverhead is idle hours over busy hours, the pool's price of warmth
// per hour of use; ok is false when nothing was busy.
func (u Usage) IdleOverhead() (ratio float64, ok bool) {
	if u.Hours[Busy] == 0 {
		return 0, false
	}
	return u.Hours[Idle] / u.Hours[Busy], true
}

// Cost is what u costs in euros, per category and in total. Every
// category but hibernated is server hours at the flavor's hourly price;
// hibernated is snapshot GB-hours at SnapshotGBMonth / HoursPerMonth. A
// flavor whose size has no server type in the model costs nothing (the
// local backend with an empty model).
func (m Model) Cost(u Usage) (eur map[Category]float64, total float64) {
	eur = map[Category]float64{}
	price, billed := m.HourlyPrice(u.Flavor)
	for _, c := range Categories() {
		var e float64
		switch {
		case c == Hibernated:
			e = u.SnapshotGBHours * m.SnapshotGBMonth / HoursPerMonth
		case billed:
			e = u.Hours[c] * price
		}
		eur[c] = e
		total += e
	}
	return eur, total
}
