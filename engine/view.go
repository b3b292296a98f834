package engine

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	vakt "github.com/vakt/vakt"
)

// View is an immutable picture of the engine's state for readers outside the loop
// (the technician's status page, metrics): the loop publishes a fresh one after its
// commits and readers take it with View() without queueing anything on the loop.
// Nothing in it is ever modified after publication; readers must not modify it.
type View struct {
	// At is the engine clock when the view was built.
	At       time.Time
	WalkTest bool
	// Degraded: the last commit failed, the engine serves from memory (R6).
	Degraded     bool
	Transmitters []TransmitterView // the registry by id, then any other heard from, by id
	Staff        []StaffView       // the directory, by id
	Alarms       []vakt.Alarm      // open alarms, oldest first
}

// TransmitterView is one transmitter with what the gateway last heard from it.
type TransmitterView struct {
	vakt.Transmitter
	Configured bool // in the registry (false: heard from, unknown)
	Health     vakt.TransmitterHealth
	// SilentFor is how long the transmitter has been silent, on the engine's
	// monotonic clock; set only for supervised transmitters.
	SilentFor time.Duration
	// Technical lists its open technical alarms (low battery, tamper, offline).
	Technical []vakt.Alarm
}

// StaffView is a directory entry (no contact details, no secret) with live state.
type StaffView struct {
	ID    vakt.StaffID
	Name  string
	Roles []string
	Zone  string
	State vakt.StaffState
}

// viewEvery bounds how often the view is rebuilt during a burst: the first change
// after a quiet spell is published at once, later ones at most this often.
const viewEvery = 250 * time.Millisecond

// viewState is the loop's bookkeeping for publication.
type viewState struct {
	cur     atomic.Pointer[View]
	built   time.Time // real (monotonic) time of the last build
	pending atomic.Bool

	mu   sync.Mutex
	next chan struct{} // closed at the next publication

	order []vakt.TransmitterID // the registry by id, sorted once (again after a reload: ApplyConfig)
}

// View returns the latest published view; nil before the loop ran.
func (e *Engine) View() *View { return e.view.cur.Load() }

// ViewChanged returns a channel closed when the next view is published: take it
// before reading View() to wait for a change without polling.
func (e *Engine) ViewChanged() <-chan struct{} {
	vs := &e.view
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.next == nil {
		vs.next = make(chan struct{})
	}
	return vs.next
}

// published is the loop's hook after each processed batch: it rebuilds the view at
// once, or when a burst is going on, schedules one rebuild viewEvery later.
func (e *Engine) published() {
	vs := &e.view
	since := time.Since(vs.built)
	if vs.cur.Load() == nil || since >= viewEvery {
		e.buildView(vs)
		return
	}
	if vs.pending.Swap(true) {
		return
	}
	time.AfterFunc(viewEvery-since, func() {
		if e.submit(viewOp{}) != nil {
			vs.pending.Store(false) // queue full or closed: the next batch publishes
		}
	})
}

type viewOp struct{}

func (viewOp) apply(e *Engine, b *vakt.Batch) effect {
	vs := &e.view
	vs.pending.Store(false)
	vs.built = time.Time{} // force: the hook after this batch rebuilds
	return nil
}

func (e *Engine) buildView(vs *viewState) {
	s := e.st
	now := e.opt.Clock.Now()
	v := &View{At: now, WalkTest: e.opt.WalkTest, Degraded: e.degraded}

	tech := map[vakt.TransmitterID][]vakt.Alarm{}
	for _, a := range s.alarms {
		c := *a
		c.Offers = slices.Clone(a.Offers)
		v.Alarms = append(v.Alarms, c)
		if a.Kind.Technical() {
			tech[a.Transmitter] = append(tech[a.Transmitter], c)
		}
	}
	slices.SortFunc(v.Alarms, func(a, b vakt.Alarm) int {
		return cmp.Or(a.RaisedAt.Compare(b.RaisedAt), cmp.Compare(a.ID, b.ID))
	})

	if vs.order == nil {
		for id := range s.transmitters {
			vs.order = append(vs.order, id)
		}
		slices.Sort(vs.order)
	}
	add := func(t vakt.Transmitter, configured bool) {
		tv := TransmitterView{Transmitter: t, Configured: configured, Health: s.health[t.ID], Technical: tech[t.ID]}
		if at, ok := s.heard[t.ID]; ok {
			tv.SilentFor = now.Sub(at)
		}
		slices.SortFunc(tv.Technical, func(a, b vakt.Alarm) int { return cmp.Compare(a.ID, b.ID) })
		v.Transmitters = append(v.Transmitters, tv)
	}
	v.Transmitters = make([]TransmitterView, 0, len(vs.order)+4)
	for _, id := range vs.order {
		add(s.transmitters[id], true)
	}
	// Heard from or alarmed but not configured (the storage, the Z2M bridge, a new
	// device): after the registry, by id.
	var extra []vakt.TransmitterID
	for id := range s.health {
		if _, ok := s.transmitters[id]; !ok {
			extra = append(extra, id)
		}
	}
	for id := range tech {
		if _, ok := s.transmitters[id]; !ok {
			if _, heard := s.health[id]; !heard {
				extra = append(extra, id)
			}
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		add(vakt.Transmitter{ID: id}, false)
	}

	for id, d := range s.directory {
		sv := StaffView{ID: id, Name: d.Name, Roles: slices.Clone(d.Roles), Zone: d.Zone}
		if st, ok := s.staff[id]; ok {
			sv.State = *st
			if st.Position != nil {
				p := *st.Position
				sv.State.Position = &p
			}
		}
		v.Staff = append(v.Staff, sv)
	}
	slices.SortFunc(v.Staff, func(a, b StaffView) int { return cmp.Compare(a.ID, b.ID) })

	vs.cur.Store(v)
	vs.built = time.Now()
	vs.mu.Lock()
	if vs.next != nil {
		close(vs.next)
		vs.next = nil
	}
	vs.mu.Unlock()
}

// QueueDepth is how many events and commands wait for the loop.
func (e *Engine) QueueDepth() int { return len(e.in) + int(e.backlogLen.Load()) }

// Ping returns once the loop has taken a no-op from its queue: the loop is alive.
// It writes nothing. The service watchdog (sd_notify) calls it.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := do(ctx, e, func(*Engine, *vakt.Batch, time.Time) (struct{}, error) { return struct{}{}, nil })
	return err
}

// AuditRead records that reader read personal data (staff names, availability) on
// the status page: one audit entry per page load, committed like any other (G6).
func (e *Engine) AuditRead(ctx context.Context, reader vakt.StaffID, what string) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "staff:" + string(reader), Action: "status.read", Subject: what})
		return struct{}{}, nil
	})
	return err
}
