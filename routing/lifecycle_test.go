package routing

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// The calls a lifecycle script can make.
const (
	doRaise = iota + 1
	doTick
	doDelivered
	doAccept
	doReject
	doPresence
	doComplete
	doCancel
	doRepeat
)

// move is one call in a lifecycle script and what must follow from it. Zero fields
// are not checked, except want (nil: no actions).
type move struct {
	at    time.Duration // env.Now = t0 + at
	do    int
	staff string
	prio  vakt.Priority
	kind  vakt.EventKind // doRepeat: the repeat's kind ("" the alarm's)
	env   func(*Env)     // changes to the world before the call

	err       error
	want      []Action
	state     vakt.AlarmState
	tier      int
	round     int
	deadline  time.Duration // want Deadline == t0 + deadline; noDeadline: zero
	offers    map[string]vakt.OfferStatus
	cancelled bool
	check     func(t *testing.T, a *vakt.Alarm)
}

const noDeadline = -1

// script runs moves against one alarm, checking each and the invariants.
func script(t *testing.T, r *Router, people []Person, moves []move) *vakt.Alarm {
	t.Helper()
	a := &vakt.Alarm{ID: "alarm-1", Kind: vakt.EventCall, Priority: vakt.PriorityNormal,
		State: vakt.StateRaised, RaisedAt: t0, Count: 1}
	a.Policy = r.Policy(a.Kind, site).Name
	env := Env{Origin: site, People: people}
	for i, m := range moves {
		env.Now = t0.Add(m.at)
		if m.env != nil {
			m.env(&env)
		}
		var (
			acts      []Action
			err       error
			cancelled bool
		)
		staff := vakt.StaffID(m.staff)
		switch m.do {
		case doRaise:
			acts = r.Raise(a, env)
		case doTick:
			acts = r.Tick(a, env)
		case doDelivered:
			acts = r.Delivered(a, staff, env)
		case doAccept:
			acts, err = r.Accept(a, staff, env)
		case doReject:
			acts, err = r.Reject(a, staff, env)
		case doPresence:
			acts, err = r.Presence(a, staff, env)
		case doComplete:
			acts, err = r.Complete(a, staff, env)
		case doCancel:
			acts, cancelled = r.Cancel(a, env)
		case doRepeat:
			acts = r.RepeatKind(a, m.kind, m.prio, env)
		default:
			t.Fatalf("move %d: unknown action %d", i, m.do)
		}
		where := fmt.Sprintf("move %d (%d %s at %v)", i, m.do, m.staff, m.at)
		if !errors.Is(err, m.err) || (m.err == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", where, err, m.err)
		}
		if !equalActions(acts, m.want) {
			t.Errorf("%s: actions = %v, want %v", where, acts, m.want)
		}
		if m.do == doCancel && cancelled != m.cancelled {
			t.Errorf("%s: cancelled = %v, want %v", where, cancelled, m.cancelled)
		}
		if m.state != "" && a.State != m.state {
			t.Errorf("%s: state = %s, want %s", where, a.State, m.state)
		}
		if m.tier != 0 && a.Tier != m.tier {
			t.Errorf("%s: tier = %d, want %d", where, a.Tier, m.tier)
		}
		if m.round != 0 && a.Round != m.round {
			t.Errorf("%s: round = %d, want %d", where, a.Round, m.round)
		}
		switch {
		case m.deadline == noDeadline && !a.Deadline.IsZero():
			t.Errorf("%s: deadline = %v, want none", where, a.Deadline.Sub(t0))
		case m.deadline > 0 && !a.Deadline.Equal(t0.Add(m.deadline)):
			t.Errorf("%s: deadline = t0+%v, want t0+%v", where, a.Deadline.Sub(t0), m.deadline)
		}
		for s, want := range m.offers {
			if got := statusOf(a, s); got != want {
				t.Errorf("%s: offer of %s = %q, want %q", where, s, got, want)
			}
		}
		if m.check != nil {
			m.check(t, a)
		}
		checkInvariants(t, r, a, env.Now)
		if t.Failed() {
			t.Logf("alarm after %s: %+v", where, *a)
			t.FailNow()
		}
	}
	return a
}

