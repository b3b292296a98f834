// Package routing decides who is offered an alarm, in which order, and what happens
// when they answer or do not. It is pure logic: no I/O, no SQL, no goroutines, no
// clock of its own — every call gets "now" from the caller (the engine's injected
// clock), and every decision is written into the vakt.Alarm it is given, so the
// engine can commit it and a restart resumes from the stored row.
//
// This is the only package that imports golang-geo.
package routing

import (
	"math"
	"slices"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

// Target says whom a tier offers the alarm to.
type Target string

const (
	TargetNearest Target = "nearest" // the Count nearest candidates (more as they decline)
	TargetZone    Target = "zone"    // everyone on duty in a zone (default: the transmitter's)
	TargetSite    Target = "site"    // everyone on duty at the site
	TargetRole    Target = "role"    // everyone on duty holding one of Roles
	TargetARC     Target = "arc"     // hand over to the alarm receiving centre
	TargetPager   Target = "pager"   // call a pager of an existing DECT/paging system (ESPA)
	TargetPrimary Target = "primary" // the resident's primary contacts on duty (Env.Primary)
)

// Tier is one step of escalation.
type Tier struct {
	Target      Target
	Count       int      // nearest: how many are offered at once (default 1)
	Roles       []string // candidates must hold one of these (empty: any)
	Zone        string   // zone target: which zone ("" = the transmitter's)
	Wait        time.Duration
	IncludeBusy bool // busy staff are candidates too (emergencies)
	// InterruptBusy: busy staff whose only active alarm is less urgent than this
	// one are candidates (an emergency may take a nurse away from a normal call).
	InterruptBusy bool
	// Parallel starts the tier together with the tier before it instead of after
	// it. Only side tiers (arc, pager) can be parallel: they hold no offers, so the
	// tier before them keeps its candidates, timers and wait.
	Parallel bool
	// Pager and CallAddress (pager target): which paging link, which pager or group.
	Pager       string
	CallAddress string
}

// Policy routes alarms of some kinds, optionally only in one zone or some rooms.
type Policy struct {
	Name         string
	Kinds        []vakt.EventKind // empty: every care alarm kind
	Priority     vakt.Priority    // 0: the kind's default
	Zone         string
	Rooms        []string
	ReAlarmAfter time.Duration // 0: no re-alarm
	// Windows limit the policy to some times of the week, in the site's time zone
	// (Config.Location); empty: always. At the same location and kind a policy in
	// its window beats one without windows.
	Windows []Window
	// InterruptBusy applies Tier.InterruptBusy to every tier.
	InterruptBusy bool
	Tiers         []Tier
}

// Window is a weekly time range in the site's local time. It starts at From on
// each of Days and ends at To; a To at or before From ends on the next day, so
// {Fri, 22h, 7h} runs from Friday 22:00 to Saturday 07:00. To may be 24h (the end
// of the day). Local clock times follow daylight saving time: on the night the
// clocks go forward a 22:00-07:00 window lasts an hour less.
type Window struct {
	Days     []time.Weekday // empty: every day
	From, To time.Duration  // since local midnight, 0 <= From < 24h, 0 < To <= 24h
}

// Config is everything routing needs from the site's configuration.
type Config struct {
	Policies []Policy
	// OfferConfirm: an offer the phone has not confirmed delivered within this
	// counts as unreachable and the next candidate is offered.
	OfferConfirm time.Duration
	// FloorPenaltyM is added to the distance per floor of difference.
	FloorPenaltyM float64
	// NearestEnabled: positions are used at all (privacy switch).
	NearestEnabled bool
	// PositionTTL: older positions count as unknown.
	PositionTTL time.Duration
	// Location is the site's time zone, for policy windows; nil: time.Local.
	Location *time.Location
}

// Person is what routing knows about one staff member at decision time.
type Person struct {
	vakt.StaffState
	Roles []string
	Zone  string
	// HandlingEmergency: this person has accepted an open emergency alarm.
	HandlingEmergency bool
	// Active is how many open alarms this person has accepted, ActivePriority the
	// most urgent of them; interrupt-busy tiers use them (0: none known).
	Active         int
	ActivePriority vakt.Priority
	// Offline: no phone of this person is connected to the gateway now, so an offer
	// would wait for a reconnect. They rank after everyone connected (nearest first
	// among themselves) and are still offered when nobody else is eligible.
	Offline bool
}

// Env is the world at the moment of a decision.
type Env struct {
	Now    time.Time
	Origin vakt.Location // the transmitter's location
	People []Person
	// Primary are the resident's primary contact staff (the transmitter's), whom
	// a primary tier offers.
	Primary []vakt.StaffID
}

// Candidate is a staff member a tier would offer to, in offer order.
type Candidate struct {
	Staff     vakt.StaffID
	DistanceM float64 // -1 when the position is unknown or stale
}

// ActionKind is what the engine must do after a decision.
type ActionKind int

const (
	ActOffer    ActionKind = iota + 1 // send an offer to Staff
	ActTaken                          // tell Staff that By accepted it: stop ringing
	ActWithdraw                       // tell Staff it is no longer theirs (cancelled, re-routed)
	ActUpdate                         // tell Staff about another change (e.g. the assignee)
	ActForward                        // hand the alarm to the alarm receiving centre
	ActPage                           // call Pager/CallAddress on a paging system
)

// Action is one effect of a decision. The engine applies them only after the alarm's
// new state has been committed.
type Action struct {
	Kind  ActionKind
	Staff vakt.StaffID
	By    vakt.StaffID
	// Pager and CallAddress say whom to page (ActPage).
	Pager       string
	CallAddress string
}

// Router makes routing decisions. It holds only configuration and is safe for
// concurrent use.
type Router struct {
	cfg Config
}

// New checks cfg and returns a Router.
func New(cfg Config) (*Router, error) {
	cfg.Policies = clonePolicies(cfg.Policies)
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	return &Router{cfg: cfg}, nil
}

// Policy is PolicyAt without a time: policies with windows never match.
func (r *Router) Policy(kind vakt.EventKind, loc vakt.Location) Policy {
	return r.PolicyAt(kind, loc, time.Time{})
}

// PolicyAt returns the policy for an alarm of kind raised at loc at now: the most
// specific match wins. Precedence, highest first: the location (a room policy, then
// a zone policy, then a site-wide one), then a policy naming the kind over one for
// every care alarm, then a policy whose window is open now over one without
// windows. A policy whose windows are all closed does not match. When nothing
// matches, a built-in fallback offers everyone on duty at the site and waits 60 s
// per round. The configuration refuses two policies that could tie.
func (r *Router) PolicyAt(kind vakt.EventKind, loc vakt.Location, now time.Time) Policy {
	best, score := -1, 0
	for i := range r.cfg.Policies {
		// Strictly greater: among equally specific policies the first configured wins.
		if m := r.cfg.Policies[i].match(kind, loc, now, r.loc()); m > score {
			best, score = i, m
		}
	}
	if best < 0 {
		return fallback()
	}
	return r.cfg.Policies[best]
}

// Rank returns the tier's candidates in offer order (nearest first; unknown or stale
// positions after known ones; ties to whoever was offered least recently). Candidates
// are on duty, hold a matching role, are available (or busy when IncludeBusy), are not
// handling an emergency, are in the zone for zone tiers and among Env.Primary for
// primary tiers. InterruptBusy needs the alarm's priority, so it applies to the
// decisions about an alarm (Raise and after), not here.
//
// DistanceM is the figure the order follows: great-circle distance plus the floor
// penalty. The candidates the tier would offer at once (Count for nearest, everyone
// otherwise) get it from golang-geo; the rest carry the cheap estimate the order was
// computed from, which agrees with golang-geo to well under a millimetre on a site.
// Distances equal to the centimetre are ties.
func (r *Router) Rank(t Tier, env Env) []Candidate {
	confirm := math.MaxInt
	if t.Target == TargetNearest {
		confirm = t.count()
	}
	return r.rank(nil, rankRequest{tier: &t, env: &env, k: -1, confirm: confirm})
}

// Raise routes a freshly raised alarm (State raised, Policy set): it offers the first
// non-empty tier and sets State, Tier, TierStartedAt, Offers and Deadline.
func (r *Router) Raise(a *vakt.Alarm, env Env) []Action {
	if a.State != vakt.StateRaised {
		return r.Tick(a, env) // already routed: a repeated call only runs due timers
	}
	s := r.newStep(a, &env)
	if a.Round == 0 {
		a.Round = 1
	}
	a.State = vakt.StateOffered
	a.Tier = 0
	s.escalate(true)
	s.setDeadline()
	return s.acts
}

// Repeat records another trigger of the open alarm: Count+1 and the priority raised
// to p when p is more urgent. It is RepeatKind without a kind.
func (r *Router) Repeat(a *vakt.Alarm, p vakt.Priority, env Env) []Action {
	return r.RepeatKind(a, "", p, env)
}

// RepeatKind records another trigger of the open alarm, of kind (a call followed by
// an emergency press on the same transmitter): Count+1. The repeat's priority is p,
// or when p is 0 that of kind's policy, or kind's default. When it is more urgent
// than the alarm's, the alarm is upgraded: it takes the repeat's kind and priority
// and the policy for them, and an alarm nobody has accepted yet starts that policy
// from its first tier (refusals of the lesser alarm no longer count; whoever holds
// an offer keeps it and is told of the change). An accepted alarm stays with its
// assignee, who is told; the new policy's re-alarm applies.
func (r *Router) RepeatKind(a *vakt.Alarm, kind vakt.EventKind, p vakt.Priority, env Env) []Action {
	a.Count++
	if !a.State.Open() {
		return nil
	}
	upgraded := a.Kind
	if kind.Raises() {
		upgraded = kind
	}
	var pol Policy
	if upgraded != a.Kind {
		pol = r.PolicyAt(upgraded, env.Origin, env.Now)
		if p == 0 {
			p = pol.Priority
		}
		if p == 0 {
			p = upgraded.DefaultPriority()
		}
	}
	if p == 0 || (a.Priority != 0 && p >= a.Priority) {
		s := r.newStep(a, &env)
		s.settle()
		return s.acts
	}
	a.Priority = p
	if upgraded == a.Kind {
		// Same kind, more urgent: the policy stays (it routes the kind).
		s := r.newStep(a, &env)
		before := s.liveHolders()
		s.settle()
		s.notifyChange(before)
		return s.acts
	}
	a.Kind, a.Policy = upgraded, pol.Name
	s := r.newStep(a, &env)
	before := s.liveHolders()
	if unassigned(a) {
		s.newRound()
		s.escalate(true)
		s.setDeadline()
	} else {
		s.settle()
	}
	s.notifyChange(before)
	return s.acts
}

// Delivered records that staff's phone rang. Unknown offers are ignored.
func (r *Router) Delivered(a *vakt.Alarm, staff vakt.StaffID, env Env) []Action {
	i := findOffer(a, staff)
	if i < 0 || a.Offers[i].Status != vakt.OfferPending || !unassigned(a) {
		return nil
	}
	s := r.newStep(a, &env)
	a.Offers[i].Status = vakt.OfferDelivered
	s.settle()
	return s.acts
}

// Accept gives the alarm to staff, who must hold an offer for it (vakt.ErrForbidden
// otherwise); vakt.ErrConflict when someone else has it. Everyone else offered is
// told it is taken. Accepting twice is harmless.
func (r *Router) Accept(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	if staff != "" && a.Assignee == staff {
		return nil, nil
	}
	i := findOffer(a, staff)
	switch {
	case i < 0:
		return nil, vakt.ErrForbidden
	case a.Assignee != "" || !unassigned(a):
		return nil, vakt.ErrConflict
	case !live(a.Offers[i].Status) && a.Offers[i].Status != vakt.OfferRejected && a.Offers[i].Status != vakt.OfferUnreachable:
		// A nurse whose delivery confirmation was lost may still say "I'm going";
		// only a withdrawn offer (cancelled, taken) can no longer be accepted.
		return nil, vakt.ErrForbidden
	}
	s := r.newStep(a, &env)
	a.Assignee, a.AcceptedAt = staff, env.Now
	a.State = vakt.StateAccepted
	for j := range a.Offers {
		o := &a.Offers[j]
		switch {
		case j == i:
			o.Status = vakt.OfferAccepted
		case live(o.Status):
			o.Status = vakt.OfferWithdrawn
			s.acts = append(s.acts, Action{Kind: ActTaken, Staff: o.Staff, By: staff})
		}
	}
	s.settle()
	return s.acts, nil
}

// Reject records a refusal and moves on at once: the next candidate of the tier, or
// the next tier when everyone offered has refused or was unreachable.
func (r *Router) Reject(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	if staff != "" && a.Assignee == staff {
		return nil, vakt.ErrConflict // they have it: refusing now is not an answer to an offer
	}
	i := findOffer(a, staff)
	if i < 0 {
		return nil, vakt.ErrForbidden
	}
	if !unassigned(a) {
		return nil, vakt.ErrConflict
	}
	switch a.Offers[i].Status {
	case vakt.OfferRejected:
		return nil, nil
	case vakt.OfferPending, vakt.OfferDelivered, vakt.OfferUnreachable:
	default:
		return nil, vakt.ErrConflict
	}
	s := r.newStep(a, &env)
	a.Offers[i].Status = vakt.OfferRejected
	s.settle()
	return s.acts, nil
}

// Presence records that the assignee is with the resident (only the assignee).
func (r *Router) Presence(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	if err := checkAssignee(a, staff); err != nil {
		return nil, err
	}
	switch a.State {
	case vakt.StatePresent:
		return nil, nil
	case vakt.StateAccepted:
	default:
		return nil, vakt.ErrConflict
	}
	a.State = vakt.StatePresent
	a.Deadline = time.Time{} // no re-alarm: someone is there
	return nil, nil
}

// Complete finishes the alarm (only the assignee, after accept or presence).
func (r *Router) Complete(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	if err := checkAssignee(a, staff); err != nil {
		return nil, err
	}
	switch a.State {
	case vakt.StateCompleted:
		return nil, nil
	case vakt.StateAccepted, vakt.StatePresent:
	default:
		return nil, vakt.ErrConflict
	}
	a.State = vakt.StateCompleted
	a.Deadline = time.Time{}
	return []Action{{Kind: ActUpdate, Staff: staff}}, nil
}

// checkAssignee lets only the assignee act: ErrForbidden for anyone never offered
// the alarm or not its assignee, ErrConflict for someone offered it before anyone
// accepted (they must accept first).
func checkAssignee(a *vakt.Alarm, staff vakt.StaffID) error {
	switch {
	case a.Assignee == "" && findOffer(a, staff) < 0:
		return vakt.ErrForbidden
	case a.Assignee == "":
		return vakt.ErrConflict
	case a.Assignee != staff:
		return vakt.ErrForbidden
	}
	return nil
}

// Cancel handles a reset. Before anyone accepted, the alarm is cancelled and every
// offer withdrawn (cancelled=true). After accept it is only recorded: the state does
// not change (cancelled=false), someone is on the way.
func (r *Router) Cancel(a *vakt.Alarm, env Env) (actions []Action, cancelled bool) {
	if !a.State.Open() || a.Assignee != "" {
		return nil, false
	}
	a.Offers = slices.Clone(a.Offers)
	for i := range a.Offers {
		if o := &a.Offers[i]; live(o.Status) {
			o.Status = vakt.OfferWithdrawn
			actions = append(actions, Action{Kind: ActWithdraw, Staff: o.Staff})
		}
	}
	a.State = vakt.StateCancelled
	a.Deadline = time.Time{}
	return actions, true
}

// Tick runs every timer of the alarm that is due at env.Now: unconfirmed offers become
// unreachable (next candidate), a tier whose wait ran out escalates (earlier offers stay
// open), exhausted tiers forward to the ARC tier or start another round, an accepted
// alarm without presence in time is offered again. Overdue deadlines (after a restart)
// fire at once. It sets the next Deadline.
func (r *Router) Tick(a *vakt.Alarm, env Env) []Action {
	switch {
	case a.State == vakt.StateRaised:
		return r.Raise(a, env) // committed but never routed (crash in between)
	case !a.State.Open():
		a.Deadline = time.Time{}
		return nil
	}
	s := r.newStep(a, &env)
	s.settle()
	return s.acts
}

// CompareUrgency orders alarms whose decisions compete for the same few staff (a
// storm: a fire-door loop, the power coming back): the most urgent priority first,
// then the one raised first, then by id so the order is total. The engine sorts a
// batch's routing decisions and its due timers with it, so an emergency is never
// routed behind hundreds of normal calls, and phones list offers in this order.
func CompareUrgency(a, b *vakt.Alarm) int {
	if pa, pb := urgency(a), urgency(b); pa != pb {
		return int(pa) - int(pb)
	}
	if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
		return c
	}
	return strings.Compare(string(a.ID), string(b.ID))
}

// urgency is the alarm's priority, its kind's default when unset.
func urgency(a *vakt.Alarm) vakt.Priority {
	if a.Priority != 0 {
		return a.Priority
	}
	return a.Kind.DefaultPriority()
}
