package engine

import (
	"slices"
	"sort"
	"strconv"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// state is everything the loop decides from. Only the loop goroutine touches it.
type state struct {
	opt          Options
	transmitters map[vakt.TransmitterID]vakt.Transmitter
	directory    map[vakt.StaffID]vakt.Staff
	staff        map[vakt.StaffID]*vakt.StaffState
	health       map[vakt.TransmitterID]vakt.TransmitterHealth
	alarms       map[vakt.AlarmID]*vakt.Alarm // open alarms only
	// open maps a transmitter (and, for technical alarms, the kind) to its open alarm,
	// so a repeat never opens a second one.
	open   map[openKey]vakt.AlarmID
	visits map[vakt.VisitID]vakt.Visit // open visits
	seen   *recentSources              // source\x00sourceID → what it did, recently
	closed *recentClosed               // recently closed alarm ids → final state
	// heard is when each supervised transmitter was last heard, on this process's
	// clock (monotonic): a wall-clock jump or a restart never fires supervision early.
	heard map[vakt.TransmitterID]time.Time
	// lastDiskPurge is when positions were last purged from the database file.
	lastDiskPurge time.Time
	// scrub: a position was removed (or the periodic purge is due) and must be
	// scrubbed from the files after the next commit (scrubPositions); a failed
	// scrub waits until scrubRetryAt.
	scrub        bool
	scrubRetryAt time.Time
	nextAlarm    int64
	nextVisit    int64

	// people is the routing view of staff, kept up to date in place: touch copies one
	// member's new state in, handlingDirty recomputes who is busy with an emergency,
	// and only a changed directory (peopleDirty) rebuilds it.
	people        []routing.Person
	peopleIdx     map[vakt.StaffID]int
	pins          []pinSlot // opt.PinnedPositions by people index, rebuilt with people
	peopleDirty   bool
	presenceVer   uint64 // opt.Presence's version copied into people's Offline
	handlingDirty bool
	handling      map[vakt.StaffID]int // open emergencies each staff member has accepted
	active        map[vakt.StaffID]activeAlarms
}

// pinSlot is one demo pin: the person it stands for (an index into people) and the
// stamped copy last handed to routing, reused until a quarter of the position TTL
// has passed.
type pinSlot struct {
	idx int
	pin vakt.Position
	cur *vakt.Position
}

// activeAlarms is how many open alarms a staff member has accepted, and the most
// urgent priority among them (routing's interrupt-busy tiers use it).
type activeAlarms struct {
	n    int
	prio vakt.Priority
}

type openKey struct {
	tx   vakt.TransmitterID
	kind vakt.EventKind // "" for care alarms
}

func keyFor(tx vakt.TransmitterID, kind vakt.EventKind) openKey {
	if kind.Technical() {
		return openKey{tx, kind}
	}
	return openKey{tx, ""}
}

func newState(opt Options, snap *vakt.Snapshot) *state {
	s := &state{
		opt:          opt,
		transmitters: map[vakt.TransmitterID]vakt.Transmitter{},
		directory:    map[vakt.StaffID]vakt.Staff{},
		staff:        map[vakt.StaffID]*vakt.StaffState{},
		health:       map[vakt.TransmitterID]vakt.TransmitterHealth{},
		alarms:       map[vakt.AlarmID]*vakt.Alarm{},
		open:         map[openKey]vakt.AlarmID{},
		visits:       map[vakt.VisitID]vakt.Visit{},
		seen:         newRecentSources(recentCapacity, len(snap.SeenSources)),
		closed:       newRecentClosed(closedCapacity),
		nextAlarm:    snap.NextAlarm,
		peopleDirty:  true,
	}
	for _, t := range opt.Transmitters {
		s.transmitters[t.ID] = t
	}
	for _, d := range snap.Directory {
		s.directory[d.ID] = d
	}
	for i := range snap.Staff {
		st := snap.Staff[i]
		s.staff[st.Staff] = &st
	}
	for _, h := range snap.Health {
		s.health[h.Transmitter] = h
	}
	for i := range snap.OpenAlarms {
		a := snap.OpenAlarms[i]
		s.alarms[a.ID] = &a
		s.open[keyFor(a.Transmitter, a.Kind)] = a.ID
		if n, _ := vakt.ParseAlarmID(a.ID); n >= s.nextAlarm {
			s.nextAlarm = n + 1
		}
	}
	for _, v := range snap.OpenVisits {
		s.visits[v.ID] = v
		if n := visitNumber(v.ID); n >= s.nextVisit {
			s.nextVisit = n + 1
		}
	}
	start := opt.Clock.Now()
	s.heard = map[vakt.TransmitterID]time.Time{}
	s.lastDiskPurge = start
	for _, t := range opt.Transmitters {
		if t.Supervision > 0 {
			s.heard[t.ID] = start // a restart gives every transmitter a full period
		}
	}
	// Oldest first, so that if the ring fills the oldest go first; keys the order
	// does not list (a store that gives none) come after.
	for _, k := range snap.SeenOrder {
		if v, ok := snap.SeenSources[k]; ok {
			s.seen.remember(k, v, start)
		}
	}
	if len(snap.SeenOrder) != len(snap.SeenSources) {
		for k, v := range snap.SeenSources {
			if _, ok := s.seen.lookup(k, start); !ok {
				s.seen.remember(k, v, start)
			}
		}
	}
	if s.nextAlarm < 1 {
		s.nextAlarm = 1
	}
	return s
}

func visitNumber(id vakt.VisitID) int64 {
	s := string(id)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			n, _ := strconv.ParseInt(s[i+1:], 10, 64)
			return n
		}
	}
	return 0
}