type offers = map[string]vakt.OfferStatus

const (
	pending     = vakt.OfferPending
	delivered   = vakt.OfferDelivered
	rejected    = vakt.OfferRejected
	unreachable = vakt.OfferUnreachable
	accepted    = vakt.OfferAccepted
	withdrawn   = vakt.OfferWithdrawn
)

// ward is three east-wing nurses at 10, 20 and 30 m and a west-wing assistant at 40 m.
func ward() []Person {
	return []Person{
		nurse("c", pos(30, 0, 1)),
		nurse("a", pos(10, 0, 1)),
		nurse("b", pos(20, 0, 1)),
		nurse("w", pos(40, 0, 1), inZone("west"), roles("assistant")),
	}
}

// escalating: the nearest nurse for 30 s, then the east wing for 30 s, then the site.
func escalating(extra ...Tier) Config {
	tiers := []Tier{
		{Target: TargetNearest, Roles: []string{"nurse"}, Wait: 30 * time.Second},
		{Target: TargetZone, Wait: 30 * time.Second},
		{Target: TargetSite, Wait: 60 * time.Second},
	}
	return baseConfig(Policy{Name: "care", ReAlarmAfter: 2 * time.Minute, Tiers: append(tiers, extra...)})
}

func TestLifecycle(t *testing.T) {
	cfg := baseConfig(Policy{Name: "care", ReAlarmAfter: 2 * time.Minute, Tiers: []Tier{
		{Target: TargetNearest, Count: 2, Wait: 30 * time.Second},
	}})
	r := newRouter(t, cfg)
	a := script(t, r, ward(), []move{
		{do: doRaise, want: []Action{offer("a"), offer("b")}, state: vakt.StateOffered,
			tier: 1, round: 1, deadline: 10 * time.Second, offers: offers{"a": pending, "b": pending},
			check: func(t *testing.T, a *vakt.Alarm) {
				if !a.TierStartedAt.Equal(t0) || a.Offers[0].OfferedAt != t0 || a.Offers[0].Tier != 1 {
					t.Errorf("offer bookkeeping: %+v", a)
				}
				if d := a.Offers[0].DistanceM; d < 9.99 || d > 10.01 {
					t.Errorf("a's distance %v, want 10 m", d)
				}
			}},
		{at: 2 * time.Second, do: doDelivered, staff: "a", offers: offers{"a": delivered}, deadline: 10 * time.Second},
		{at: 3 * time.Second, do: doDelivered, staff: "b", offers: offers{"b": delivered}, deadline: 30 * time.Second},
		{at: 4 * time.Second, do: doDelivered, staff: "b", deadline: 30 * time.Second}, // twice: harmless
		{at: 5 * time.Second, do: doAccept, staff: "a", want: []Action{taken("b", "a")},
			state: vakt.StateAccepted, deadline: 5*time.Second + 2*time.Minute,
			offers: offers{"a": accepted, "b": withdrawn},
			check: func(t *testing.T, a *vakt.Alarm) {
				if a.Assignee != "a" || !a.AcceptedAt.Equal(t0.Add(5*time.Second)) {
					t.Errorf("assignee %q at %v", a.Assignee, a.AcceptedAt)
				}
			}},
		{at: 6 * time.Second, do: doAccept, staff: "a", state: vakt.StateAccepted}, // twice: harmless
		{at: 60 * time.Second, do: doPresence, staff: "a", state: vakt.StatePresent, deadline: noDeadline},
		{at: 10 * time.Minute, do: doTick, state: vakt.StatePresent, deadline: noDeadline}, // no re-alarm
		{at: 11 * time.Minute, do: doComplete, staff: "a", want: []Action{update("a")},
			state: vakt.StateCompleted, deadline: noDeadline},
		{at: 12 * time.Minute, do: doComplete, staff: "a", state: vakt.StateCompleted}, // twice: harmless
		{at: 13 * time.Minute, do: doTick, state: vakt.StateCompleted, deadline: noDeadline},
	})
	if a.Round != 1 || a.Forwarded {
		t.Errorf("round %d forwarded %v", a.Round, a.Forwarded)
	}
}

