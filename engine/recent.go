package engine

import (
	"hash/maphash"
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
//
// Keys and entries hold no pointers: a key is a 128-bit hash of the id (two maphash
// seeds; a false match among 131,072 ids has odds of about 2^-94), times are offsets
// from base, alarms their number. With strings and time.Time a full set was ~23 MB of
// the heap that the collector had to scan at every cycle: in a storm through
// Mosquitto it sat above the 40 MiB soft memory limit and the collector ran ~13
// times a second. Now ~9 MB that it never scans.
type recentSources struct {
	seeds [2]maphash.Seed
	base  time.Time // at offsets are from here; set by the first call
	byKey map[recentKey]recentEntry
	odd   map[recentKey]vakt.AlarmID // alarms whose id FormatAlarmID did not make (rare)
	ring  []recentSlot               // len == capacity once full; head is the oldest
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

type recentKey [2]uint64

type recentEntry struct {
	alarm int64 // the alarm's number (FormatAlarmID); 0 none; -1 see odd
	at    int64 // ns after base
	seq   uint64
}

type recentSlot struct {
	key recentKey
	at  int64
	seq uint64
}

// newRecentSources remembers up to capacity ids; hint is how many are about to be
// added (a restart's snapshot), so the map and ring are sized once.
func newRecentSources(capacity, hint int) *recentSources {
	r := &recentSources{byKey: make(map[recentKey]recentEntry, min(hint, capacity)), cap: capacity,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	if hint > 0 {
		r.ring = make([]recentSlot, min(max(hint, 1024), capacity))
	}
	return r
}

func (r *recentSources) hash(key string) recentKey {
	return recentKey{maphash.String(r.seeds[0], key), maphash.String(r.seeds[1], key)}
}

// offset is now as ns after base (monotonic where the clock gives it).
func (r *recentSources) offset(now time.Time) int64 {
	if r.base.IsZero() {
		r.base = now
	}
	return int64(now.Sub(r.base))
}

// lookup returns what the id did when it was committed, if it was seen within the
// window.
func (r *recentSources) lookup(key string, now time.Time) (vakt.AlarmID, bool) {
	k := r.hash(key)
	e, ok := r.byKey[k]
	if !ok || r.offset(now)-e.at > int64(redeliveryWindow) {
		return "", false
	}
	switch {
	case e.alarm > 0:
		return vakt.FormatAlarmID(e.alarm), true
	case e.alarm < 0:
		return r.odd[k], true
	}
	return "", true
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
	k, at := r.hash(key), r.offset(now)
	n, ok := vakt.ParseAlarmID(alarm)
	switch {
	case alarm == "":
		n = 0
	case !ok || n <= 0:
		n = -1
		if r.odd == nil {
			r.odd = map[recentKey]vakt.AlarmID{}
		}
		r.odd[k] = alarm
	}
	if n >= 0 && r.odd != nil {
		delete(r.odd, k)
	}
	r.seq++
	r.ring[(r.head+r.n)%len(r.ring)] = recentSlot{key: k, at: at, seq: r.seq}
	r.n++
	r.byKey[k] = recentEntry{alarm: n, at: at, seq: r.seq}
	r.peak = max(r.peak, len(r.byKey))
}

// expire drops ids older than the window from the front of the ring.
func (r *recentSources) expire(now time.Time) {
	at := r.offset(now)
	for r.n > 0 {
		r.scanned++
		if at-r.ring[r.head].at <= int64(redeliveryWindow) {
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
		if e.alarm < 0 {
			delete(r.odd, s.key)
		}
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
		m := make(map[recentKey]recentEntry, len(r.byKey))
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
