package routing

import (
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// TestPagerTier: nobody accepts the nearest offer, so the next tier calls the night
// nurse's DECT pager through the paging link, waits its wait, then goes site-wide.
func TestPagerTier(t *testing.T) {
	r, err := New(Config{OfferConfirm: 10 * time.Second, NearestEnabled: true, PositionTTL: time.Hour,
		Policies: []Policy{{Name: "night", Tiers: []Tier{
			{Target: TargetNearest, Count: 1, Wait: 30 * time.Second},
			{Target: TargetPager, Pager: "dect", CallAddress: "100", Wait: time.Minute},
			{Target: TargetSite, Wait: time.Minute},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	on := func(id string, lat float64) Person {
		return Person{StaffState: vakt.StaffState{Staff: vakt.StaffID(id), OnDuty: true, Availability: vakt.Available,
			Position: &vakt.Position{Lat: lat, Lon: 10.75, At: t0}}}
	}
	env := func(d time.Duration) Env {
		return Env{Now: t0.Add(d), Origin: vakt.Location{Lat: 59.9, Lon: 10.75}, People: []Person{on("a", 59.9001), on("b", 59.901)}}
	}
	a := &vakt.Alarm{ID: "a-1", Kind: vakt.EventCall, State: vakt.StateRaised, RaisedAt: t0}
	if acts := r.Raise(a, env(0)); len(acts) != 1 || acts[0].Staff != "a" {
		t.Fatalf("raise: %+v", acts)
	}
	r.Delivered(a, "a", env(time.Second))
	acts := r.Tick(a, env(30*time.Second))
	if len(acts) != 1 || acts[0] != (Action{Kind: ActPage, Pager: "dect", CallAddress: "100"}) {
		t.Fatalf("tier 2: %+v, want one page of dect/100", acts)
	}
	if a.Tier != 2 || a.State != vakt.StateOffered || !a.Deadline.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("after paging: tier %d state %s deadline %v", a.Tier, a.State, a.Deadline.Sub(t0))
	}
	if acts := r.Tick(a, env(90*time.Second)); len(acts) != 1 || acts[0].Kind != ActOffer || acts[0].Staff != "b" {
		t.Fatalf("tier 3: %+v, want an offer to b", acts)
	}
	// The nearest nurse can still take it after the page.
	if _, err := r.Accept(a, "a", env(95*time.Second)); err != nil {
		t.Fatal(err)
	}
}
