package routing

import (
	"slices"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// oslo is the site's time zone in these tests: it has daylight saving time.
func oslo(t *testing.T) *time.Location {
	t.Helper()
	l, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return l
}

var (
	everyDay = []time.Weekday(nil)
	weekend  = []time.Weekday{time.Saturday, time.Sunday}
)

// timedConfig is a site in Oslo whose emergencies go to the nearest nurse by day,
// and at night (22:00-07:00) to the nearest nurse with the centre told at once;
// calls at weekends go to the site; assists on Friday night to the east wing.
func timedConfig(t *testing.T) Config {
	site := []Tier{{Target: TargetSite, Wait: time.Minute}}
	cfg := baseConfig(
		Policy{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, Tiers: []Tier{
			{Target: TargetNearest, Wait: time.Minute},
			{Target: TargetSite, Wait: 2 * time.Minute},
		}},
		Policy{Name: "night-emergency", Kinds: []vakt.EventKind{vakt.EventEmergency},
			Windows: []Window{{Days: everyDay, From: 22 * time.Hour, To: 7 * time.Hour}},
			Tiers: []Tier{
				{Target: TargetNearest, Wait: time.Minute},
				{Target: TargetARC, Parallel: true},
				{Target: TargetSite, Wait: 2 * time.Minute},
			}},
		Policy{Name: "call", Kinds: []vakt.EventKind{vakt.EventCall}, Tiers: site},
		Policy{Name: "weekend-call", Kinds: []vakt.EventKind{vakt.EventCall},
			Windows: []Window{{Days: weekend, From: 0, To: 24 * time.Hour}}, Tiers: site},
		Policy{Name: "friday-night-assist", Kinds: []vakt.EventKind{vakt.EventAssist},
			Windows: []Window{{Days: []time.Weekday{time.Friday}, From: 22 * time.Hour, To: 7 * time.Hour}}, Tiers: site},
	)
	cfg.Location = oslo(t)
	return cfg
}

// TestPolicyWindows: the policy chosen follows the site's local clock, windows
// crossing midnight included, and a window's day is the day it starts.
func TestPolicyWindows(t *testing.T) {
	cfg := timedConfig(t)
	r := newRouter(t, cfg)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("Mon 2006-01-02 15:04", s, cfg.Location)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		kind vakt.EventKind
		when string // Oslo local time
		want string
	}{
		{vakt.EventEmergency, "Tue 2026-06-09 21:59", "emergency"},
		{vakt.EventEmergency, "Tue 2026-06-09 22:00", "night-emergency"},
		{vakt.EventEmergency, "Wed 2026-06-10 00:00", "night-emergency"}, // across midnight
		{vakt.EventEmergency, "Wed 2026-06-10 06:59", "night-emergency"},
		{vakt.EventEmergency, "Wed 2026-06-10 07:00", "emergency"}, // the end is not in the window
		{vakt.EventEmergency, "Mon 2026-06-08 03:00", "night-emergency"},
		{vakt.EventCall, "Fri 2026-06-12 23:59", "call"},
		{vakt.EventCall, "Sat 2026-06-13 00:00", "weekend-call"},
		{vakt.EventCall, "Sun 2026-06-14 23:59", "weekend-call"},
		{vakt.EventCall, "Mon 2026-06-15 00:00", "call"},
		{vakt.EventAssist, "Fri 2026-06-12 21:59", "fallback"},
		{vakt.EventAssist, "Fri 2026-06-12 22:00", "friday-night-assist"},
		{vakt.EventAssist, "Sat 2026-06-13 06:59", "friday-night-assist"}, // Friday's window, ending Saturday
		{vakt.EventAssist, "Sat 2026-06-13 22:00", "fallback"},            // Saturday has no window
		{vakt.EventAssist, "Fri 2026-06-12 06:00", "fallback"},            // Thursday has no window
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" "+tt.when, func(t *testing.T) {
			// The same instant given in UTC: the site's zone decides, not the caller's.
			now := at(tt.when).UTC()
			if got := r.PolicyAt(tt.kind, site, now).Name; got != tt.want {
				t.Errorf("PolicyAt = %q, want %q", got, tt.want)
			}
		})
	}
	if got := r.Policy(vakt.EventEmergency, site).Name; got != "emergency" {
		t.Errorf("Policy without a time = %q, want the policy without windows", got)
	}
}

