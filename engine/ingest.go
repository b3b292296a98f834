package engine

import (
	"time"

	vakt "github.com/vakt/vakt"
)

// Ingest implements vakt.Ingester for drivers: the event is queued for the next group
// commit and done runs after that commit.
func (e *Engine) Ingest(ev vakt.Event, done func(error)) error {
	return e.submit(ingestOp{ev: ev, done: done})
}

type ingestOp struct {
	ev   vakt.Event
	done func(error)
}

func (o ingestOp) apply(e *Engine, b *vakt.Batch) effect {
	fx := e.ingest(b, o.ev)
	return func(err error) {
		if fx != nil {
			fx(err)
		}
		if o.done != nil {
			o.done(err)
		}
	}
}

// ingest decides what one event means: a check-in, a new alarm, a repeat, a reset.
func (e *Engine) ingest(b *vakt.Batch, ev vakt.Event) effect {
	s := e.st
	now := e.opt.Clock.Now()
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = now
	}
	rec := vakt.EventRecord{Event: ev}

	// A redelivery we already committed (same source message id) changes nothing.
	if ev.SourceID != "" {
		key := ev.Source + "\x00" + ev.SourceID
		if alarm, ok := s.seen.lookup(key, now); ok {
			rec.Alarm, rec.Duplicate = alarm, true
			b.Events = append(b.Events, rec)
			return nil
		}
		defer func() { s.seen.remember(key, rec.Alarm, now) }()
	}

	// Every message is a check-in for supervision.
	if _, ok := s.heard[ev.Transmitter]; ok {
		s.heard[ev.Transmitter] = now
	}
	h := s.health[ev.Transmitter]
	h.Transmitter, h.LastSeen, h.Online = ev.Transmitter, ev.ReceivedAt, ev.Kind != vakt.EventOffline
	if ev.Battery != nil {
		h.Battery = ev.Battery
	}
	if ev.LinkQuality != nil {
		h.LinkQuality = ev.LinkQuality
	}
	s.health[ev.Transmitter] = h
	e.noteHealth(b, h) // now or with the next health write (health.go)

	var fx, back effect
	if ev.Kind != vakt.EventOffline {
		back = e.restored(b, ev, vakt.EventOffline, now)
	}
	for _, k := range ev.Clears {
		if k.Technical() && k != ev.Kind {
			back = runAll([]effect{back, e.restored(b, ev, k, now)})
		}
	}
	switch {
	case ev.Kind.Raises() || ev.Kind.Technical():
		if e.opt.WalkTest {
			// Commissioning: the press is recorded and logged, nobody is alarmed.
			e.log.Info("walk test press", "transmitter", ev.Transmitter, "kind", ev.Kind)
			break
		}
		rec.Alarm, fx = e.raise(b, ev, now)
	case ev.Kind == vakt.EventCancel:
		rec.Alarm, fx = e.reset(b, ev, now)
	case ev.Kind == vakt.EventPresence:
		rec.Alarm, fx = e.transmitterPresence(b, ev, now)
	}
	if healthOnly(ev, back) {
		// Its health row only, now or with the next health write: no event row (P6).
		b.HealthOnly++
		return nil
	}
	b.Events = append(b.Events, rec)
	return runAll([]effect{back, fx})
}

// healthOnly reports whether ev changed nothing but its transmitter's health (last
// seen, battery, link quality): a check-in that closed no technical alarm. Such an
// event writes no events row, only its transmitter's health row, and that with the
// next health write unless the disk has no row for it yet (health.go): at a busy
// site's 200,000 check-ins a day those writes were most of the SD card's wear (P6),
// and nothing reads the rows — the status page and supervision read the health in
// memory, an alarm's history reads the events that opened or repeated it, and sync
// uploads health samples from the outbox (queueHealth), not events. Presses,
// cancels, technical events and a check-in that closed an "offline", tamper or
// low-battery alarm keep their rows and are acknowledged after their commit.
//
// A redelivery of such a check-in is still recognised while the gateway runs
// (recentSources remembers its source id); after a restart it is applied again,
// which only sets the same health once more.
func healthOnly(ev vakt.Event, restored effect) bool {
	return ev.Kind == vakt.EventCheckIn && restored == nil
}