func TestEscalation(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		people []Person
		moves  []move
	}{
		{
			name:   "reject moves on to the next nearest at once",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}, tier: 1},
				{at: 2 * time.Second, do: doDelivered, staff: "a", deadline: 30 * time.Second},
				{at: 5 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}, tier: 1,
					offers: offers{"a": rejected, "b": pending}, deadline: 15 * time.Second},
				{at: 6 * time.Second, do: doReject, staff: "a"}, // twice: harmless
			},
		},
		{
			name:   "everyone in the tier rejected: escalate at once, refusers not asked again",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}},
				{at: 2 * time.Second, do: doReject, staff: "b", want: []Action{offer("c")}},
				// a, b and c said no this round, so the east wing (tier 2) has nobody
				// left and the site (tier 3) is offered at once: only w remains
				{at: 3 * time.Second, do: doReject, staff: "c", want: []Action{offer("w")}, tier: 3,
					offers: offers{"a": rejected, "b": rejected, "c": rejected, "w": pending}},
			},
		},
		{
			name:   "empty tier is skipped at once",
			cfg:    escalating(),
			people: []Person{nurse("w", pos(40, 0, 1), inZone("west"), roles("assistant"))},
			moves: []move{
				// no nurse (tier 1), nobody in the east wing (tier 2): the site at once
				{do: doRaise, want: []Action{offer("w")}, state: vakt.StateOffered, tier: 3,
					deadline: 10 * time.Second, check: func(t *testing.T, a *vakt.Alarm) {
						if a.Offers[0].Tier != 3 || !a.TierStartedAt.Equal(t0) {
							t.Errorf("offer %+v", a.Offers[0])
						}
					}},
			},
		},
		{
			name:   "tier wait runs out: next tier, earlier offers stay open",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doDelivered, staff: "a", deadline: 30 * time.Second},
				{at: 29 * time.Second, do: doTick, want: nil, tier: 1, deadline: 30 * time.Second}, // early: nothing
				{at: 30 * time.Second, do: doTick, want: []Action{offer("b"), offer("c")}, tier: 2,
					offers: offers{"a": delivered, "b": pending, "c": pending}, deadline: 40 * time.Second},
				// the nearest still takes it, and the others are told
				{at: 35 * time.Second, do: doAccept, staff: "a", want: []Action{taken("b", "a"), taken("c", "a")},
					state: vakt.StateAccepted},
			},
		},
		{
			name:   "unconfirmed offer: unreachable, withdrawn, next candidate",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}, deadline: 10 * time.Second},
				{at: 10 * time.Second, do: doTick, want: []Action{withdraw("a"), offer("b")}, tier: 1,
					offers: offers{"a": unreachable, "b": pending}, deadline: 20 * time.Second},
				// a late delivery confirmation does not revive the offer...
				{at: 11 * time.Second, do: doDelivered, staff: "a", offers: offers{"a": unreachable}},
				// ...but a nurse who says "I'm going" is taken at her word
				{at: 12 * time.Second, do: doAccept, staff: "a", want: []Action{taken("b", "a")},
					offers: offers{"a": accepted, "b": withdrawn}},
			},
		},
		{
			name:   "last one in the tier unreachable: escalate at once",
			cfg:    escalating(),
			people: []Person{nurse("a", pos(10, 0, 1)), nurse("x", pos(50, 0, 1), roles("assistant"))},
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 10 * time.Second, do: doTick, want: []Action{withdraw("a"), offer("x")}, tier: 2,
					deadline: 20 * time.Second},
			},
		},
		{
			name:   "tiers exhausted: forwarded to the centre, local offers stay open",
			cfg:    escalating(Tier{Target: TargetARC}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doDelivered, staff: "a"},
				{at: 30 * time.Second, do: doTick, want: []Action{offer("b"), offer("c")}},
				{at: 31 * time.Second, do: doDelivered, staff: "b"},
				{at: 32 * time.Second, do: doDelivered, staff: "c"},
				{at: 60 * time.Second, do: doTick, want: []Action{offer("w")}, tier: 3},
				{at: 61 * time.Second, do: doDelivered, staff: "w", deadline: 120 * time.Second},
				{at: 120 * time.Second, do: doTick, want: []Action{forward}, state: vakt.StateForwarded,
					tier: 4, deadline: noDeadline, offers: offers{"a": delivered, "w": delivered},
					check: func(t *testing.T, a *vakt.Alarm) {
						if !a.Forwarded || a.Round != 1 {
							t.Errorf("forwarded %v round %d", a.Forwarded, a.Round)
						}
					}},
				{at: 10 * time.Minute, do: doTick, want: nil, state: vakt.StateForwarded}, // nothing more
				{at: 11 * time.Minute, do: doAccept, staff: "b",
					want:  []Action{taken("a", "b"), taken("c", "b"), taken("w", "b")},
					state: vakt.StateAccepted, deadline: 13 * time.Minute},
				{at: 12 * time.Minute, do: doComplete, staff: "b", want: []Action{update("b")}, state: vakt.StateCompleted},
			},
		},
		{
			name: "centre in the middle: forwarded, then its wait, then the next tier",
			cfg: baseConfig(Policy{Name: "care", Tiers: []Tier{
				{Target: TargetNearest, Wait: 30 * time.Second},
				{Target: TargetARC, Wait: 60 * time.Second},
				{Target: TargetSite, Wait: 60 * time.Second},
			}}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 10 * time.Second, do: doTick, want: []Action{withdraw("a"), offer("b")}},
				{at: 20 * time.Second, do: doTick, want: []Action{withdraw("b"), offer("c")}},
				// c's confirmation and tier 1 end together: the centre, which holds 60 s
				{at: 30 * time.Second, do: doTick, want: []Action{withdraw("c"), forward},
					state: vakt.StateForwarded, tier: 2, deadline: 90 * time.Second},
				// then the site: only w was not asked this round
				{at: 90 * time.Second, do: doTick, want: []Action{offer("w")},
					state: vakt.StateForwarded, tier: 3, deadline: 100 * time.Second},
				// w is unreachable too: nobody left, the centre has it, nothing to time
				{at: 100 * time.Second, do: doTick, want: []Action{withdraw("w")}, tier: 3,
					deadline: noDeadline, state: vakt.StateForwarded},
				{at: 200 * time.Second, do: doTick, want: nil, deadline: noDeadline},
			},
		},
		{
			name:   "tiers exhausted without a centre: a new round from tier 1",
			cfg:    baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetNearest, Roles: []string{"nurse"}, Wait: 30 * time.Second}}}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}, round: 1},
				{at: 1 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}},
				{at: 2 * time.Second, do: doReject, staff: "b", want: []Action{offer("c")}},
				// the last nurse says no: round 2, refusals forgotten, nearest first
				{at: 3 * time.Second, do: doReject, staff: "c", want: []Action{offer("a")}, round: 2, tier: 1,
					offers: offers{"a": pending, "b": "", "c": ""}, deadline: 13 * time.Second,
					check: func(t *testing.T, a *vakt.Alarm) {
						if len(a.Offers) != 1 {
							t.Errorf("round 2 offers %+v, want only a's", a.Offers)
						}
					}},
			},
		},
		{
			name:   "new round: live offers stay open and their holders are not asked twice",
			cfg:    baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetNearest, Roles: []string{"nurse"}, Wait: 30 * time.Second}}}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doDelivered, staff: "a"},
				{at: 30 * time.Second, do: doTick, want: []Action{offer("b")}, round: 2, tier: 1,
					offers: offers{"a": delivered, "b": pending}, deadline: 40 * time.Second},
				{at: 31 * time.Second, do: doReject, staff: "a", want: nil, round: 2,
					// a's old offer is not part of round 2's tier 1: b still holds it
					offers: offers{"a": rejected, "b": pending}},
				{at: 32 * time.Second, do: doAccept, staff: "b", state: vakt.StateAccepted},
			},
		},
		{
			name:   "nobody at all: keep trying at tier 1's pace, offer the first who comes on duty",
			cfg:    escalating(),
			people: []Person{nurse("a", pos(10, 0, 1), offDuty)},
			moves: []move{
				{do: doRaise, want: nil, state: vakt.StateOffered, tier: 1, round: 1, deadline: 30 * time.Second},
				{at: 30 * time.Second, do: doTick, want: nil, tier: 1, round: 2, deadline: 60 * time.Second},
				{at: 45 * time.Second, do: doRepeat, env: func(e *Env) { e.People[0].OnDuty = true },
					want: []Action{offer("a")}, tier: 1, round: 2, deadline: 55 * time.Second},
			},
		},
		{
			name: "broadcast tier escalates only when all of it said no",
			cfg: baseConfig(Policy{Name: "care", Tiers: []Tier{
				{Target: TargetZone, Wait: 60 * time.Second},
				{Target: TargetRole, Roles: []string{"assistant"}, Wait: 60 * time.Second},
			}}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a"), offer("b"), offer("c")}},
				{at: 1 * time.Second, do: doReject, staff: "a", want: nil, tier: 1},
				{at: 2 * time.Second, do: doReject, staff: "c", want: nil, tier: 1},
				{at: 3 * time.Second, do: doReject, staff: "b", want: []Action{offer("w")}, tier: 2},
			},
		},
		{
			name:   "re-alarm: accepted, nobody arrived, offered again from tier 1",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 5 * time.Second, do: doAccept, staff: "a", deadline: 5*time.Second + 2*time.Minute},
				{at: 2 * time.Minute, do: doTick, want: nil, state: vakt.StateAccepted},
				{at: 5*time.Second + 2*time.Minute, do: doTick,
					want:  []Action{update("a"), offer("a")}, // a is still the nearest
					state: vakt.StateOffered, tier: 1, round: 2,
					offers:   offers{"a": pending},
					deadline: 15*time.Second + 2*time.Minute,
					check: func(t *testing.T, a *vakt.Alarm) {
						if a.Assignee != "" || !a.AcceptedAt.IsZero() || len(a.Offers) != 1 {
							t.Errorf("after re-alarm: %+v", a)
						}
					}},
				{at: 2*time.Minute + 10*time.Second, do: doReject, staff: "a", want: []Action{offer("b")}},
			},
		},
		{
			name:   "presence stops the re-alarm",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 5 * time.Second, do: doAccept, staff: "a"},
				{at: 90 * time.Second, do: doPresence, staff: "a", state: vakt.StatePresent, deadline: noDeadline},
				{at: 5 * time.Minute, do: doTick, want: nil, state: vakt.StatePresent},
			},
		},
		{
			name:   "presence after the re-alarm deadline but before the tick still counts",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 5 * time.Second, do: doAccept, staff: "a"},
				{at: 10 * time.Minute, do: doPresence, staff: "a", state: vakt.StatePresent, deadline: noDeadline},
			},
		},
		{
			name:   "cancel before accept withdraws every live offer",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}},
				{at: 30 * time.Second, do: doTick, want: []Action{withdraw("b"), offer("c")}}, // b never confirmed
				{at: 31 * time.Second, do: doDelivered, staff: "c"},
				{at: 35 * time.Second, do: doCancel, want: []Action{withdraw("c")}, cancelled: true,
					state: vakt.StateCancelled, deadline: noDeadline,
					offers: offers{"a": rejected, "b": unreachable, "c": withdrawn}},
				{at: 36 * time.Second, do: doCancel, cancelled: false, state: vakt.StateCancelled},
				{at: 37 * time.Second, do: doAccept, staff: "c", err: vakt.ErrConflict},
				{at: 38 * time.Second, do: doTick, state: vakt.StateCancelled, deadline: noDeadline},
			},
		},
		{
			name:   "cancel after accept is only recorded",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 5 * time.Second, do: doAccept, staff: "a"},
				{at: 6 * time.Second, do: doCancel, cancelled: false, state: vakt.StateAccepted,
					deadline: 5*time.Second + 2*time.Minute},
				{at: 7 * time.Second, do: doPresence, staff: "a"},
				{at: 8 * time.Second, do: doCancel, cancelled: false, state: vakt.StatePresent},
			},
		},
		{
			name:   "cancel of a forwarded alarm",
			cfg:    baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetARC}}}),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{forward}, state: vakt.StateForwarded, deadline: noDeadline},
				{at: time.Second, do: doCancel, cancelled: true, state: vakt.StateCancelled},
			},
		},
		{
			name:   "repeat raises the priority and tells everyone involved",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 1 * time.Second, do: doRepeat, prio: vakt.PriorityNormal, want: nil,
					check: func(t *testing.T, a *vakt.Alarm) {
						if a.Count != 2 || a.Priority != vakt.PriorityNormal {
							t.Errorf("count %d priority %d", a.Count, a.Priority)
						}
					}},
				{at: 2 * time.Second, do: doRepeat, prio: 0, want: nil},
				{at: 5 * time.Second, do: doRepeat, prio: vakt.PriorityEmergency, want: []Action{update("a")},
					check: func(t *testing.T, a *vakt.Alarm) {
						if a.Count != 4 || a.Priority != vakt.PriorityEmergency {
							t.Errorf("count %d priority %d", a.Count, a.Priority)
						}
					}},
				{at: 30 * time.Second, do: doTick, want: []Action{withdraw("a"), offer("b"), offer("c")}},
				{at: 31 * time.Second, do: doAccept, staff: "b", want: []Action{taken("c", "b")}},
				{at: 32 * time.Second, do: doRepeat, prio: vakt.PriorityHigh, want: nil}, // less urgent
				{at: 33 * time.Second, do: doRepeat, prio: vakt.PriorityEmergency, want: nil},
				{at: 34 * time.Second, do: doComplete, staff: "b", want: []Action{update("b")}},
				{at: 35 * time.Second, do: doRepeat, prio: vakt.PriorityEmergency, want: nil,
					check: func(t *testing.T, a *vakt.Alarm) {
						if a.Count != 7 {
							t.Errorf("count %d", a.Count)
						}
					}},
			},
		},
		{
			name:   "repeat after accept tells the assignee",
			cfg:    escalating(),
			people: ward(),
			moves: []move{
				{do: doRaise, want: []Action{offer("a")}},
				{at: 5 * time.Second, do: doAccept, staff: "a"},
				{at: 6 * time.Second, do: doRepeat, prio: vakt.PriorityHigh, want: []Action{update("a")},
					state: vakt.StateAccepted, deadline: 5*time.Second + 2*time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script(t, newRouter(t, tt.cfg), tt.people, tt.moves)
		})
	}
}