// TestPolicyWindowsDST follows the night policy through the nights the clocks
// change in Oslo, on the injected clock moving in real (UTC) time: 22:00-07:00 lasts
// 8 hours when the clocks go forward and 10 when they go back.
func TestPolicyWindowsDST(t *testing.T) {
	cfg := timedConfig(t)
	r := newRouter(t, cfg)
	for _, tt := range []struct {
		name  string
		start time.Time // 21:00 local on Saturday
		hours int       // how long the night lasts in real time
	}{
		{"spring forward", time.Date(2026, 3, 28, 21, 0, 0, 0, cfg.Location), 8},
		{"fall back", time.Date(2026, 10, 24, 21, 0, 0, 0, cfg.Location), 10},
		{"ordinary", time.Date(2026, 6, 13, 21, 0, 0, 0, cfg.Location), 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := fakeclock.New(tt.start)
			night := 0
			for range 14 * 4 { // 14 hours in quarter hours
				if r.PolicyAt(vakt.EventEmergency, site, clk.Now()).Name == "night-emergency" {
					night++
				}
				clk.Advance(15 * time.Minute)
			}
			if night != tt.hours*4 {
				t.Errorf("night policy for %v of real time, want %dh", time.Duration(night)*15*time.Minute, tt.hours)
			}
			// The Sunday of the change is a weekend day all of its local day.
			sunday := time.Date(tt.start.Year(), tt.start.Month(), tt.start.Day()+1, 12, 0, 0, 0, cfg.Location)
			if got := r.PolicyAt(vakt.EventCall, site, sunday).Name; got != "weekend-call" {
				t.Errorf("call on the Sunday: %q, want weekend-call", got)
			}
		})
	}
}

// TestPolicyOverrides: a room policy overrides its zone's, a zone's the site's, and
// only then does a window decide; a closed window does not match at all.
func TestPolicyOverrides(t *testing.T) {
	tiers := []Tier{{Target: TargetSite, Wait: time.Minute}}
	night := []Window{{From: 22 * time.Hour, To: 7 * time.Hour}}
	em := []vakt.EventKind{vakt.EventEmergency}
	cfg := baseConfig(
		Policy{Name: "site", Kinds: em, Tiers: tiers},
		Policy{Name: "site-night", Kinds: em, Windows: night, Tiers: tiers},
		Policy{Name: "east", Kinds: em, Zone: "east", Tiers: tiers},
		Policy{Name: "east-all-night", Zone: "east", Windows: night, Tiers: tiers},
		Policy{Name: "room-103", Kinds: em, Rooms: []string{"103"}, Tiers: tiers},
		Policy{Name: "room-104-night", Kinds: em, Rooms: []string{"104"}, Windows: night, Tiers: tiers},
	)
	cfg.Location = time.UTC
	r := newRouter(t, cfg)
	day, dark := t0, t0.Add(15*time.Hour) // 08:00 and 23:00 UTC
	loc := func(zone, room string) vakt.Location { return vakt.Location{Zone: zone, Room: room} }
	tests := []struct {
		kind vakt.EventKind
		loc  vakt.Location
		now  time.Time
		want string
	}{
		{vakt.EventEmergency, loc("west", "201"), day, "site"},
		{vakt.EventEmergency, loc("west", "201"), dark, "site-night"},     // window beats none, same place and kind
		{vakt.EventEmergency, loc("east", "102"), dark, "east"},           // zone beats a site window
		{vakt.EventCall, loc("east", "102"), dark, "east-all-night"},      // a zone catch-all in its window
		{vakt.EventCall, loc("east", "102"), day, "fallback"},             // closed window: no match
		{vakt.EventEmergency, loc("east", "103"), dark, "room-103"},       // room beats zone
		{vakt.EventEmergency, loc("east", "104"), dark, "room-104-night"}, // room window
		{vakt.EventEmergency, loc("east", "104"), day, "east"},            // closed room window: the zone's
	}
	for _, tt := range tests {
		if got := r.PolicyAt(tt.kind, tt.loc, tt.now).Name; got != tt.want {
			t.Errorf("%s in %s/%s at %s: %q, want %q", tt.kind, tt.loc.Zone, tt.loc.Room, tt.now.Format("15:04"), got, tt.want)
		}
	}
}

