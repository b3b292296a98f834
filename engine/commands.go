package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// A phone's commands go through the loop like events: the answer comes after the
// change is committed, so "accepted" on the phone means accepted on disk.

type alarmVerb int

const (
	verbAccept alarmVerb = iota
	verbReject
	verbPresence
	verbComplete
	verbDelivered
)

var verbAction = map[alarmVerb]string{
	verbAccept: "alarm.accepted", verbReject: "alarm.rejected", verbPresence: "alarm.presence",
	verbComplete: "alarm.completed", verbDelivered: "alarm.delivered",
}

type alarmCmd struct {
	verb  alarmVerb
	staff vakt.StaffID
	id    vakt.AlarmID
	note  string
	reply chan<- result[vakt.Alarm]
}

func (c alarmCmd) apply(e *Engine, b *vakt.Batch) effect {
	s := e.st
	now := e.opt.Clock.Now()
	a, ok := s.alarms[c.id]
	if !ok {
		err := fmt.Errorf("alarm %s: %w", c.id, vakt.ErrNotFound)
		if st, closed := s.closed.state(c.id); closed {
			// Closed alarms are not in memory; a late presence or a second
			// complete is a conflict with what happened, not an unknown alarm.
			err = &vakt.AlarmClosedError{ID: c.id, State: st}
		}
		c.reply <- result[vakt.Alarm]{err: err}
		return nil
	}
	env := s.envFor(now, a)
	var acts []routing.Action
	var err error
	var presence effect
	switch c.verb {
	case verbAccept:
		acts, err = e.opt.Router.Accept(a, c.staff, env)
	case verbReject:
		acts, err = e.opt.Router.Reject(a, c.staff, env)
	case verbPresence:
		acts, err = e.opt.Router.Presence(a, c.staff, env)
	case verbComplete:
		if a.Assignee == c.staff && a.State == vakt.StateAccepted {
			// Completing says the assignee was there: presence is recorded first
			// (its own transition and audit entry), then the completion.
			pacts, perr := e.opt.Router.Presence(a, c.staff, env)
			if perr == nil {
				presence = e.record(b, a, "staff:"+string(c.staff), verbAction[verbPresence], pacts, now)
			}
		}
		if a.Assignee == c.staff && (a.State == vakt.StateAccepted || a.State == vakt.StatePresent) {
			e.visitForAlarm(b, a, c.note, now)
		}
		acts, err = e.opt.Router.Complete(a, c.staff, env)
	case verbDelivered:
		// Only a pending offer of this staff member changes; anything else (a late
		// or repeated confirmation, a phone confirming what it was never offered)
		// is not worth a row, an audit entry and an outbox entry.
		if !pendingOffer(a, c.staff) {
			c.reply <- result[vakt.Alarm]{v: *a}
			return nil
		}
		acts = e.opt.Router.Delivered(a, c.staff, env)
	}
	if err != nil {
		c.reply <- result[vakt.Alarm]{err: fmt.Errorf("alarm %s: %w", c.id, err)}
		return nil
	}
	fx := e.record(b, a, "staff:"+string(c.staff), verbAction[c.verb], acts, now)
	snap := *a
	snap.Offers = slices.Clone(a.Offers)
	return func(err error) {
		if presence != nil {
			presence(err)
		}
		fx(err)
		c.reply <- result[vakt.Alarm]{v: snap, err: err}
	}
}

func (e *Engine) alarmCommand(ctx context.Context, v alarmVerb, staff vakt.StaffID, id vakt.AlarmID, note string) (vakt.Alarm, error) {
	return call(ctx, e, func(r chan<- result[vakt.Alarm]) op {
		return alarmCmd{verb: v, staff: staff, id: id, note: note, reply: r}
	})
}

// Accept: "I'm going". Others offered are told it is taken.
func (e *Engine) Accept(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error) {
	return e.alarmCommand(ctx, verbAccept, staff, id, "")
}

// Reject moves the alarm on at once.
func (e *Engine) Reject(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error) {
	return e.alarmCommand(ctx, verbReject, staff, id, "")
}

// Presence: "I'm with the resident".
func (e *Engine) Presence(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error) {
	return e.alarmCommand(ctx, verbPresence, staff, id, "")
}

// Complete finishes the alarm and records the visit (note: a short visit record kind).
func (e *Engine) Complete(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID, note string) (vakt.Alarm, error) {
	return e.alarmCommand(ctx, verbComplete, staff, id, note)
}

// Delivered: the phone rang. It returns once the confirmation is queued, without
// waiting for its commit: the phone is answered nothing, and the confirmation may
// wait for company (lingerFor, P6), which the phone's connection must not wait for
// (its next confirmation would wait behind it). Errors (an unknown alarm) are not
// reported; ctx bounds only the wait for room in the queue.
func (e *Engine) Delivered(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) error {
	return e.enqueue(ctx, alarmCmd{verb: verbDelivered, staff: staff, id: id, reply: make(chan result[vakt.Alarm], 1)})
}