func TestErrors(t *testing.T) {
	cfg := baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetNearest, Count: 2, Wait: 30 * time.Second}}})
	// a and b are offered; c, farther, is on duty but not offered.
	raised := []move{{do: doRaise, want: []Action{offer("a"), offer("b")}}}
	acceptedByA := append(slices.Clone(raised), move{at: time.Second, do: doAccept, staff: "a", want: []Action{taken("b", "a")}})
	tests := []struct {
		name  string
		setup []move
		try   move
	}{
		{"accept without an offer", raised, move{do: doAccept, staff: "c", err: vakt.ErrForbidden}},
		{"accept by nobody", raised, move{do: doAccept, staff: "", err: vakt.ErrForbidden}},
		{"accept after someone else did", acceptedByA, move{do: doAccept, staff: "b", err: vakt.ErrConflict}},
		{"accept after someone else did, never offered", acceptedByA, move{do: doAccept, staff: "c", err: vakt.ErrForbidden}},
		{"accept after rejecting: changed their mind", append(slices.Clone(raised),
			move{do: doReject, staff: "b", want: []Action{offer("c")}}),
			move{do: doAccept, staff: "b", want: []Action{taken("a", "b"), taken("c", "b")}, state: vakt.StateAccepted}},
		{"reject without an offer", raised, move{do: doReject, staff: "c", err: vakt.ErrForbidden}},
		{"reject by the assignee", acceptedByA, move{do: doReject, staff: "a", err: vakt.ErrConflict}},
		{"reject after someone else accepted", acceptedByA, move{do: doReject, staff: "b", err: vakt.ErrConflict}},
		{"presence before accept", raised, move{do: doPresence, staff: "a", err: vakt.ErrConflict}},
		{"presence by another", acceptedByA, move{do: doPresence, staff: "b", err: vakt.ErrForbidden}},
		{"complete before accept", raised, move{do: doComplete, staff: "a", err: vakt.ErrConflict}},
		{"complete by another", acceptedByA, move{do: doComplete, staff: "c", err: vakt.ErrForbidden}},
		{"presence after complete", append(slices.Clone(acceptedByA),
			move{do: doComplete, staff: "a", want: []Action{update("a")}}),
			move{do: doPresence, staff: "a", err: vakt.ErrConflict}},
		{"reject after cancel", append(slices.Clone(raised),
			move{do: doCancel, want: []Action{withdraw("a"), withdraw("b")}, cancelled: true}),
			move{do: doReject, staff: "a", err: vakt.ErrConflict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			people := []Person{nurse("a", pos(10, 0, 1)), nurse("b", pos(20, 0, 1)), nurse("c", pos(200, 0, 1))}
			try := tt.try
			try.at = 2 * time.Second
			script(t, newRouter(t, cfg), people, append(slices.Clone(tt.setup), try))
		})
	}
}

