package routing

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	geo "github.com/kellydunn/golang-geo"
	vakt "github.com/vakt/vakt"
)

// benchEnv is 1,000 on-duty, available staff with fresh positions spread over a
// 400 m × 400 m site on three floors, around a transmitter in the middle.
func benchEnv(n int) Env {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	env := Env{
		Now:    now,
		Origin: vakt.Location{Room: "101", Zone: "east", Floor: 1, Lat: 59.9139, Lon: 10.7522},
		People: make([]Person, n),
	}
	for i := range env.People {
		env.People[i] = Person{
			StaffState: vakt.StaffState{
				Staff:        vakt.StaffID(fmt.Sprintf("staff-%04d", i)),
				OnDuty:       true,
				Availability: vakt.Available,
				Position: &vakt.Position{
					Lat:   59.9139 + (rng.Float64()-0.5)*0.0036,
					Lon:   10.7522 + (rng.Float64()-0.5)*0.0072,
					Floor: rng.IntN(3),
					At:    now.Add(-time.Duration(rng.IntN(60)) * time.Second),
				},
				LastOfferedAt: now.Add(-time.Duration(rng.IntN(3600)) * time.Second),
			},
			Roles: []string{"nurse"},
			Zone:  "east",
		}
	}
	return env
}

func benchRouter(b *testing.B) *Router {
	r, err := New(Config{
		Policies:       []Policy{{Name: "p", Tiers: []Tier{{Target: TargetNearest, Count: 3, Wait: time.Minute}}}},
		FloorPenaltyM:  15,
		NearestEnabled: true,
		PositionTTL:    5 * time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkRank1000 is the public Rank over 1,000 on-duty staff for a nearest tier
// of 3: filter, estimate, order all 1,000, confirm the three with golang-geo.
func BenchmarkRank1000(b *testing.B) {
	r := benchRouter(b)
	env := benchEnv(1000)
	t := Tier{Target: TargetNearest, Count: 3, Wait: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Rank(t, env)
	}
}

// BenchmarkRaise1000 is the whole routing decision P3 names: pick the policy's
// first tier, rank 1,000 staff, offer the nearest three, set the deadline.
func BenchmarkRaise1000(b *testing.B) {
	r := benchRouter(b)
	env := benchEnv(1000)
	b.ReportAllocs()
	for b.Loop() {
		a := vakt.Alarm{ID: "a", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "p"}
		_ = r.Raise(&a, env)
	}
}

// BenchmarkGeoLoop1000 is the floor P3 compares against: golang-geo's great-circle
// distance from the transmitter to each of 1,000 staff, nothing else.
func BenchmarkGeoLoop1000(b *testing.B) {
	env := benchEnv(1000)
	var sink float64
	for b.Loop() {
		o := geo.NewPoint(env.Origin.Lat, env.Origin.Lon)
		for i := range env.People {
			p := env.People[i].Position
			sink += o.GreatCircleDistance(geo.NewPoint(p.Lat, p.Lon))
		}
	}
	_ = sink
}

// BenchmarkRatio1000 runs the three side by side in every iteration and reports
// each one's fastest run and the ratios P3 is judged by (target: Raise ≤ 20 µs
// where the golang-geo loop takes ≈ 70 µs, a ratio of ≈ 0.29). On a shared, noisy
// machine the fastest of many runs is the one nothing else interrupted; running
// the three together makes them meet the same conditions.
func BenchmarkRatio1000(b *testing.B) {
	r := benchRouter(b)
	env := benchEnv(1000)
	t := Tier{Target: TargetNearest, Count: 3, Wait: time.Minute}
	best := func(cur *time.Duration, d time.Duration) {
		if *cur == 0 || d < *cur {
			*cur = d
		}
	}
	var rankNS, raiseNS, geoNS time.Duration
	var sink float64
	for b.Loop() {
		start := time.Now()
		_ = r.Rank(t, env)
		ranked := time.Now()
		a := vakt.Alarm{ID: "a", Kind: vakt.EventCall, State: vakt.StateRaised, Policy: "p"}
		_ = r.Raise(&a, env)
		raised := time.Now()
		o := geo.NewPoint(env.Origin.Lat, env.Origin.Lon)
		for i := range env.People {
			p := env.People[i].Position
			sink += o.GreatCircleDistance(geo.NewPoint(p.Lat, p.Lon))
		}
		done := time.Now()
		best(&rankNS, ranked.Sub(start))
		best(&raiseNS, raised.Sub(ranked))
		best(&geoNS, done.Sub(raised))
	}
	_ = sink
	b.ReportMetric(float64(rankNS), "rank-min-ns")
	b.ReportMetric(float64(raiseNS), "raise-min-ns")
	b.ReportMetric(float64(geoNS), "geo-min-ns")
	b.ReportMetric(float64(rankNS)/float64(geoNS), "rank/geo")
	b.ReportMetric(float64(raiseNS)/float64(geoNS), "raise/geo")
}

// BenchmarkRaiseInterrupt1000 is BenchmarkRaise1000 for an emergency on a tier
// that may interrupt busy staff, a third of the 1,000 busy with one normal call:
// the ranking's second loop, with the extra checks. It runs beside the plain
// Raise in each iteration and reports both fastest runs and their ratio.
func BenchmarkRaiseInterrupt1000(b *testing.B) {
	r := benchRouter(b)
	ri, err := New(Config{
		Policies: []Policy{{Name: "p", InterruptBusy: true, Tiers: []Tier{
			{Target: TargetNearest, Count: 3, Wait: time.Minute},
		}}},
		FloorPenaltyM: 15, NearestEnabled: true, PositionTTL: 5 * time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	env := benchEnv(1000)
	for i := 0; i < len(env.People); i += 3 {
		p := &env.People[i]
		p.Availability, p.Active, p.ActivePriority = vakt.Busy, 1, vakt.PriorityNormal
	}
	var plain, interrupt time.Duration
	for b.Loop() {
		start := time.Now()
		a := vakt.Alarm{ID: "a", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency, State: vakt.StateRaised, Policy: "p"}
		_ = r.Raise(&a, env)
		mid := time.Now()
		a = vakt.Alarm{ID: "a", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency, State: vakt.StateRaised, Policy: "p"}
		_ = ri.Raise(&a, env)
		end := time.Now()
		if d := mid.Sub(start); plain == 0 || d < plain {
			plain = d
		}
		if d := end.Sub(mid); interrupt == 0 || d < interrupt {
			interrupt = d
		}
	}
	b.ReportMetric(float64(plain), "raise-min-ns")
	b.ReportMetric(float64(interrupt), "interrupt-min-ns")
	b.ReportMetric(float64(interrupt)/float64(plain), "interrupt/raise")
}