// restored closes an open technical alarm of kind when its condition is over: an
// "offline" one when the transmitter is heard from again, a tamper or low-battery one
// when the driver says it cleared (ev.Clears) — unless a technician already accepted
// it (then they close it). Each episode is thus exactly one alarm: raised once,
// repeats folded into it, closed once.
func (e *Engine) restored(b *vakt.Batch, ev vakt.Event, kind vakt.EventKind, now time.Time) effect {
	s := e.st
	id, ok := s.open[keyFor(ev.Transmitter, kind)]
	if !ok {
		return nil
	}
	a := s.alarms[id]
	acts, cancelled := e.opt.Router.Cancel(a, s.envFor(now, a))
	if !cancelled {
		return nil
	}
	return e.record(b, a, "transmitter:"+string(ev.Transmitter), "alarm.restored", acts, now)
}

// raise opens an alarm for the event, or counts a repeat on the open one.
func (e *Engine) raise(b *vakt.Batch, ev vakt.Event, now time.Time) (vakt.AlarmID, effect) {
	s := e.st
	key := keyFor(ev.Transmitter, ev.Kind)
	loc := s.location(ev.Transmitter)
	if id, ok := s.open[key]; ok {
		a := s.alarms[id]
		acts := e.opt.Router.RepeatKind(a, ev.Kind, ev.Priority, s.envFor(now, a))
		return id, e.record(b, a, "transmitter:"+string(ev.Transmitter), "alarm.repeated", acts, now)
	}
	pol := e.opt.Router.PolicyAt(ev.Kind, loc, now)
	prio := ev.Kind.DefaultPriority()
	if pol.Priority != 0 {
		prio = pol.Priority
	}
	if ev.Priority != 0 {
		prio = ev.Priority
	}
	a := &vakt.Alarm{
		ID:          vakt.FormatAlarmID(s.nextAlarm),
		Transmitter: ev.Transmitter,
		Kind:        ev.Kind,
		Priority:    prio,
		State:       vakt.StateRaised,
		RaisedAt:    now,
		Count:       1,
		Policy:      pol.Name,
		Text:        ev.Text,
	}
	s.nextAlarm++
	s.alarms[a.ID] = a
	s.open[key] = a.ID
	raised := e.record(b, a, "transmitter:"+string(ev.Transmitter), "alarm.raised", nil, now)
	env := s.env(now, loc)
	env.Primary = s.transmitters[ev.Transmitter].PrimaryContacts
	acts := e.opt.Router.Raise(a, env)
	offered := e.record(b, a, "system", "alarm.offered", acts, now)
	return a.ID, func(err error) { raised(err); offered(err) }
}

// reset is a cancel at the transmitter: before anyone accepted it cancels the alarm,
// after that it is only recorded (someone is on the way).
func (e *Engine) reset(b *vakt.Batch, ev vakt.Event, now time.Time) (vakt.AlarmID, effect) {
	s := e.st
	id, ok := s.open[keyFor(ev.Transmitter, "")]
	if !ok {
		return "", nil
	}
	a := s.alarms[id]
	acts, cancelled := e.opt.Router.Cancel(a, s.envFor(now, a))
	action := "alarm.reset-recorded"
	if cancelled {
		action = "alarm.cancelled"
	}
	return id, e.record(b, a, "transmitter:"+string(ev.Transmitter), action, acts, now)
}

// transmitterPresence is the presence button in the room: the assignee has arrived.
func (e *Engine) transmitterPresence(b *vakt.Batch, ev vakt.Event, now time.Time) (vakt.AlarmID, effect) {
	s := e.st
	id, ok := s.open[keyFor(ev.Transmitter, "")]
	if !ok {
		return "", nil
	}
	a := s.alarms[id]
	if a.Assignee == "" || a.State != vakt.StateAccepted {
		return id, nil
	}
	acts, err := e.opt.Router.Presence(a, a.Assignee, s.envFor(now, a))
	if err != nil {
		return id, nil
	}
	return id, e.record(b, a, "transmitter:"+string(ev.Transmitter), "alarm.presence", acts, now)
}