// TestRestart: the alarm row is all routing needs. A copy of it ticked long after its
// deadline (the gateway was down) fires at once and leaves the original untouched.
func TestRestart(t *testing.T) {
	r := newRouter(t, escalating())
	people := ward()
	a := vakt.Alarm{ID: "x", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "care"}
	env := Env{Now: t0, Origin: site, People: people}
	r.Raise(&a, env)
	r.Delivered(&a, "a", Env{Now: t0.Add(time.Second), Origin: site, People: people})
	if !a.Deadline.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("deadline %v", a.Deadline)
	}

	stored := a // what the store read back after the restart
	late := t0.Add(time.Hour)
	acts := r.Tick(&stored, Env{Now: late, Origin: site, People: people})
	if want := []Action{offer("b"), offer("c")}; !slices.Equal(acts, want) {
		t.Fatalf("overdue tick: %v, want %v", acts, want)
	}
	if stored.Tier != 2 || !stored.TierStartedAt.Equal(late) || !stored.Deadline.Equal(late.Add(10*time.Second)) {
		t.Errorf("after the restart: tier %d started %v deadline %v", stored.Tier, stored.TierStartedAt, stored.Deadline)
	}
	checkInvariants(t, r, &stored, late)
	// The caller's previous value (say, kept to roll back a failed commit) is intact.
	if a.Tier != 1 || len(a.Offers) != 1 || a.Offers[0].Status != vakt.OfferDelivered {
		t.Errorf("original changed: %+v", a)
	}

	// A raised alarm that was committed but never routed is routed by its first tick.
	fresh := vakt.Alarm{ID: "y", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "care"}
	if acts := r.Tick(&fresh, Env{Now: late, Origin: site, People: people}); !slices.Equal(acts, []Action{offer("a")}) {
		t.Errorf("tick of a raised alarm: %v", acts)
	}
}

