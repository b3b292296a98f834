package engine

import (
	"context"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// tickOp fires every due timer.
type tickOp struct{}

func (tickOp) apply(e *Engine, b *vakt.Batch) effect {
	s := e.st
	now := e.opt.Clock.Now()
	var fxs []effect
	// Due alarms in urgency order (routing.CompareUrgency): when a storm's offers
	// time out together, the emergency is decided and offered first.
	var due []*vakt.Alarm
	for _, a := range s.alarms {
		if !a.Deadline.IsZero() && !a.Deadline.After(now) {
			due = append(due, a)
		}
	}
	slices.SortFunc(due, routing.CompareUrgency)
	for _, a := range due {
		before := *a
		acts := e.opt.Router.Tick(a, s.envFor(now, a))
		if len(acts) == 0 && before.State == a.State && before.Tier == a.Tier && before.Deadline.Equal(a.Deadline) {
			continue
		}
		fxs = append(fxs, e.recordAs(b, a, "system", "alarm.timer", timerTransition(before, a), acts, now))
	}
	fxs = append(fxs, e.supervise(b, now)...)
	e.purgePositions(b, now)
	s.seen.expire(now)
	return runAll(fxs)
}

// timerTransition names what a timer did to an alarm, for the log.
func timerTransition(before vakt.Alarm, a *vakt.Alarm) string {
	switch {
	case a.Forwarded && !before.Forwarded:
		return "forwarded"
	case before.Assignee != "" && a.Assignee == "":
		return "re-alarmed"
	case a.Round != before.Round:
		return "new-round"
	case a.Tier != before.Tier:
		return "escalated"
	case !a.State.Open():
		return string(a.State)
	}
	return "offer-timed-out"
}

// runAll combines effects into one; nil entries are skipped.
func runAll(fxs []effect) effect {
	fxs = slices.DeleteFunc(fxs, func(fx effect) bool { return fx == nil })
	if len(fxs) == 0 {
		return nil
	}
	return func(err error) {
		for _, fx := range fxs {
			fx(err)
		}
	}
}

// supervise raises an "offline" technical alarm for every supervised transmitter not
// heard from within its period (Zigbee2MQTT's own availability timeouts are far too
// loose for care alarms). Another silent period counts as a repeat of the open alarm;
// the next message from the transmitter closes it (restored).
func (e *Engine) supervise(b *vakt.Batch, now time.Time) []effect {
	s := e.st
	var fxs []effect
	for id, at := range s.heard {
		if now.Sub(at) < s.transmitters[id].Supervision {
			continue
		}
		s.heard[id] = now
		ev := vakt.Event{Transmitter: id, Kind: vakt.EventOffline, Source: "supervision", ReceivedAt: now, Text: "missed check-in"}
		e.log.Warn("transmitter silent: missed check-in", "transmitter", id)
		alarm, fx := e.raise(b, ev, now)
		b.Events = append(b.Events, vakt.EventRecord{Event: ev, Alarm: alarm})
		fxs = append(fxs, fx)
	}
	return fxs
}

// purgePositions forgets positions older than the TTL (G1) and asks for the disk
// scrub (scrubPositions) that removes them, and every superseded one, from the
// database file and its WAL. That runs whenever a position expired, and at least
// once per TTL while any position is held, since phones that keep reporting never
// let one expire: a superseded position stays on disk at most one TTL.
func (e *Engine) purgePositions(b *vakt.Batch, now time.Time) {
	s := e.st
	purged := 0
	for _, st := range s.staff {
		if st.Position == nil {
			continue
		}
		if !e.opt.NearestRouting || now.Sub(st.Position.At) >= e.opt.PositionTTL {
			st.Position = nil
			e.rows.staffState(b, *st)
			s.touch(st.Staff)
			purged++
		}
	}
	if purged > 0 || now.Sub(s.lastDiskPurge) >= e.opt.PositionTTL {
		s.scrub = true
	}
}

// scrubRetry is how long a failed disk scrub waits before the next try: a reader
// held the WAL past busy_timeout.
const scrubRetry = 10 * time.Second

// scrubPositions runs after a commit that removed a position (off duty, expiry,
// nearest-staff routing off) or when the periodic purge is due, before that
// commit's replies and acknowledgements: the store's purge ends with a TRUNCATE
// checkpoint, so with secure_delete the removed bytes are gone from the main file
// and the WAL that still held them is emptied. Going off duty is answered only
// once the position is in no file. A failed scrub is retried after scrubRetry.
func (e *Engine) scrubPositions(now time.Time) {
	s := e.st
	if !s.scrub || now.Before(s.scrubRetryAt) {
		return
	}
	olderThan := now.Add(-e.opt.PositionTTL)
	if !e.opt.NearestRouting {
		olderThan = now.Add(time.Hour) // switched off: every position goes
	}
	if _, err := e.opt.Store.PurgePositions(context.Background(), olderThan); err != nil {
		e.log.Error("purge positions from disk: retrying", "err", err, "retry_in", scrubRetry)
		s.scrubRetryAt = now.Add(scrubRetry)
		e.lastScrubbed.Store(false)
		return
	}
	s.scrub, s.scrubRetryAt, s.lastDiskPurge = false, time.Time{}, now
	e.lastScrubbed.Store(true)
}
