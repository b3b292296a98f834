package engine

import (
	"time"

	vakt "github.com/vakt/vakt"
)

// redeliveryWindow is how long a source message id is remembered. Sources redeliver
// an unacknowledged message within seconds of reconnecting; ids such as MQTT packet
// ids are reused later, so an old match must not swallow a new press.
const redeliveryWindow = 10 * time.Minute

// recentCapacity bounds how many source ids are remembered at once. What can come
// back is what was not acknowledged when a connection or the process died: an MQTT
// session has at most 65,535 unacknowledged messages (the packet-id space), and
// the serial drivers acknowledge one message at a time. 2^17 holds a full MQTT
// window twice over (messages with a second event, other sources' events in
// between). Beyond it the oldest id is forgotten first (a redelivery that old is
// the least likely). At start store.Load hands over at most the newest 65,536
// events (store.seenMaxEvents, where the reasoning is).
const recentCapacity = 1 << 17

// recentSources recognises redeliveries by (Source, SourceID) in O(1) per event: a
// map for the lookup and a FIFO ring of the same keys in arrival order, from whose
// front ids leave by age or, when the ring is full, by capacity. Nothing ever scans
// the whole set; each id is pushed once and popped at most once.
type recentSources struct {
	byKey map[string]recentEntry
	ring  []recentSlot // len == capacity once full; head is the oldest
	head  int
	n     int
	seq   uint64
	cap   int
	// peak is the largest len(byKey) since the map was last made anew: Go maps
	// never shrink, so a drained storm's map is replaced (see pop).
	peak int

	// scanned counts ring slots examined by eviction, for the test that proves the
	// cost per event stays constant under a backlog.
	scanned int64
}

type recentEntry struct {
	alarm vakt.AlarmID
	at    time.Time
	seq   uint64 // the ring slot that holds this key's latest arrival
}

type recentSlot struct {
	key string
	at  time.Time
	seq uint64
}

// newRecentSources remembers up to capacity ids; hint is how many are about to be
// added (a restart's snapshot), so the map and ring are sized once.
func newRecentSources(capacity, hint int) *recentSources {
	r := &recentSources{byKey: make(map[string]recentEntry, min(hint, capacity)), cap: capacity}
	if hint > 0 {
		r.ring = make([]recentSlot, min(max(hint, 1024), capacity))
	}
	return r
}

// lookup returns what the id did when it was committed, if it was seen within the
// window.
func (r *recentSources) lookup(key string, now time.Time) (vakt.AlarmID, bool) {
	e, ok := r.byKey[key]
	if !ok || now.Sub(e.at) > redeliveryWindow {
		return "", false
	}
	return e.alarm, true
}

// remember records key as seen at now (a later arrival replaces an earlier one).
func (r *recentSources) remember(key string, alarm vakt.AlarmID, now time.Time) {
	r.expire(now)
	if r.n == r.cap {
		r.pop()
	}
	if r.ring == nil {
		r.ring = make([]recentSlot, min(r.cap, 1024))
	}
	if r.n == len(r.ring) {
		r.grow()
	}
	r.seq++
	r.ring[(r.head+r.n)%len(r.ring)] = recentSlot{key: key, at: now, seq: r.seq}
	r.n++
	r.byKey[key] = recentEntry{alarm: alarm, at: now, seq: r.seq}
	r.peak = max(r.peak, len(r.byKey))
}

// expire drops ids older than the window from the front of the ring.
func (r *recentSources) expire(now time.Time) {
	for r.n > 0 {
		r.scanned++
		if now.Sub(r.ring[r.head].at) <= redeliveryWindow {
			return
		}
		r.pop()
	}
}

// pop removes the oldest slot, and its key unless the key arrived again since.
func (r *recentSources) pop() {
	s := &r.ring[r.head]
	if e, ok := r.byKey[s.key]; ok && e.seq == s.seq {
		delete(r.byKey, s.key)
	}
	*s = recentSlot{}
	r.head = (r.head + 1) % len(r.ring)
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	// After a storm drained, give the memory back: copy what is left into a map
	// sized for it. Amortised O(1): it happens only after peak/2 deletions.
	if r.peak >= 4096 && len(r.byKey) <= r.peak/4 {
		m := make(map[string]recentEntry, len(r.byKey))
		for k, v := range r.byKey {
			m[k] = v
		}
		r.byKey, r.peak = m, len(m)
	}
	if len(r.ring) > 1024 && r.n <= len(r.ring)/4 {
		r.resize(max(1024, len(r.ring)/2))
	}
}

// grow doubles the ring up to the capacity.
func (r *recentSources) grow() { r.resize(min(r.cap, 2*len(r.ring))) }

func (r *recentSources) resize(size int) {
	ring := make([]recentSlot, size)
	for i := range r.n {
		ring[i] = r.ring[(r.head+i)%len(r.ring)]
	}
	r.ring, r.head = ring, 0
}

func (r *recentSources) len() int { return len(r.byKey) }

// closedCapacity bounds how many recently closed alarm ids are remembered, so a
// phone's late presence or second complete gets 409 (already completed) rather
// than 404; older ids, and every id after a restart, answer 404.
const closedCapacity = 4096

// recentClosed remembers the states of the last closedCapacity alarms closed, in
// O(1) per alarm: a ring of ids and a map.
type recentClosed struct {
	ring  []vakt.AlarmID
	head  int
	byID  map[vakt.AlarmID]vakt.AlarmState
	limit int
}

func newRecentClosed(limit int) *recentClosed {
	return &recentClosed{byID: map[vakt.AlarmID]vakt.AlarmState{}, limit: limit}
}

func (r *recentClosed) add(id vakt.AlarmID, st vakt.AlarmState) {
	if _, ok := r.byID[id]; ok {
		r.byID[id] = st
		return
	}
	if len(r.ring) < r.limit {
		r.ring = append(r.ring, id)
	} else {
		delete(r.byID, r.ring[r.head])
		r.ring[r.head] = id
		r.head = (r.head + 1) % r.limit
	}
	r.byID[id] = st
}

func (r *recentClosed) state(id vakt.AlarmID) (vakt.AlarmState, bool) {
	st, ok := r.byID[id]
	return st, ok
}
