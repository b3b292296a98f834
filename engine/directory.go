package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// The directory and the people in it change only here, through the loop: the
// configured directory at start, the cloud's directory feed (ApplyDirectory) and
// the right to erasure (EraseStaff). Each change drops the person from memory in
// the same step as it commits their rows' removal, so no later offer, tick or
// restart can write a row of theirs back.

// ErrConfigStaff: the person is defined in the configuration file, which the
// gateway re-reads at every start; erasing them from the database alone would be
// undone by the next start.
var ErrConfigStaff = fmt.Errorf("staff member is defined in the configuration file: remove them from the file (staff list), restart the gateway, then erase them: %w", vakt.ErrConflict)

// Erasure is the confirmation of an erasure (G4), returned to whoever asked and
// audited as "staff.erased".
type Erasure struct {
	Staff vakt.StaffID `json:"staff_id"`
	// Pseudonym replaced the staff id in visits, EPR records and alarms.
	Pseudonym vakt.StaffID `json:"pseudonym"`
	ErasedAt  time.Time    `json:"erased_at"`
	// RequestID is the cloud's erasure request id, empty for a local erasure.
	RequestID string `json:"request_id,omitempty"`
	// OffersWithdrawn counts open alarms whose offer to the person was withdrawn
	// (each moved on to the next candidate); AlarmsReoffered those the person had
	// accepted, offered again from the first tier; VisitsEnded the open visits
	// ended at the erasure.
	OffersWithdrawn int `json:"offers_withdrawn"`
	AlarmsReoffered int `json:"alarms_reoffered"`
	VisitsEnded     int `json:"visits_ended"`
	// AuditSubject is the subject of the "staff.erased" audit entry.
	AuditSubject string `json:"audit_subject"`
	// Scrubbed is true when the removed bytes are gone from the database file and
	// its write-ahead log too; false means the scrub is retried shortly (a reader
	// held the WAL) and the answer came first.
	Scrubbed bool `json:"scrubbed"`
}

// EraseStaff removes a person's personal data (G4) as one engine operation: the
// directory entry, live state and position, and logins are deleted and every
// phone session ends; offers still out to them are withdrawn and the alarm moves
// on; an alarm they had accepted is offered again from the first tier; their open
// visits end; in visits, EPR records and alarms their id is replaced by a random
// pseudonym. The audit log keeps the id (ids only; the chain must stay valid). The
// erasure is audited with actor actor, and the answer comes after the commit and
// the scrub of the files. Erasing an id the gateway holds nothing of is not an
// error (a retry after a failed commit is safe). A person from the configuration
// file is refused with ErrConfigStaff.
func (e *Engine) EraseStaff(ctx context.Context, actor string, id vakt.StaffID) (Erasure, error) {
	return e.erase(ctx, actor, id, "")
}

func (e *Engine) erase(ctx context.Context, actor string, id vakt.StaffID, request string) (Erasure, error) {
	if id == "" {
		return Erasure{}, fmt.Errorf("erase staff: empty staff id: %w", vakt.ErrNotFound)
	}
	pseudonym, err := newPseudonym()
	if err != nil {
		return Erasure{}, err
	}
	var out Erasure
	_, err = do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		if e.configStaff(id) {
			return struct{}{}, fmt.Errorf("erase staff %s: %w", id, ErrConfigStaff)
		}
		out = e.eraseIn(b, actor, id, pseudonym, request, now)
		return struct{}{}, nil
	})
	if err != nil {
		return Erasure{}, err
	}
	out.Scrubbed = e.lastScrubbed.Load()
	return out, nil
}

// eraseIn applies one erasure to memory and the batch.
func (e *Engine) eraseIn(b *vakt.Batch, actor string, id, pseudonym vakt.StaffID, request string, now time.Time) Erasure {
	out := Erasure{Staff: id, Pseudonym: pseudonym, ErasedAt: now.UTC(), RequestID: request,
		AuditSubject: "staff:" + string(id)}
	if request != "" {
		out.AuditSubject = "erasure:" + request
	}
	e.stripBatch(b, id, pseudonym)
	d := e.dropPerson(b, id, pseudonym, actor, now)
	out.OffersWithdrawn, out.AlarmsReoffered, out.VisitsEnded = d.withdrawn, d.reoffered, d.visits
	b.Erasures = append(b.Erasures, vakt.Erasure{Staff: id, Pseudonym: pseudonym})
	b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: "staff.erased", Subject: out.AuditSubject})
	e.log.Info("staff erased", "staff", id, "pseudonym", pseudonym, "offers_withdrawn", d.withdrawn,
		"alarms_reoffered", d.reoffered, "visits_ended", d.visits)
	return out
}