func TestWindowValidation(t *testing.T) {
	tiers := []Tier{{Target: TargetSite, Wait: time.Minute}}
	for _, tt := range []struct {
		pol  Policy
		want string
	}{
		{Policy{Name: "p", Windows: []Window{{From: 7 * time.Hour, To: 7 * time.Hour}}, Tiers: tiers}, "window would be empty"},
		{Policy{Name: "p", Windows: []Window{{From: 24 * time.Hour, To: 7 * time.Hour}}, Tiers: tiers}, "from must be"},
		{Policy{Name: "p", Windows: []Window{{From: 0, To: 25 * time.Hour}}, Tiers: tiers}, "to must be"},
		{Policy{Name: "p", Windows: []Window{{Days: []time.Weekday{7}, From: 0, To: time.Hour}}, Tiers: tiers}, "not a weekday"},
		{Policy{Name: "p", Tiers: []Tier{{Target: TargetARC, Parallel: true}}}, "tier 1 cannot be parallel"},
		{Policy{Name: "p", Tiers: []Tier{tiers[0], {Target: TargetNearest, Wait: time.Minute, Parallel: true}}}, "only arc and pager tiers can be parallel"},
	} {
		_, err := New(baseConfig(tt.pol))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tt.pol, err, tt.want)
		}
	}
}

// TestParallelARC: at night the centre is told when tier 1 starts, and tier 1 goes
// on as usual: a refusal offers the next nurse, its wait leads to the site tier.
func TestParallelARC(t *testing.T) {
	cfg := baseConfig(Policy{Name: "night", Tiers: []Tier{
		{Target: TargetNearest, Roles: []string{"nurse"}, Wait: time.Minute},
		{Target: TargetARC, Parallel: true},
		{Target: TargetPager, Parallel: true, Pager: "dect", CallAddress: "200"},
		{Target: TargetSite, Wait: 2 * time.Minute},
	}})
	r := newRouter(t, cfg)
	page := Action{Kind: ActPage, Pager: "dect", CallAddress: "200"}
	a := script(t, r, ward(), []move{
		{do: doRaise, want: []Action{offer("a"), forward, page}, state: vakt.StateForwarded, tier: 1,
			deadline: 10 * time.Second},
		{at: 5 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}, tier: 1,
			state: vakt.StateForwarded},
		{at: time.Minute, do: doTick, want: []Action{withdraw("b"), offer("c"), offer("w")}, tier: 4},
		// past the last tier: the centre has it, nothing is forwarded again
		{at: 3 * time.Minute, do: doTick, want: []Action{withdraw("c"), withdraw("w")}, tier: 4},
		{at: 4 * time.Minute, do: doAccept, staff: "c", state: vakt.StateAccepted},
	})
	if !a.Forwarded {
		t.Error("not forwarded")
	}
}

// TestParallelARCEmptyTier: nobody on duty at night: the centre is still told at
// once, and the alarm waits with it.
func TestParallelARCEmptyTier(t *testing.T) {
	cfg := baseConfig(Policy{Name: "night", Tiers: []Tier{
		{Target: TargetNearest, Wait: time.Minute},
		{Target: TargetARC, Parallel: true},
	}})
	r := newRouter(t, cfg)
	script(t, r, nil, []move{
		{do: doRaise, want: []Action{forward}, state: vakt.StateForwarded, deadline: noDeadline},
	})
}

