// Package routing decides who is offered an alarm, in which order, and what happens
// when they answer or do not. It is pure logic: no I/O, no SQL, no goroutines, no
// clock of its own — every call gets "now" from the caller (the engine's injected
// clock), and every decision is written into the vakt.Alarm it is given, so the
// engine can commit it and a restart resumes from the stored row.
//
// This is the only package that imports golang-geo.
package routing

import (
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
)

// Tier is one step of escalation.
type Tier struct {
	Target      Target
	Count       int      // nearest: how many are offered at once (default 1)
	Roles       []string // candidates must hold one of these (empty: any)
	Zone        string   // zone target: which zone ("" = the transmitter's)
	Wait        time.Duration
	IncludeBusy bool // busy staff are candidates too (emergencies)
}

// Policy routes alarms of some kinds, optionally only in one zone or some rooms.
type Policy struct {
	Name         string
	Kinds        []vakt.EventKind // empty: every care alarm kind
	Priority     vakt.Priority    // 0: the kind's default
	Zone         string
	Rooms        []string
	ReAlarmAfter time.Duration // 0: no re-alarm
	Tiers        []Tier
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
}

// Person is what routing knows about one staff member at decision time.
type Person struct {
	vakt.StaffState
	Roles []string
	Zone  string
	// HandlingEmergency: this person has accepted an open emergency alarm.
	HandlingEmergency bool
}

// Env is the world at the moment of a decision.
type Env struct {
	Now    time.Time
	Origin vakt.Location // the transmitter's location
	People []Person
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
)

// Action is one effect of a decision. The engine applies them only after the alarm's
// new state has been committed.
type Action struct {
	Kind  ActionKind
	Staff vakt.StaffID
	By    vakt.StaffID
}

// Router makes routing decisions. It holds only configuration and is safe for
// concurrent use.
type Router struct {
	cfg Config
}

// New checks cfg and returns a Router.
func New(cfg Config) (*Router, error) { panic("TODO") }

// Policy returns the policy for an alarm of kind raised at loc: the most specific
// match wins (room, then zone, then site-wide). When nothing matches, a built-in
// fallback offers everyone on duty at the site and waits 60 s per round.
func (r *Router) Policy(kind vakt.EventKind, loc vakt.Location) Policy { panic("TODO") }

// Rank returns the tier's candidates in offer order (nearest first; unknown or stale
// positions after known ones; ties to whoever was offered least recently). Candidates
// are on duty, hold a matching role, are available (or busy when IncludeBusy), are not
// handling an emergency, and are in the zone for zone tiers.
func (r *Router) Rank(t Tier, env Env) []Candidate { panic("TODO") }

// Raise routes a freshly raised alarm (State raised, Policy set): it offers the first
// non-empty tier and sets State, Tier, TierStartedAt, Offers and Deadline.
func (r *Router) Raise(a *vakt.Alarm, env Env) []Action { panic("TODO") }

// Repeat records another trigger of the open alarm: Count+1 and the priority raised
// to p when p is more urgent.
func (r *Router) Repeat(a *vakt.Alarm, p vakt.Priority, env Env) []Action { panic("TODO") }

// Delivered records that staff's phone rang. Unknown offers are ignored.
func (r *Router) Delivered(a *vakt.Alarm, staff vakt.StaffID, env Env) []Action { panic("TODO") }

// Accept gives the alarm to staff, who must hold an offer for it (vakt.ErrForbidden
// otherwise); vakt.ErrConflict when someone else has it. Everyone else offered is
// told it is taken. Accepting twice is harmless.
func (r *Router) Accept(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	panic("TODO")
}

// Reject records a refusal and moves on at once: the next candidate of the tier, or
// the next tier when everyone offered has refused or was unreachable.
func (r *Router) Reject(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	panic("TODO")
}

// Presence records that the assignee is with the resident (only the assignee).
func (r *Router) Presence(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	panic("TODO")
}

// Complete finishes the alarm (only the assignee, after accept or presence).
func (r *Router) Complete(a *vakt.Alarm, staff vakt.StaffID, env Env) ([]Action, error) {
	panic("TODO")
}

// Cancel handles a reset. Before anyone accepted, the alarm is cancelled and every
// offer withdrawn (cancelled=true). After accept it is only recorded: the state does
// not change (cancelled=false), someone is on the way.
func (r *Router) Cancel(a *vakt.Alarm, env Env) (actions []Action, cancelled bool) {
	panic("TODO")
}

// Tick runs every timer of the alarm that is due at env.Now: unconfirmed offers become
// unreachable (next candidate), a tier whose wait ran out escalates (earlier offers stay
// open), exhausted tiers forward to the ARC tier or start another round, an accepted
// alarm without presence in time is offered again. Overdue deadlines (after a restart)
// fire at once. It sets the next Deadline.
func (r *Router) Tick(a *vakt.Alarm, env Env) []Action { panic("TODO") }
