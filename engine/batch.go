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

func (r *rows) alarm(b *vakt.Batch, a vakt.Alarm) {
	if i, ok := r.alarms[a.ID]; ok {
		b.Alarms[i] = a
		return
	}
	r.alarms[a.ID] = len(b.Alarms)
	b.Alarms = append(b.Alarms, a)
}

func (r *rows) staffState(b *vakt.Batch, st vakt.StaffState) {
	if i, ok := r.staff[st.Staff]; ok {
		b.Staff[i] = st
		return
	}
	r.staff[st.Staff] = len(b.Staff)
	b.Staff = append(b.Staff, st)
}

func (r *rows) healthOf(b *vakt.Batch, h vakt.TransmitterHealth) {
	if i, ok := r.health[h.Transmitter]; ok {
		b.Health[i] = h
		return
	}
	r.health[h.Transmitter] = len(b.Health)
	b.Health = append(b.Health, h)
}