// enqueue queues o, waiting for room as long as ctx allows; it does not wait for o
// to be applied.
func (e *Engine) enqueue(ctx context.Context, o op) error {
	select {
	case e.in <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return vakt.ErrClosed
	}
}

// visitForAlarm records the visit that answered an alarm.
func (e *Engine) visitForAlarm(b *vakt.Batch, a *vakt.Alarm, note string, now time.Time) {
	s := e.st
	t := s.transmitters[a.Transmitter]
	start := a.AcceptedAt
	if start.IsZero() {
		start = now
	}
	v := vakt.Visit{
		ID: s.newVisitID(), Staff: a.Assignee, Room: t.Location.Room, Resident: t.Resident,
		Start: start, End: now, Alarm: a.ID, Note: note,
	}
	e.recordVisit(b, v, "staff:"+string(a.Assignee), "visit.recorded", now)
}

func (s *state) newVisitID() vakt.VisitID {
	s.nextVisit++
	return vakt.VisitID(fmt.Sprintf("v-%d-%d", s.opt.Clock.Now().Unix(), s.nextVisit))
}

func (e *Engine) recordVisit(b *vakt.Batch, v vakt.Visit, actor, action string, now time.Time) {
	b.Visits = append(b.Visits, v)
	b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: action, Subject: "visit:" + string(v.ID)})
	b.Outbox = append(b.Outbox, visitEntry(v, now))
	if v.End.IsZero() {
		e.st.visits[v.ID] = v
	} else {
		delete(e.st.visits, v.ID)
	}
}

// fnOp runs f on the loop; f may add rows and returns the reply value.
type fnOp[T any] struct {
	f     func(e *Engine, b *vakt.Batch, now time.Time) (T, error)
	reply chan<- result[T]
}

func (o fnOp[T]) apply(e *Engine, b *vakt.Batch) effect {
	v, err := o.f(e, b, e.opt.Clock.Now())
	if err != nil {
		o.reply <- result[T]{err: err}
		return nil
	}
	return func(cerr error) { o.reply <- result[T]{v: v, err: cerr} }
}

func do[T any](ctx context.Context, e *Engine, f func(e *Engine, b *vakt.Batch, now time.Time) (T, error)) (T, error) {
	return call(ctx, e, func(r chan<- result[T]) op { return fnOp[T]{f: f, reply: r} })
}

// StartVisit registers the arrival of a staff member at a room or resident (a
// home-care round or a planned visit).
func (e *Engine) StartVisit(ctx context.Context, staff vakt.StaffID, room, resident string) (vakt.Visit, error) {
	return do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (vakt.Visit, error) {
		if room == "" && resident == "" {
			return vakt.Visit{}, fmt.Errorf("visit needs a room or a resident: %w", vakt.ErrConflict)
		}
		v := vakt.Visit{ID: e.st.newVisitID(), Staff: staff, Room: room, Resident: resident, Start: now}
		e.recordVisit(b, v, "staff:"+string(staff), "visit.started", now)
		return v, nil
	})
}

// EndVisit registers the departure. Only the visiting staff member may end it.
func (e *Engine) EndVisit(ctx context.Context, staff vakt.StaffID, id vakt.VisitID, note string) (vakt.Visit, error) {
	return do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (vakt.Visit, error) {
		v, ok := e.st.visits[id]
		if !ok {
			return v, fmt.Errorf("visit %s: %w", id, vakt.ErrNotFound)
		}
		if v.Staff != staff {
			return v, fmt.Errorf("visit %s: %w", id, vakt.ErrForbidden)
		}
		v.End, v.Note = now, note
		e.recordVisit(b, v, "staff:"+string(staff), "visit.ended", now)
		return v, nil
	})
}

// visitLister is the read side of a store that can list a staff member's visits,
// ended ones included (store.DB).
type visitLister interface {
	Visits(ctx context.Context, staff vakt.StaffID) ([]vakt.Visit, error)
}

// errVisitNotOpen is internal: the visit is not open, so it is looked up among the
// caller's ended visits in the store.
var errVisitNotOpen = errors.New("visit not open")

// EPRSent records that a note was sent to the EPR system for a visit: metadata only.
// Only for an existing visit of the caller: an open visit of someone else is
// ErrForbidden; a visit that is neither open nor among the caller's ended visits is
// ErrNotFound (the store has no lookup of someone else's ended visit by id, and
// there is no need to tell a caller whose it is).
func (e *Engine) EPRSent(ctx context.Context, staff vakt.StaffID, visit vakt.VisitID, system string) (vakt.EPRRecord, error) {
	record := func(e *Engine, b *vakt.Batch, now time.Time) vakt.EPRRecord {
		r := vakt.EPRRecord{Visit: visit, System: system, SentAt: now, Staff: staff}
		b.EPR = append(b.EPR, r)
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "staff:" + string(staff), Action: "epr.sent", Subject: "visit:" + string(visit)})
		b.Outbox = append(b.Outbox, eprEntry(r, now))
		return r
	}
	r, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (vakt.EPRRecord, error) {
		v, ok := e.st.visits[visit]
		if !ok {
			return vakt.EPRRecord{}, errVisitNotOpen
		}
		if v.Staff != staff {
			return vakt.EPRRecord{}, fmt.Errorf("visit %s: %w", visit, vakt.ErrForbidden)
		}
		return record(e, b, now), nil
	})
	if !errors.Is(err, errVisitNotOpen) {
		return r, err
	}
	// An ended visit: read outside the loop (the alarm path does not wait for it).
	// It cannot be reopened or change hands, so the check stays true.
	vl, ok := e.opt.Store.(visitLister)
	if !ok {
		return vakt.EPRRecord{}, fmt.Errorf("visit %s: %w", visit, vakt.ErrNotFound)
	}
	mine, err := vl.Visits(ctx, staff)
	if err != nil {
		return vakt.EPRRecord{}, fmt.Errorf("look up visit %s: %w", visit, err)
	}
	for _, v := range mine {
		if v.ID == visit {
			return do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (vakt.EPRRecord, error) {
				return record(e, b, now), nil
			})
		}
	}
	return vakt.EPRRecord{}, fmt.Errorf("visit %s: %w", visit, vakt.ErrNotFound)
}

