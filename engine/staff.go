package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	vakt "github.com/vakt/vakt"
)

// Staff returns a directory entry and its state (for login and the phone's "me").
func (e *Engine) Staff(ctx context.Context, id vakt.StaffID) (vakt.Member, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) (vakt.Member, error) {
		d, ok := e.st.directory[id]
		if !ok {
			return vakt.Member{}, fmt.Errorf("staff %s: %w", id, vakt.ErrNotFound)
		}
		return vakt.Member{Staff: d, State: *e.st.staffState(id)}, nil
	})
}

// Members lists every directory entry with its state, sorted by id.
func (e *Engine) Members(ctx context.Context) ([]vakt.Member, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Member, error) {
		out := make([]vakt.Member, 0, len(e.st.directory))
		for id, d := range e.st.directory {
			out = append(out, vakt.Member{Staff: d, State: *e.st.staffState(id)})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	})
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

// Alarms lists the open alarms a staff member may see: those offered to them or
// assigned to them; staff holding one of seeAll roles see every open alarm.
func (e *Engine) Alarms(ctx context.Context, id vakt.StaffID, seeAll ...string) ([]vakt.Alarm, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Alarm, error) {
		all := len(seeAll) > 0 && e.st.directory[id].HasRole(seeAll...)
		var out []vakt.Alarm
		for _, a := range e.st.alarms {
			if all || a.Assignee == id || hasOffer(a, id) {
				c := *a
				c.Offers = slices.Clone(a.Offers)
				out = append(out, c)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Priority != out[j].Priority {
				return out[i].Priority < out[j].Priority
			}
			return out[i].RaisedAt.Before(out[j].RaisedAt)
		})
		return out, nil
	})
}

// Offered lists the alarms currently offered to id and not yet answered: what a
// phone must ring for again when it reconnects (R8).
func (e *Engine) Offered(ctx context.Context, id vakt.StaffID) ([]vakt.Alarm, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Alarm, error) {
		var out []vakt.Alarm
		for _, a := range e.st.alarms {
			if a.Assignee != "" {
				continue
			}
			for _, o := range a.Offers {
				if o.Staff == id && (o.Status == vakt.OfferPending || o.Status == vakt.OfferDelivered) {
					c := *a
					c.Offers = slices.Clone(a.Offers)
					out = append(out, c)
					break
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].RaisedAt.Before(out[j].RaisedAt) })
		return out, nil
	})
}

func hasOffer(a *vakt.Alarm, id vakt.StaffID) bool {
	for _, o := range a.Offers {
		if o.Staff == id && o.Status != vakt.OfferWithdrawn {
			return true
		}
	}
	return false
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
	p, ok := e.opt.Store.(vakt.PositionPurger)
	if !ok {
		s.scrub = false
		e.lastScrubbed.Store(true)
		return
	}
	olderThan := now.Add(-e.opt.PositionTTL)
	if !e.opt.NearestRouting {
		olderThan = now.Add(time.Hour) // switched off: every position goes
	}
	if _, err := p.PurgePositions(context.Background(), olderThan); err != nil {
		e.log.Error("purge positions from disk: retrying", "err", err, "retry_in", scrubRetry)
		s.scrubRetryAt = now.Add(scrubRetry)
		e.lastScrubbed.Store(false)
		return
	}
	s.scrub, s.scrubRetryAt, s.lastDiskPurge = false, time.Time{}, now
	e.lastScrubbed.Store(true)
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

// EndSession forgets a login (logout).
func (e *Engine) EndSession(ctx context.Context, tokenHash string) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, _ time.Time) (struct{}, error) {
		b.Logouts = append(b.Logouts, tokenHash)
		return struct{}{}, nil
	})
	return err
}

// RestoredSessions are the logins stored when the engine started.
func (e *Engine) RestoredSessions() []vakt.Session { return e.sessions }
