package routing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// t0 is when every test alarm is raised; tests move time by building env.Now
// values from it, never by sleeping.
var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// site is the transmitter every test alarm comes from: room 101, east wing, first floor.
var site = vakt.Location{Room: "101", Zone: "east", Floor: 1, Lat: 59.9139, Lon: 10.7522}

// pos places a position east and north of the transmitter, in metres, on floor,
// reported at t0.
func pos(east, north float64, floor int) *vakt.Position {
	my := earthRadiusM * degToRad
	return &vakt.Position{
		Lat:   site.Lat + north/my,
		Lon:   site.Lon + east/(my*math.Cos(site.Lat*degToRad)),
		Floor: floor,
		At:    t0,
	}
}

// nurse is an available, on-duty nurse in the east wing at p (nil: no position).
func nurse(id string, p *vakt.Position, opts ...func(*Person)) Person {
	pr := Person{
		StaffState: vakt.StaffState{
			Staff:        vakt.StaffID(id),
			OnDuty:       true,
			Availability: vakt.Available,
			Position:     p,
		},
		Roles: []string{"nurse"},
		Zone:  "east",
	}
	for _, o := range opts {
		o(&pr)
	}
	return pr
}

func busy(p *Person)    { p.Availability = vakt.Busy }
func away(p *Person)    { p.Availability = vakt.Away }
func offDuty(p *Person) { p.OnDuty = false }
func handling(p *Person) {
	p.HandlingEmergency = true
}
func inZone(z string) func(*Person)    { return func(p *Person) { p.Zone = z } }
func roles(rs ...string) func(*Person) { return func(p *Person) { p.Roles = rs } }
func offered(at time.Time) func(*Person) {
	return func(p *Person) { p.LastOfferedAt = at }
}
func reportedAt(at time.Time) func(*Person) {
	return func(p *Person) { p.Position.At = at }
}

// baseConfig is a site with nearest routing on; tests add policies.
func baseConfig(policies ...Policy) Config {
	return Config{
		Policies:       policies,
		OfferConfirm:   10 * time.Second,
		FloorPenaltyM:  15,
		NearestEnabled: true,
		PositionTTL:    5 * time.Minute,
	}
}

func newRouter(t testing.TB, cfg Config) *Router {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func ids(cs []Candidate) []vakt.StaffID {
	out := make([]vakt.StaffID, len(cs))
	for i, c := range cs {
		out[i] = c.Staff
	}
	return out
}

func staffIDs(s ...string) []vakt.StaffID {
	out := make([]vakt.StaffID, len(s))
	for i, v := range s {
		out[i] = vakt.StaffID(v)
	}
	return out
}

// Action constructors keep expectations short.
func offer(s string) Action    { return Action{Kind: ActOffer, Staff: vakt.StaffID(s)} }
func withdraw(s string) Action { return Action{Kind: ActWithdraw, Staff: vakt.StaffID(s)} }
func update(s string) Action   { return Action{Kind: ActUpdate, Staff: vakt.StaffID(s)} }
func taken(s, by string) Action {
	return Action{Kind: ActTaken, Staff: vakt.StaffID(s), By: vakt.StaffID(by)}
}

var forward = Action{Kind: ActForward}

// statusOf returns staff's offer status in the alarm, "" when not offered.
func statusOf(a *vakt.Alarm, staff string) vakt.OfferStatus {
	if i := findOffer(a, vakt.StaffID(staff)); i >= 0 {
		return a.Offers[i].Status
	}
	return ""
}

// checkInvariants asserts what must hold after every decision.
func checkInvariants(t *testing.T, r *Router, a *vakt.Alarm, now time.Time) {
	t.Helper()
	liveHolders := map[vakt.StaffID]bool{}
	for _, o := range a.Offers {
		if !live(o.Status) {
			continue
		}
		if liveHolders[o.Staff] {
			t.Errorf("%s holds two live offers: %+v", o.Staff, a.Offers)
		}
		liveHolders[o.Staff] = true
	}
	switch a.State {
	case vakt.StateOffered, vakt.StateForwarded:
		if a.Assignee != "" {
			t.Errorf("state %s with assignee %s", a.State, a.Assignee)
		}
		// An open alarm nobody has always has a deadline, unless the centre has it
		// and nothing is left to wait for.
		pol, _ := r.byName(a.Policy)
		if !(a.Forwarded && hasARC(&pol)) && !a.Deadline.After(now) {
			t.Errorf("open unaccepted alarm (tier %d, round %d) has deadline %v at %v",
				a.Tier, a.Round, a.Deadline, now)
		}
	case vakt.StateAccepted, vakt.StatePresent:
		if a.Assignee == "" {
			t.Errorf("state %s without assignee", a.State)
		}
		if len(liveHolders) > 0 {
			t.Errorf("state %s with live offers %v", a.State, liveHolders)
		}
	case vakt.StateCompleted, vakt.StateCancelled:
		if !a.Deadline.IsZero() || len(liveHolders) > 0 {
			t.Errorf("closed alarm with deadline %v / live offers %v", a.Deadline, liveHolders)
		}
	}
	if a.Deadline.IsZero() {
		return
	}
	if !a.Deadline.After(now) {
		t.Errorf("deadline %v not after now %v", a.Deadline, now)
	}
}

func equalActions(got, want []Action) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return slices.Equal(got, want)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