func newPseudonym() (vakt.StaffID, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("erase staff: pseudonym: %w", err)
	}
	return vakt.StaffID("erased-" + hex.EncodeToString(r[:])), nil
}

func (e *Engine) configStaff(id vakt.StaffID) bool {
	for _, d := range e.opt.Directory {
		if d.ID == id {
			return true
		}
	}
	return false
}

type dropped struct{ withdrawn, reoffered, visits int }

// dropPerson removes id from memory: directory entry, live state, the routing
// view, offers and assignments in open alarms (moved on, with pseudonym in place of
// the id when not empty), open visits (ended). It asks for the file scrub after
// the commit and ends the person's phone sessions once the commit is through.
func (e *Engine) dropPerson(b *vakt.Batch, id, pseudonym vakt.StaffID, actor string, now time.Time) dropped {
	s := e.st
	var d dropped
	if st, ok := s.staff[id]; ok && st.Position != nil {
		s.scrub = true
	}
	delete(s.directory, id)
	delete(s.staff, id)
	s.peopleDirty, s.handlingDirty = true, true
	e.view.built = time.Time{} // the published view drops them after this batch, not later
	if pseudonym != "" {
		s.scrub = true // the erased rows' bytes leave the files after the commit
	}

	ids := make([]vakt.AlarmID, 0)
	for aid, a := range s.alarms {
		if a.Assignee == id || findOffer(a, id) >= 0 {
			ids = append(ids, aid)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var fxs []effect
	for _, aid := range ids {
		a := s.alarms[aid]
		var acts []routing.Action
		if a.Assignee == id {
			// Nobody is on the way any more: offer it again from the first tier,
			// as routing's re-alarm does for an assignee who never arrived.
			for i := range a.Offers {
				if a.Offers[i].Staff == id {
					a.Offers[i].Status = vakt.OfferWithdrawn
				}
			}
			a.Assignee, a.AcceptedAt = "", time.Time{}
			a.Offers = slices.DeleteFunc(a.Offers, func(o vakt.Offer) bool {
				return o.Status != vakt.OfferPending && o.Status != vakt.OfferDelivered
			})
			a.State, a.Tier, a.Deadline = vakt.StateRaised, 0, time.Time{}
			a.Round++
			acts = e.opt.Router.Raise(a, s.envFor(now, a))
			d.reoffered++
		} else if i := findOffer(a, id); i >= 0 {
			switch a.Offers[i].Status {
			case vakt.OfferPending, vakt.OfferDelivered:
				var err error
				acts, err = e.opt.Router.Reject(a, id, s.envFor(now, a))
				if err != nil {
					e.log.Error("withdraw offer of a removed staff member", "alarm", a.ID, "err", err)
				}
				d.withdrawn++
			}
			if i := findOffer(a, id); i >= 0 {
				a.Offers[i].Status = vakt.OfferWithdrawn
			}
		}
		if pseudonym != "" {
			for i := range a.Offers {
				if a.Offers[i].Staff == id {
					a.Offers[i].Staff = pseudonym
				}
			}
		}
		acts = slices.DeleteFunc(acts, func(act routing.Action) bool { return act.Staff == id })
		fxs = append(fxs, e.record(b, a, actor, "alarm.staff-removed", acts, now))
	}

	var visits []vakt.Visit
	for _, v := range s.visits {
		if v.Staff == id {
			visits = append(visits, v)
		}
	}
	sort.Slice(visits, func(i, j int) bool { return visits[i].ID < visits[j].ID })
	for _, v := range visits {
		v.End, v.Note = now, "staff-removed"
		if pseudonym != "" {
			v.Staff = pseudonym
		}
		e.recordVisit(b, v, actor, "visit.ended", now)
		d.visits++
	}

	e.pending = append(e.pending, runAll(append(fxs, func(err error) {
		if err == nil {
			e.opt.Notifier.Notify(id, vakt.Notice{Type: vakt.NoticeRevoked})
		}
	})))
	return d
}

// stripBatch takes out of this commit's batch what earlier operations queued for
// id: the store applies a removal or erasure before the batch's rows, so a row
// left in would bring the person back. Directory entries, live state and logins
// go; visits, EPR records and alarms get the pseudonym (an erasure) or keep the id
// (a removal).
func (e *Engine) stripBatch(b *vakt.Batch, id, pseudonym vakt.StaffID) {
	b.Directory = slices.DeleteFunc(b.Directory, func(d vakt.Staff) bool { return d.ID == id })
	if e.rows.has(id) {
		b.Staff = slices.DeleteFunc(b.Staff, func(st vakt.StaffState) bool { return st.Staff == id })
		e.rows.reindexStaff(b)
	}
	b.Sessions = slices.DeleteFunc(b.Sessions, func(se vakt.Session) bool { return se.Staff == id })
	if pseudonym == "" {
		return
	}
	for i := range b.Visits {
		if b.Visits[i].Staff == id {
			b.Visits[i].Staff = pseudonym
		}
	}
	for i := range b.EPR {
		if b.EPR[i].Staff == id {
			b.EPR[i].Staff = pseudonym
		}
	}
	for i := range b.Alarms {
		a := &b.Alarms[i]
		if a.Assignee == id {
			a.Assignee = pseudonym
		}
		for j := range a.Offers {
			if a.Offers[j].Staff == id {
				a.Offers = slices.Clone(a.Offers)
				a.Offers[j].Staff = pseudonym
			}
		}
	}
}

func findOffer(a *vakt.Alarm, id vakt.StaffID) int {
	for i := range a.Offers {
		if a.Offers[i].Staff == id {
			return i
		}
	}
	return -1
}

// DirectoryChange is one page of the cloud's directory feed, applied as one engine
// operation and one commit, in order: all of it or none of it.
type DirectoryChange struct {
	Ops []DirectoryOp
	// Cursor, when not nil, is stored in the same commit.
	Cursor *string
}

// DirectoryOpKind is what one directory change does.
type DirectoryOpKind string

const (
	// DirectoryUpsert adds or replaces the whole entry Staff.
	DirectoryUpsert DirectoryOpKind = "upsert"
	// DirectoryRemove: the person (Staff.ID) no longer works here. Offers are
	// withdrawn, alarms they had accepted offered again, open visits ended,
	// sessions ended; their directory entry and live state are deleted (visits and
	// alarms keep the id).
	DirectoryRemove DirectoryOpKind = "remove"
	// DirectoryErase is an erasure request (G4) for Staff.ID, done as EraseStaff
	// does it and audited "staff.erased" with subject "erasure:<RequestID>".
	DirectoryErase DirectoryOpKind = "erase"
)

// DirectoryOp is one change of a DirectoryChange.
type DirectoryOp struct {
	Kind DirectoryOpKind
	// Staff is the whole entry for an upsert; only its ID counts otherwise.
	Staff     vakt.Staff
	RequestID string
}

// ApplyDirectory applies a page of directory changes from the cloud in one commit,
// in the page's order. Entries defined in the configuration file win over the
// cloud's upserts and removals (skipped, with a warning); an erasure of such an
// entry refuses the whole page with ErrConfigStaff, since the site must remove the
// person from the file first. An unknown kind or an empty id refuses the page too.
// The actor of every audit entry is "cloud".
func (e *Engine) ApplyDirectory(ctx context.Context, ch DirectoryChange) error {
	pseudonyms := make([]vakt.StaffID, len(ch.Ops))
	for i, op := range ch.Ops {
		if op.Staff.ID == "" {
			return fmt.Errorf("directory change %d (%s): no staff id", i, op.Kind)
		}
		switch op.Kind {
		case DirectoryUpsert, DirectoryRemove:
		case DirectoryErase:
			p, err := newPseudonym()
			if err != nil {
				return err
			}
			pseudonyms[i] = p
		default:
			return fmt.Errorf("directory change %d: unknown kind %q (want upsert, remove or erase)", i, op.Kind)
		}
	}
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		for _, op := range ch.Ops {
			if op.Kind == DirectoryErase && e.configStaff(op.Staff.ID) {
				return struct{}{}, fmt.Errorf("directory change: erase staff %s (request %s): %w", op.Staff.ID, op.RequestID, ErrConfigStaff)
			}
		}
		s := e.st
		for i, op := range ch.Ops {
			id := op.Staff.ID
			switch {
			case op.Kind == DirectoryErase:
				e.eraseIn(b, "cloud", id, pseudonyms[i], op.RequestID, now)
			case e.configStaff(id):
				e.log.Warn("cloud directory change ignored: the configuration file defines this staff id", "staff", id, "op", op.Kind)
			case op.Kind == DirectoryUpsert:
				u := op.Staff
				old, had := s.directory[id]
				if had && sameStaff(old, u) {
					continue
				}
				if had && old.SecretHash != u.SecretHash {
					// A new secret: whoever logged in with the old one is logged
					// out, on this run's phones now and in the stored logins.
					b.SessionsEnded = append(b.SessionsEnded, id)
					e.pending = append(e.pending, func(err error) {
						if err == nil {
							e.opt.Notifier.Notify(id, vakt.Notice{Type: vakt.NoticeRevoked})
						}
					})
				}
				u.Roles = slices.Clone(u.Roles)
				s.directory[id] = u
				s.peopleDirty = true
				b.Directory = append(b.Directory, u)
				b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "cloud", Action: "staff.directory-upsert", Subject: "staff:" + string(id)})
			case op.Kind == DirectoryRemove:
				_, inDir := s.directory[id]
				_, inState := s.staff[id]
				if !inDir && !inState {
					continue
				}
				e.stripBatch(b, id, "")
				e.dropPerson(b, id, "", "cloud", now)
				b.Removals = append(b.Removals, id)
				b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: "cloud", Action: "staff.removed", Subject: "staff:" + string(id)})
				e.log.Info("staff removed from the directory", "staff", id)
			}
		}
		if ch.Cursor != nil {
			c := *ch.Cursor
			b.DirectoryCursor = &c
		}
		return struct{}{}, nil
	})
	return err
}