// location of a transmitter; an unknown transmitter has an empty one.
func (s *state) location(tx vakt.TransmitterID) vakt.Location {
	return s.transmitters[tx].Location
}

// env builds the routing view of the world at now.
func (s *state) env(now time.Time, origin vakt.Location) routing.Env {
	rebuilt := s.peopleDirty
	if s.peopleDirty {
		s.rebuildPeople()
	}
	if p := s.opt.Presence; p != nil {
		if v := p.PresenceVersion(); v != s.presenceVer || rebuilt {
			// Version first: a change while copying bumps it again for the next decision.
			s.presenceVer = v
			for i := range s.people {
				s.people[i].Offline = !p.Online(s.people[i].Staff)
			}
		}
	}
	if s.handlingDirty {
		s.countHandling()
	}
	// Demo pins never go stale: stamped "now" whenever a quarter of the position
	// TTL has passed. Each pin's stamped copy is kept and handed out again: touch
	// copies a staff member's stored state (no position: pins live only here) over
	// the routing view at every offer, and stamping anew each time then allocated a
	// position per offer, and walking the pin map cost a lookup per pin per decision
	// (together ~20 % of the gateway's CPU in a storm on the load site).
	refresh := s.opt.PositionTTL / 4
	for k := range s.pins {
		ps := &s.pins[k]
		if p := s.people[ps.idx].Position; p != nil && p != ps.cur && !p.At.IsZero() &&
			(!s.pinned(ps.idx, ps.pin) || now.Sub(p.At) < refresh) {
			continue // a real report replaced the pin
		}
		if ps.cur == nil || now.Sub(ps.cur.At) >= refresh {
			pin := ps.pin
			pin.At = now
			ps.cur = &pin // a new copy: a view published earlier may still hold the old one
		}
		s.people[ps.idx].Position = ps.cur
	}
	return routing.Env{Now: now, Origin: origin, People: s.people}
}

// pinned reports whether person i still stands at the demo pin (no newer report).
func (s *state) pinned(i int, pin vakt.Position) bool {
	p := s.people[i].Position
	return p.Lat == pin.Lat && p.Lon == pin.Lon && p.Floor == pin.Floor
}

// touch copies one staff member's changed live state into the routing view.
func (s *state) touch(id vakt.StaffID) {
	if i, ok := s.peopleIdx[id]; ok && !s.peopleDirty {
		s.people[i].StaffState = *s.staff[id]
		return
	}
	s.peopleDirty = true
}