// TestUpgrade: a call followed by an emergency press on the same transmitter
// becomes an emergency, routed by the emergency policy from its first tier; who
// refused the call is asked again, who still holds it is told.
func TestUpgrade(t *testing.T) {
	cfg := baseConfig(
		Policy{Name: "care", Tiers: []Tier{{Target: TargetNearest, Wait: time.Minute}}},
		Policy{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, ReAlarmAfter: time.Minute, Tiers: []Tier{
			{Target: TargetNearest, Count: 3, Wait: 30 * time.Second, IncludeBusy: true},
		}},
	)
	r := newRouter(t, cfg)
	check := func(kind vakt.EventKind, prio vakt.Priority, pol string) func(*testing.T, *vakt.Alarm) {
		return func(t *testing.T, a *vakt.Alarm) {
			if a.Kind != kind || a.Priority != prio || a.Policy != pol {
				t.Errorf("kind %s priority %d policy %s, want %s %d %s", a.Kind, a.Priority, a.Policy, kind, prio, pol)
			}
		}
	}
	a := script(t, r, ward(), []move{
		{do: doRaise, want: []Action{offer("a")}, check: check(vakt.EventCall, vakt.PriorityNormal, "care")},
		{at: 2 * time.Second, do: doReject, staff: "a", want: []Action{offer("b")}},
		{at: 3 * time.Second, do: doDelivered, staff: "b"},
		// another call: counted, nothing else
		{at: 4 * time.Second, do: doRepeat, kind: vakt.EventCall, want: nil, check: check(vakt.EventCall, vakt.PriorityNormal, "care")},
		{at: 5 * time.Second, do: doRepeat, kind: vakt.EventEmergency,
			want: []Action{offer("a"), offer("c"), offer("w"), update("b")},
			tier: 1, round: 2, deadline: 15 * time.Second,
			offers: offers{"a": pending, "b": delivered},
			check:  check(vakt.EventEmergency, vakt.PriorityEmergency, "emergency")},
		// a call after the emergency does not lower it
		{at: 6 * time.Second, do: doRepeat, kind: vakt.EventCall, want: nil, check: check(vakt.EventEmergency, vakt.PriorityEmergency, "emergency")},
		{at: 7 * time.Second, do: doAccept, staff: "a", want: []Action{taken("b", "a"), taken("c", "a"), taken("w", "a")}},
		// the emergency policy's re-alarm applies
		{at: 7*time.Second + time.Minute, do: doTick, want: []Action{update("a"), offer("a"), offer("b"), offer("c")}},
	})
	if a.Count != 4 {
		t.Errorf("count %d, want 4", a.Count)
	}
}

// TestUpgradeAccepted: someone already on the way keeps the alarm and is told.
func TestUpgradeAccepted(t *testing.T) {
	cfg := baseConfig(
		Policy{Name: "care", Tiers: []Tier{{Target: TargetNearest, Wait: time.Minute}}},
		Policy{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, Tiers: []Tier{{Target: TargetSite, Wait: time.Minute}}},
	)
	r := newRouter(t, cfg)
	script(t, r, ward(), []move{
		{do: doRaise, want: []Action{offer("a")}},
		{at: time.Second, do: doAccept, staff: "a"},
		{at: 2 * time.Second, do: doRepeat, kind: vakt.EventEmergency, want: []Action{update("a")},
			state: vakt.StateAccepted, check: func(t *testing.T, a *vakt.Alarm) {
				if a.Priority != vakt.PriorityEmergency || a.Policy != "emergency" || a.Assignee != "a" {
					t.Errorf("after upgrade: %+v", a)
				}
			}},
	})
}