// RecordExport audits that everything held about a person was exported (G3), with
// actor actor; the export itself is a read of the store.
func (e *Engine) RecordExport(ctx context.Context, actor string, id vakt.StaffID) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: "staff.exported", Subject: "staff:" + string(id)})
		return struct{}{}, nil
	})
	return err
}

// startOp merges the configured directory and initial demo state into the stored
// state.
type startOp struct{}

func (startOp) apply(e *Engine, b *vakt.Batch) effect {
	s := e.st
	now := e.opt.Clock.Now()
	for _, d := range e.opt.Directory {
		if old, ok := s.directory[d.ID]; !ok || !sameStaff(old, d) {
			b.Directory = append(b.Directory, d)
		}
		s.directory[d.ID] = d
	}
	for _, init := range e.opt.InitialStaff {
		if _, ok := s.staff[init.Staff]; ok {
			continue
		}
		if _, ok := s.directory[init.Staff]; !ok {
			continue // not (or no longer) in the directory: nothing to start
		}
		e.startInitial(b, init, now)
	}
	s.peopleDirty = true
	// A crash between a commit that removed a position and its scrub left the
	// position in the WAL: scrub once at start.
	s.scrub = true
	return nil
}

func sameStaff(a, b vakt.Staff) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Phone == b.Phone && a.Email == b.Email &&
		a.Zone == b.Zone && a.SecretHash == b.SecretHash && slices.Equal(a.Roles, b.Roles)
}

// startInitial puts a configured initial state (demo on duty, availability, pin)
// into the engine and the batch, its position stamped now.
func (e *Engine) startInitial(b *vakt.Batch, init vakt.StaffState, now time.Time) {
	st := init
	if st.Position != nil {
		p := *st.Position
		p.At = now
		st.Position = &p
	}
	e.st.staff[st.Staff] = &st
	e.rows.staffState(b, st)
}