func pendingOffer(a *vakt.Alarm, id vakt.StaffID) bool {
	for _, o := range a.Offers {
		if o.Staff == id && o.Status == vakt.OfferPending {
			return true
		}
	}
	return false
}

// SetDuty puts a staff member on or off duty. Going off duty drops the position at
// once: positions are kept only while on duty (G1).
func (e *Engine) SetDuty(ctx context.Context, id vakt.StaffID, on bool) (vakt.StaffState, error) {
	return e.updateStaff(ctx, id, "staff.duty", func(st *vakt.StaffState) error {
		st.OnDuty = on
		if !on && st.Position != nil {
			st.Position = nil
			e.st.scrub = true // gone from every file before the answer
		}
		return nil
	})
}

// SetAvailability sets available, busy or away.
func (e *Engine) SetAvailability(ctx context.Context, id vakt.StaffID, a vakt.Availability) (vakt.StaffState, error) {
	return e.updateStaff(ctx, id, "staff.availability", func(st *vakt.StaffState) error {
		if !a.Valid() {
			return fmt.Errorf("availability %q: %w", a, vakt.ErrConflict)
		}
		st.Availability = a
		return nil
	})
}

// ErrPositionRefused: the position was not stored (off duty, or nearest routing off).
var ErrPositionRefused = fmt.Errorf("position not kept: off duty or nearest-staff routing disabled: %w", vakt.ErrConflict)

// SetPosition keeps the latest position only, only while on duty and only when
// nearest-staff routing is on; nothing else about positions is stored or synced.
func (e *Engine) SetPosition(ctx context.Context, id vakt.StaffID, p vakt.Position) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		if _, ok := e.st.directory[id]; !ok {
			return struct{}{}, fmt.Errorf("staff %s: %w", id, vakt.ErrNotFound)
		}
		st := e.st.staffState(id)
		if !e.opt.NearestRouting || !st.OnDuty {
			return struct{}{}, ErrPositionRefused
		}
		p.At = now
		st.Position = &p
		e.rows.staffState(b, *st)
		e.st.touch(id)
		return struct{}{}, nil
	})
	return err
}

func (e *Engine) updateStaff(ctx context.Context, id vakt.StaffID, action string, f func(*vakt.StaffState) error) (vakt.StaffState, error) {
	return do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (vakt.StaffState, error) {
		if _, ok := e.st.directory[id]; !ok {
			return vakt.StaffState{}, fmt.Errorf("staff %s: %w", id, vakt.ErrNotFound)
		}
		st := e.st.staffState(id)
		if err := f(st); err != nil {
			return vakt.StaffState{}, err
		}
		e.rows.staffState(b, *st)
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "staff:" + string(id), Action: action, Subject: "staff:" + string(id)})
		e.st.touch(id)
		return *st, nil
	})
}

// SaveSession keeps a phone's login (its token hash) through restarts; the phone gets
// its answer after the commit, so a login it was given is on disk.
func (e *Engine) SaveSession(ctx context.Context, se vakt.Session) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Sessions = append(b.Sessions, se)
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "staff:" + string(se.Staff), Action: "session.login", Subject: "staff:" + string(se.Staff)})
		return struct{}{}, nil
	})
	return err
}

// EndSession forgets a login (logout), audited as the staff member's.
func (e *Engine) EndSession(ctx context.Context, staff vakt.StaffID, tokenHash string) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Logouts = append(b.Logouts, tokenHash)
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "staff:" + string(staff), Action: "session.logout", Subject: "staff:" + string(staff)})
		return struct{}{}, nil
	})
	return err
}

// Audit commits one audit entry for something that happened outside the engine
// (a failed login, the configuration loaded at start), stamped with the engine's
// clock and chained like every other entry (S7). Actor and subject are ids, never
// names.
func (e *Engine) Audit(ctx context.Context, actor, action, subject string) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: action, Subject: subject})
		return struct{}{}, nil
	})
	return err
}

// RestoredSessions are the logins stored when the engine started.
func (e *Engine) RestoredSessions() []vakt.Session { return e.sessions }