// envFor is env for a decision about a: its own assignee does not count as busy with
// another emergency because of a itself (a re-alarmed emergency may go back to them).
func (s *state) envFor(now time.Time, a *vakt.Alarm) routing.Env {
	env := s.env(now, s.location(a.Transmitter))
	env.Primary = s.transmitters[a.Transmitter].PrimaryContacts
	if a.Assignee == "" || a.Priority != vakt.PriorityEmergency || s.handling[a.Assignee] != 1 {
		return env
	}
	people := slices.Clone(env.People)
	for i := range people {
		if people[i].Staff == a.Assignee {
			people[i].HandlingEmergency = false
		}
	}
	env.People = people
	return env
}

func (s *state) rebuildPeople() {
	s.people = s.people[:0]
	for id, st := range s.staff {
		d, ok := s.directory[id]
		if !ok {
			continue
		}
		s.people = append(s.people, routing.Person{StaffState: *st, Roles: d.Roles, Zone: d.Zone})
	}
	// Map order is random; routing breaks ties by id, but a stable slice keeps
	// decisions reproducible in logs and tests.
	sort.Slice(s.people, func(i, j int) bool { return s.people[i].Staff < s.people[j].Staff })
	s.peopleIdx = make(map[vakt.StaffID]int, len(s.people))
	for i, p := range s.people {
		s.peopleIdx[p.Staff] = i
	}
	s.pins = s.pins[:0]
	for id, pin := range s.opt.PinnedPositions {
		if i, ok := s.peopleIdx[id]; ok {
			s.pins = append(s.pins, pinSlot{idx: i, pin: pin})
		}
	}
	s.peopleDirty = false
	s.countHandling()
}

// countHandling marks who has accepted an open emergency.
func (s *state) countHandling() {
	clear(s.handling)
	if s.handling == nil {
		s.handling = map[vakt.StaffID]int{}
	}
	clear(s.active)
	if s.active == nil {
		s.active = map[vakt.StaffID]activeAlarms{}
	}
	for _, a := range s.alarms {
		if a.Assignee != "" && a.Priority == vakt.PriorityEmergency {
			s.handling[a.Assignee]++
		}
		if a.Assignee != "" && a.State.Open() {
			c := s.active[a.Assignee]
			c.n++
			if c.prio == 0 || a.Priority < c.prio {
				c.prio = a.Priority
			}
			s.active[a.Assignee] = c
		}
	}
	for i := range s.people {
		p := &s.people[i]
		p.HandlingEmergency = s.handling[p.Staff] > 0
		c := s.active[p.Staff]
		p.Active, p.ActivePriority = c.n, c.prio
	}
	s.handlingDirty = false
}

// nextDeadline is the earliest pending timer over open alarms (zero: none).
func (s *state) nextDeadline() time.Time {
	var next time.Time
	for _, a := range s.alarms {
		if a.Deadline.IsZero() {
			continue
		}
		if next.IsZero() || a.Deadline.Before(next) {
			next = a.Deadline
		}
	}
	// A supervised transmitter silent for its period raises a technical alarm.
	for id, at := range s.heard {
		if exp := at.Add(s.transmitters[id].Supervision); next.IsZero() || exp.Before(next) {
			next = exp
		}
	}
	// A failed disk scrub is retried.
	if s.scrub && !s.scrubRetryAt.IsZero() && (next.IsZero() || s.scrubRetryAt.Before(next)) {
		next = s.scrubRetryAt
	}
	// Positions expire after their TTL: wake up to purge them (G1).
	if s.opt.PositionTTL > 0 {
		held := false
		for _, st := range s.staff {
			if st.Position == nil {
				continue
			}
			held = true
			if exp := st.Position.At.Add(s.opt.PositionTTL); next.IsZero() || exp.Before(next) {
				next = exp
			}
		}
		// Superseded positions linger in the WAL: purge the disk once per TTL.
		if exp := s.lastDiskPurge.Add(s.opt.PositionTTL); held && (next.IsZero() || exp.Before(next)) {
			next = exp
		}
	}
	return next
}

// staffState returns the live state of id, creating an off-duty one.
func (s *state) staffState(id vakt.StaffID) *vakt.StaffState {
	st, ok := s.staff[id]
	if !ok {
		st = &vakt.StaffState{Staff: id, Availability: vakt.Available}
		s.staff[id] = st
	}
	return st
}
