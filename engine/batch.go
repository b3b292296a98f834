package engine

import vakt "github.com/vakt/vakt"

// rows collects one group commit's whole-row upserts so each alarm, staff member and
// transmitter is written once per commit with its latest state: in a storm a new
// alarm changes twice (raised, offered) and the nearest nurse's offer time hundreds
// of times, and writing each change would multiply the commit's work for nothing.
// Audit and outbox entries are not coalesced: every transition stays on record.
type rows struct {
	alarms map[vakt.AlarmID]int
	staff  map[vakt.StaffID]int
	health map[vakt.TransmitterID]int
}

func (r *rows) reset() {
	if r.alarms == nil {
		r.alarms, r.staff, r.health = map[vakt.AlarmID]int{}, map[vakt.StaffID]int{}, map[vakt.TransmitterID]int{}
		return
	}
	clear(r.alarms)
	clear(r.staff)
	clear(r.health)
}

func (r *rows) alarm(b *vakt.Batch, a vakt.Alarm) { upsert(r.alarms, &b.Alarms, a.ID, a) }

func (r *rows) staffState(b *vakt.Batch, st vakt.StaffState) { upsert(r.staff, &b.Staff, st.Staff, st) }

func (r *rows) healthOf(b *vakt.Batch, h vakt.TransmitterHealth) {
	upsert(r.health, &b.Health, h.Transmitter, h)
}

// upsert replaces the row for k in list, or appends it and remembers where.
func upsert[K comparable, V any](index map[K]int, list *[]V, k K, v V) {
	if i, ok := index[k]; ok {
		(*list)[i] = v
		return
	}
	index[k] = len(*list)
	*list = append(*list, v)
}

// has reports whether this commit holds a staff state row for id.
func (r *rows) has(id vakt.StaffID) bool { _, ok := r.staff[id]; return ok }

// reindexStaff rebuilds the staff index after rows were taken out of b.Staff.
func (r *rows) reindexStaff(b *vakt.Batch) {
	clear(r.staff)
	for i, st := range b.Staff {
		r.staff[st.Staff] = i
	}
}
