package engine

import (
	"slices"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// record writes one alarm transition into the batch — alarm row, audit entry and outbox
// entry, always together — and returns the effect that tells phones and observers
// once the batch is committed. Phones are told even if the commit failed: the alarm
// still reaches someone from memory while storage is broken (R6).
func (e *Engine) record(b *vakt.Batch, a *vakt.Alarm, actor, action string, acts []routing.Action, now time.Time) effect {
	transition := strings.TrimPrefix(action, "alarm.")
	if transition == "presence" {
		transition = "present"
	}
	return e.recordAs(b, a, actor, action, transition, acts, now)
}

// recordAs is record with the transition named for the log: a timer (audited
// "alarm.timer") escalated, forwarded, re-alarmed or only moved an offer on.
func (e *Engine) recordAs(b *vakt.Batch, a *vakt.Alarm, actor, action, transition string, acts []routing.Action, now time.Time) effect {
	s := e.st
	a.UpdatedAt = now
	for _, act := range acts {
		if act.Kind == routing.ActOffer {
			// Kept in memory, and on disk with the member's next state write (a
			// position, availability, duty): it only breaks ties between equally
			// near colleagues (routing.compareEntries), so a crash that loses it
			// costs nothing, and writing it at every offer cost a page per alarm
			// on the SD card (P6).
			st := s.staffState(act.Staff)
			st.LastOfferedAt = now
			s.touch(act.Staff)
		}
	}
	if a.Assignee != "" || !a.State.Open() {
		s.handlingDirty = true // who is handling an emergency may have changed
	}
	snap := *a
	snap.Offers = slices.Clone(a.Offers)
	if !a.State.Open() {
		// A distance is derived from where a staff member was: once the alarm is
		// closed it has served its purpose and does not go into the history (G1).
		for i := range snap.Offers {
			snap.Offers[i].DistanceM = -1
		}
	}
	e.rows.alarm(b, snap)
	outFx := e.outboundActs(b, a, acts, now)
	b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: action, Subject: "alarm:" + string(a.ID)})
	b.Outbox = append(b.Outbox, alarmEntry(a, action, now))
	if !a.State.Open() {
		delete(s.alarms, a.ID)
		if s.open[keyFor(a.Transmitter, a.Kind)] == a.ID {
			delete(s.open, keyFor(a.Transmitter, a.Kind))
		}
		s.closed.add(a.ID, a.State)
	}
	return func(err error) {
		// Every transition at INFO by id (ids only: the demo terminal shows that an
		// accept worked); after the commit, so the log says what is on disk.
		if err == nil {
			e.log.Info("alarm "+transition, "alarm", snap.ID, "state", snap.State, "tier", snap.Tier,
				"by", actor, "transmitter", snap.Transmitter)
		}
		e.tell(snap, acts)
		if outFx != nil {
			outFx(err)
		}
	}
}

// tell sends the notices for a committed transition and informs observers.
func (e *Engine) tell(a vakt.Alarm, acts []routing.Action) {
	// Observers first: they only queue (a status block for the call system), and a
	// phone that reacts at once should find the rest of the world already told.
	for _, o := range e.opt.Observers {
		o.AlarmChanged(a)
	}
	for _, act := range acts {
		switch act.Kind {
		case routing.ActOffer:
			e.log.Info("offer", "alarm", a.ID, "staff", act.Staff, "tier", a.Tier)
			e.opt.Notifier.Notify(act.Staff, vakt.Notice{Type: vakt.NoticeOffer, Alarm: a})
		case routing.ActTaken:
			e.opt.Notifier.Notify(act.Staff, vakt.Notice{Type: vakt.NoticeTaken, Alarm: a, By: act.By})
		case routing.ActWithdraw:
			e.opt.Notifier.Notify(act.Staff, vakt.Notice{Type: vakt.NoticeWithdrawn, Alarm: a})
		case routing.ActUpdate:
			e.opt.Notifier.Notify(act.Staff, vakt.Notice{Type: vakt.NoticeUpdate, Alarm: a})
		case routing.ActPage:
			if _, queued := e.opt.Outbound["pager:"+act.Pager]; !queued {
				e.page(a, act)
			}
		case routing.ActForward:
			if _, queued := e.opt.Outbound[TargetARC]; queued {
				continue // "forwarded" is logged on the centre's ACK
			}
			// The SIA DC-09 forwarder is an observer; without one configured the
			// forwarded state is still visible to staff and technicians.
			e.log.Warn("alarm forwarded to the alarm receiving centre", "alarm", a.ID)
		}
	}
}

// page calls a pager for a "pager" tier. The display text carries the room and the
// kind of alarm only, never a name (G7).
func (e *Engine) page(a vakt.Alarm, act routing.Action) {
	p, ok := e.opt.Pagers[act.Pager]
	if !ok {
		e.log.Error("pager tier names no configured paging link", "alarm", a.ID, "pager", act.Pager)
		return
	}
	text := pageText(&a, e.st.location(a.Transmitter))
	if err := p.Page(a, act.CallAddress, text); err != nil {
		e.log.Error("page failed", "alarm", a.ID, "pager", act.Pager, "err", err)
		return
	}
	e.log.Info("paged", "alarm", a.ID, "pager", act.Pager, "call_address", act.CallAddress)
}