// TestPolicyGone: an alarm whose policy a reload removed is routed by today's rules.
func TestPolicyGone(t *testing.T) {
	r := newRouter(t, escalating())
	a := vakt.Alarm{ID: "x", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "renamed"}
	acts := r.Raise(&a, Env{Now: t0, Origin: site, People: ward()})
	if a.Policy != "care" || !slices.Equal(acts, []Action{offer("a")}) {
		t.Errorf("policy %q actions %v", a.Policy, acts)
	}
}

// TestRandomWalk drives many alarms through random calls at random times and checks
// the invariants after every one: an open alarm nobody has always has a deadline,
// nobody holds two live offers, accepted alarms offer nobody, closed ones wait for
// nothing.
func TestRandomWalk(t *testing.T) {
	cfgs := []Config{
		escalating(),
		escalating(Tier{Target: TargetARC}),
		baseConfig(Policy{Name: "care", ReAlarmAfter: time.Minute, Tiers: []Tier{
			{Target: TargetNearest, Count: 2, Wait: 20 * time.Second},
			{Target: TargetARC, Wait: 15 * time.Second},
			{Target: TargetRole, Roles: []string{"assistant"}, Wait: 40 * time.Second},
		}}),
		baseConfig(),
	}
	rng := newRand(7)
	for run := range 300 {
		cfg := cfgs[run%len(cfgs)]
		r := newRouter(t, cfg)
		people := ward()
		a := &vakt.Alarm{ID: "x", Kind: vakt.EventCall, State: vakt.StateRaised}
		now := t0
		env := func() Env { return Env{Now: now, Origin: site, People: people} }
		r.Raise(a, env())
		checkInvariants(t, r, a, now)
		for i := 0; i < 40 && a.State.Open(); i++ {
			next := now.Add(time.Duration(rng.IntN(25)) * time.Second)
			// The engine's timer fires at each deadline on the way, as it would.
			for !a.Deadline.IsZero() && !a.Deadline.After(next) && a.State.Open() {
				now = a.Deadline
				r.Tick(a, env())
				checkInvariants(t, r, a, now)
				if t.Failed() {
					t.Fatalf("run %d tick at %v: %+v", run, now.Sub(t0), *a)
				}
			}
			now = next
			p := people[rng.IntN(len(people))]
			people[rng.IntN(len(people))].OnDuty = rng.IntN(5) > 0
			switch rng.IntN(10) {
			case 0, 1:
				r.Tick(a, env())
			case 2:
				// Late: as after a restart, or a timer that fired long after.
				now = now.Add(time.Duration(rng.IntN(300)) * time.Second)
				r.Tick(a, env())
			case 3, 4:
				r.Delivered(a, p.Staff, env())
			case 5:
				r.Reject(a, p.Staff, env())
			case 6:
				r.Accept(a, p.Staff, env())
			case 7:
				r.Presence(a, p.Staff, env())
			case 8:
				r.Repeat(a, vakt.Priority(rng.IntN(4)), env())
			case 9:
				if rng.IntN(4) == 0 {
					r.Cancel(a, env())
				} else {
					r.Complete(a, p.Staff, env())
				}
			}
			checkInvariants(t, r, a, now)
			if t.Failed() {
				t.Fatalf("run %d step %d: %+v", run, i, *a)
			}
		}
	}
}

// TestLargeBroadcast: a site tier offers everyone at once, nearest first, and offers
// a latecomer (someone who came on duty since) when the next answer comes in.
func TestLargeBroadcast(t *testing.T) {
	r := newRouter(t, baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetSite, Wait: time.Minute}}}))
	var people []Person
	var want []Action
	for i := range 40 {
		id := fmt.Sprintf("n%02d", i)
		people = append(people, nurse(id, pos(float64(5+i), 0, 1)))
		want = append(want, offer(id))
	}
	a := &vakt.Alarm{ID: "x", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "care"}
	if acts := r.Raise(a, Env{Now: t0, Origin: site, People: people}); !slices.Equal(acts, want) {
		t.Fatalf("raise offered %v", acts)
	}
	people = append(people, nurse("late", pos(1, 0, 1)))
	acts, err := r.Reject(a, "n07", Env{Now: t0.Add(time.Second), Origin: site, People: people})
	if err != nil || !slices.Equal(acts, []Action{offer("late")}) {
		t.Fatalf("reject: %v %v", acts, err)
	}
	checkInvariants(t, r, a, t0.Add(time.Second))
}