// TestInterruptBusy: an emergency may take a nurse away from a lesser alarm, but
// not from a second one, an emergency, or a busy status set by hand.
func TestInterruptBusy(t *testing.T) {
	act := func(n int, p vakt.Priority) func(*Person) {
		return func(pr *Person) { pr.Active, pr.ActivePriority = n, p }
	}
	people := []Person{
		nurse("normal-call", pos(10, 0, 1), busy, act(1, vakt.PriorityNormal)),
		nurse("two-calls", pos(11, 0, 1), busy, act(2, vakt.PriorityNormal)),
		nurse("high", pos(12, 0, 1), busy, act(1, vakt.PriorityHigh)),
		nurse("emergency", pos(13, 0, 1), busy, act(1, vakt.PriorityEmergency), handling),
		nurse("by-hand", pos(14, 0, 1), busy),
		nurse("free", pos(50, 0, 1)),
	}
	siteTiers := []Tier{{Target: TargetSite, Wait: time.Minute}}
	for _, tt := range []struct {
		name string
		pol  Policy
		prio vakt.Priority
		want []vakt.StaffID
	}{
		{"no interrupt", Policy{Tiers: siteTiers}, vakt.PriorityEmergency, staffIDs("free")},
		{"policy interrupts", Policy{InterruptBusy: true, Tiers: siteTiers}, vakt.PriorityEmergency, staffIDs("normal-call", "high", "free")},
		{"tier interrupts", Policy{Tiers: []Tier{{Target: TargetSite, Wait: time.Minute, InterruptBusy: true}}}, vakt.PriorityEmergency, staffIDs("normal-call", "high", "free")},
		{"high interrupts normal only", Policy{InterruptBusy: true, Tiers: siteTiers}, vakt.PriorityHigh, staffIDs("normal-call", "free")},
		{"normal interrupts nobody", Policy{InterruptBusy: true, Tiers: siteTiers}, vakt.PriorityNormal, staffIDs("free")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.pol.Name = "p"
			r := newRouter(t, baseConfig(tt.pol))
			a := &vakt.Alarm{ID: "x", Kind: vakt.EventEmergency, Priority: tt.prio, State: vakt.StateRaised, Policy: "p"}
			var got []vakt.StaffID
			for _, act := range r.Raise(a, Env{Now: t0, Origin: site, People: people}) {
				got = append(got, act.Staff)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("offered %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTiesLeastRecentlyOffered: at equal distance the one offered least recently
// goes first (never offered before anyone), then by id; the same whether a few are
// selected or everyone is sorted.
func TestTiesLeastRecentlyOffered(t *testing.T) {
	people := []Person{
		nurse("d", pos(10, 0, 1), offered(t0.Add(-time.Minute))),
		nurse("c", pos(0, 10, 1), offered(t0.Add(-time.Hour))),
		nurse("b", pos(-10, 0, 1)), // never offered
		nurse("a", pos(0, -10, 1), offered(t0.Add(-time.Hour))),
		nurse("e", pos(5, 0, 1), offered(t0)), // nearer: distance first
	}
	r := newRouter(t, baseConfig())
	env := Env{Now: t0, Origin: site, People: people}
	want := staffIDs("e", "b", "a", "c", "d")
	for _, tier := range []Tier{
		{Target: TargetNearest, Count: 3, Wait: time.Second}, // selection
		{Target: TargetSite, Wait: time.Second},              // full sort
	} {
		got := ids(r.Rank(tier, env))
		if n := min(len(want), len(got)); !slices.Equal(got, want[:n]) || (tier.Target == TargetSite && len(got) != len(want)) {
			t.Errorf("%s: order %v, want %v", tier.Target, got, want)
		}
	}
	// Offers spread round-robin over equidistant nurses as alarms come in.
	ring := []Person{nurse("x", pos(10, 0, 1)), nurse("y", pos(-10, 0, 1)), nurse("z", pos(0, 10, 1))}
	var order []vakt.StaffID
	for i := range 6 {
		now := t0.Add(time.Duration(i) * time.Second)
		c := r.Rank(Tier{Target: TargetNearest, Wait: time.Second}, Env{Now: now, Origin: site, People: ring})[0]
		order = append(order, c.Staff)
		for j := range ring {
			if ring[j].Staff == c.Staff {
				ring[j].LastOfferedAt = now
			}
		}
	}
	if want := staffIDs("x", "y", "z", "x", "y", "z"); !slices.Equal(order, want) {
		t.Errorf("offers went to %v, want %v", order, want)
	}
}

// TestPrimaryContacts: a primary tier offers the resident's primary contacts who
// can take it, nearest first; with none there it is skipped at once.
func TestPrimaryContacts(t *testing.T) {
	cfg := baseConfig(Policy{Name: "care", Tiers: []Tier{
		{Target: TargetPrimary, Wait: time.Minute},
		{Target: TargetNearest, Wait: time.Minute},
	}})
	r := newRouter(t, cfg)
	people := append(ward(), nurse("off", pos(1, 0, 1), offDuty))
	withPrimary := func(ids ...string) func(*Env) {
		return func(e *Env) { e.Primary = staffIDs(ids...) }
	}
	script(t, r, people, []move{
		{do: doRaise, env: withPrimary("w", "c", "off"), want: []Action{offer("c"), offer("w")}, tier: 1},
	})
	script(t, r, people, []move{
		{do: doRaise, env: withPrimary("off"), want: []Action{offer("a")}, tier: 2},
	})
	script(t, r, people, []move{
		{do: doRaise, want: []Action{offer("a")}, tier: 2},
	})
}

// TestStormOneTransmitter: a burst from one transmitter is one alarm with a count;
// the repeats offer nobody new and change no deadline.
func TestStormOneTransmitter(t *testing.T) {
	r := newRouter(t, escalating())
	a := script(t, r, ward(), []move{{do: doRaise, want: []Action{offer("a")}}})
	deadline, offersBefore := a.Deadline, slices.Clone(a.Offers)
	env := Env{Now: t0.Add(time.Second), Origin: site, People: ward()}
	for range 500 {
		if acts := r.RepeatKind(a, vakt.EventCall, 0, env); len(acts) != 0 {
			t.Fatalf("repeat produced %v", acts)
		}
	}
	if a.Count != 501 || !a.Deadline.Equal(deadline) || !slices.Equal(a.Offers, offersBefore) {
		t.Errorf("count %d deadline %v offers %v", a.Count, a.Deadline, a.Offers)
	}
}

// TestStormManyTransmitters: three hundred door alarms and one emergency from
// different transmitters compete for two nurses. Every alarm keeps its own
// priority, and decisions taken in CompareUrgency order give each nurse the
// emergency before any door alarm.
func TestStormManyTransmitters(t *testing.T) {
	cfg := baseConfig(
		Policy{Name: "doors", Kinds: []vakt.EventKind{vakt.EventDoor}, Tiers: []Tier{{Target: TargetSite, Wait: time.Minute}}},
		Policy{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, Tiers: []Tier{{Target: TargetSite, Wait: time.Minute, IncludeBusy: true}}},
	)
	r := newRouter(t, cfg)
	people := []Person{nurse("a", pos(10, 0, 1)), nurse("b", pos(20, 0, 1))}
	var batch []*vakt.Alarm
	for i := range 300 {
		batch = append(batch, &vakt.Alarm{ID: vakt.AlarmID("door-" + string(rune('A'+i%26)) + string(rune('0'+i/26))),
			Kind: vakt.EventDoor, Priority: vakt.PriorityHigh, State: vakt.StateRaised, RaisedAt: t0, Policy: "doors"})
	}
	// The emergency arrives last in the batch, and a stray alarm of unset priority.
	batch = append(batch,
		&vakt.Alarm{ID: "sos", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency, State: vakt.StateRaised, RaisedAt: t0.Add(time.Second), Policy: "emergency"},
		&vakt.Alarm{ID: "call", Kind: vakt.EventCall, State: vakt.StateRaised, RaisedAt: t0, Policy: "doors"},
	)
	slices.SortFunc(batch, CompareUrgency)
	if batch[0].ID != "sos" || batch[len(batch)-1].ID != "call" {
		t.Fatalf("order starts %s, ends %s; want the emergency first, the unset (normal) call last", batch[0].ID, batch[len(batch)-1].ID)
	}
	first := map[vakt.StaffID]vakt.AlarmID{}
	for _, a := range batch {
		prio := a.Priority
		for _, act := range r.Raise(a, Env{Now: t0.Add(time.Second), Origin: site, People: people}) {
			if _, ok := first[act.Staff]; act.Kind == ActOffer && !ok {
				first[act.Staff] = a.ID
			}
		}
		if a.Priority != prio {
			t.Errorf("%s: priority %d became %d", a.ID, prio, a.Priority)
		}
	}
	if first["a"] != "sos" || first["b"] != "sos" {
		t.Errorf("first offers: %v, want the emergency for both", first)
	}
}
