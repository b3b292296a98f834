package routing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	geo "github.com/kellydunn/golang-geo"
	vakt "github.com/vakt/vakt"
)

func TestRank(t *testing.T) {
	nearest := Tier{Target: TargetNearest, Count: 1, Wait: 30 * time.Second}
	siteTier := Tier{Target: TargetSite, Wait: time.Minute}
	tests := []struct {
		name string
		tier Tier
		cfg  func(*Config)
		now  time.Duration // after t0
		// noCoords: the transmitter has no coordinates.
		noCoords bool
		people   []Person
		want     []string
	}{
		{
			name: "nearest first",
			tier: nearest,
			people: []Person{
				nurse("a", pos(30, 0, 1)),
				nurse("b", pos(0, 10, 1)),
				nurse("c", pos(-20, 0, 1)),
			},
			want: []string{"b", "c", "a"},
		},
		{
			name: "floor penalty: 10 m two floors up is farther than 30 m on the floor",
			tier: nearest,
			people: []Person{
				nurse("upstairs", pos(10, 0, 3)), // 10 + 2×15 = 40
				nurse("same-floor", pos(30, 0, 1)),
				nurse("one-down", pos(5, 0, 0)), // 5 + 15 = 20
			},
			want: []string{"one-down", "same-floor", "upstairs"},
		},
		{
			name: "stale position ranks after every known one",
			tier: nearest,
			now:  4 * time.Minute,
			people: []Person{
				nurse("stale", pos(1, 0, 1), reportedAt(t0.Add(-2*time.Minute))), // 6 min old at now
				nurse("far", pos(200, 0, 1)),
				nurse("fresh-at-ttl", pos(300, 0, 1), reportedAt(t0.Add(-time.Minute))), // exactly 5 min
			},
			want: []string{"far", "fresh-at-ttl", "stale"},
		},
		{
			name: "no position ranks after known ones",
			tier: nearest,
			people: []Person{
				nurse("nowhere", nil),
				nurse("far", pos(500, 0, 1)),
			},
			want: []string{"far", "nowhere"},
		},
		{
			name: "position without a fix (0,0) is unknown",
			tier: nearest,
			people: []Person{
				nurse("nofix", &vakt.Position{At: t0}),
				nurse("far", pos(500, 0, 1)),
			},
			want: []string{"far", "nofix"},
		},
		{
			name: "nearest routing off: positions ignored, least recently offered first",
			tier: nearest,
			cfg:  func(c *Config) { c.NearestEnabled = false },
			people: []Person{
				nurse("recent", pos(1, 0, 1), offered(t0.Add(-time.Minute))),
				nurse("never", pos(100, 0, 1)),
				nurse("long-ago", pos(50, 0, 1), offered(t0.Add(-time.Hour))),
			},
			want: []string{"never", "long-ago", "recent"},
		},
		{
			name:     "transmitter without coordinates: every position unknown",
			tier:     nearest,
			noCoords: true,
			people: []Person{
				nurse("b", pos(1, 0, 1)),
				nurse("a", pos(100, 0, 1)),
			},
			want: []string{"a", "b"}, // by id: nobody was offered before
		},
		{
			name: "busy left out without IncludeBusy",
			tier: nearest,
			people: []Person{
				nurse("busy", pos(1, 0, 1), busy),
				nurse("free", pos(50, 0, 1)),
			},
			want: []string{"free"},
		},
		{
			name: "busy included with IncludeBusy",
			tier: Tier{Target: TargetNearest, Wait: time.Second, IncludeBusy: true},
			people: []Person{
				nurse("busy", pos(1, 0, 1), busy),
				nurse("free", pos(50, 0, 1)),
			},
			want: []string{"busy", "free"},
		},
		{
			name: "away never, even with IncludeBusy",
			tier: Tier{Target: TargetSite, Wait: time.Second, IncludeBusy: true},
			people: []Person{
				nurse("away", pos(1, 0, 1), away),
				nurse("unknown-availability", pos(2, 0, 1), func(p *Person) { p.Availability = "" }),
				nurse("free", pos(50, 0, 1)),
			},
			want: []string{"free"},
		},
		{
			name: "off duty left out",
			tier: siteTier,
			people: []Person{
				nurse("off", pos(1, 0, 1), offDuty),
				nurse("on", pos(50, 0, 1)),
			},
			want: []string{"on"},
		},
		{
			name: "handling an emergency left out, even busy-inclusive",
			tier: Tier{Target: TargetSite, Wait: time.Second, IncludeBusy: true},
			people: []Person{
				nurse("handling", pos(1, 0, 1), busy, handling),
				nurse("on", pos(50, 0, 1)),
			},
			want: []string{"on"},
		},
		{
			name: "roles: any of the tier's roles",
			tier: Tier{Target: TargetRole, Roles: []string{"doctor", "technician"}, Wait: time.Second},
			people: []Person{
				nurse("nurse", pos(1, 0, 1)),
				nurse("tech", pos(20, 0, 1), roles("technician")),
				nurse("doc", pos(10, 0, 1), roles("nurse", "doctor")),
			},
			want: []string{"doc", "tech"},
		},
		{
			name: "roles apply to nearest tiers too",
			tier: Tier{Target: TargetNearest, Roles: []string{"nurse"}, Wait: time.Second},
			people: []Person{
				nurse("cleaner", pos(1, 0, 1), roles("cleaner")),
				nurse("nurse", pos(20, 0, 1)),
			},
			want: []string{"nurse"},
		},
		{
			name: "zone tier defaults to the transmitter's zone",
			tier: Tier{Target: TargetZone, Wait: time.Second},
			people: []Person{
				nurse("west", pos(1, 0, 1), inZone("west")),
				nurse("east", pos(20, 0, 1)),
				nurse("site-wide", pos(5, 0, 1), inZone("")),
			},
			want: []string{"east"},
		},
		{
			name: "zone tier with its own zone",
			tier: Tier{Target: TargetZone, Zone: "west", Wait: time.Second},
			people: []Person{
				nurse("west", pos(100, 0, 1), inZone("west")),
				nurse("east", pos(20, 0, 1)),
			},
			want: []string{"west"},
		},
		{
			name: "zones do not limit other tiers",
			tier: siteTier,
			people: []Person{
				nurse("west", pos(100, 0, 1), inZone("west")),
				nurse("east", pos(20, 0, 1)),
			},
			want: []string{"east", "west"},
		},
		{
			name: "equal distance: least recently offered first, never offered before all",
			tier: nearest,
			people: []Person{
				nurse("recent", pos(10, 0, 1), offered(t0.Add(-time.Minute))),
				nurse("older", pos(0, 10, 1), offered(t0.Add(-time.Hour))),
				nurse("never", pos(-10, 0, 1)),
			},
			want: []string{"never", "older", "recent"},
		},
		{
			name: "both unknown: least recently offered first, then id",
			tier: nearest,
			people: []Person{
				nurse("c", nil, offered(t0.Add(-time.Minute))),
				nurse("b", nil),
				nurse("a", nil),
				nurse("d", pos(300, 0, 1), offered(t0)),
			},
			want: []string{"d", "a", "b", "c"},
		},
		{
			name: "same everything: by staff id",
			tier: nearest,
			people: []Person{
				nurse("z", pos(10, 0, 1)),
				nurse("m", pos(10, 0, 1)),
				nurse("a", pos(10, 0, 1)),
			},
			want: []string{"a", "m", "z"},
		},
		{
			name: "nobody on duty",
			tier: siteTier,
			people: []Person{
				nurse("off", pos(1, 0, 1), offDuty),
			},
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			r := newRouter(t, cfg)
			env := Env{Now: t0.Add(tt.now), Origin: site, People: tt.people}
			if tt.noCoords {
				env.Origin.Lat, env.Origin.Lon = 0, 0
			}
			got := r.Rank(tt.tier, env)
			if !slices.Equal(ids(got), staffIDs(tt.want...)) {
				t.Errorf("Rank = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

// TestRankDistance checks the reported figures: golang-geo's great circle plus the
// floor penalty for the ones offered at once, -1 when unknown, and an estimate
// for the rest that agrees with golang-geo to the millimetre.
func TestRankDistance(t *testing.T) {
	r := newRouter(t, baseConfig())
	people := []Person{
		nurse("a", pos(30, 40, 1)), // 50 m
		nurse("b", pos(60, 80, 2)), // 100 m + 15
		nurse("c", pos(0, 200, 1)), // 200 m
		nurse("d", nil),
	}
	env := Env{Now: t0, Origin: site, People: people}
	exact := func(p *vakt.Position) float64 {
		km := geo.NewPoint(site.Lat, site.Lon).GreatCircleDistance(geo.NewPoint(p.Lat, p.Lon))
		return km*1000 + 15*math.Abs(float64(p.Floor-site.Floor))
	}
	got := r.Rank(Tier{Target: TargetNearest, Count: 2, Wait: time.Second}, env)
	want := []float64{exact(people[0].Position), exact(people[1].Position), exact(people[2].Position), -1}
	if !slices.Equal(ids(got), staffIDs("a", "b", "c", "d")) {
		t.Fatalf("order = %v", ids(got))
	}
	for i, c := range got {
		tol := 1e-3 // the estimate, past the offered two
		if i < 2 || c.DistanceM < 0 {
			tol = 0 // confirmed with golang-geo, or unknown
		}
		if math.Abs(c.DistanceM-want[i]) > tol {
			t.Errorf("%s: DistanceM = %.6f, want %.6f", c.Staff, c.DistanceM, want[i])
		}
	}
	if d := got[0].DistanceM; math.Abs(d-50) > 0.05 {
		t.Errorf("a is %.3f m away, want ≈ 50", d)
	}
}

// TestEstimateAgreesWithGeo: the cheap estimate the order runs on stays within a
// millimetre of golang-geo across a site (and beyond), at several latitudes.
func TestEstimateAgreesWithGeo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, lat := range []float64{-45, 0.5, 59.9, 69.6, 78.2} {
		for _, lon := range []float64{10.75, -122.4, 179.99} { // the last by the antimeridian
			loc := vakt.Location{Lat: lat, Lon: lon}
			o := newOrigin(loc, 0)
			for range 1000 {
				p := &vakt.Position{
					Lat: lat + (rng.Float64()-0.5)*0.02, // ±1.1 km
					Lon: loc.Lon + (rng.Float64()-0.5)*0.04,
				}
				if p.Lon > 180 {
					p.Lon -= 360
				}
				est := o.estimate(p)
				if o.across() {
					est = o.estimateAcross(p)
				}
				if ex := o.exact(p); math.Abs(est-ex) > 1e-3 {
					t.Fatalf("at %v,%v: estimate %.6f vs golang-geo %.6f at %+v", lat, lon, est, ex, *p)
				}
			}
		}
	}
}

// TestSelectAgreesWithSort: asking for the first k (the offer path) gives exactly
// the first k of the full ranking, on crowds with many ties.
func TestSelectAgreesWithSort(t *testing.T) {
	r := newRouter(t, baseConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	tier := Tier{Target: TargetNearest, Wait: time.Second}
	for round := range 200 {
		people := make([]Person, 1+rng.IntN(60))
		for i := range people {
			var p *vakt.Position
			if rng.IntN(4) > 0 {
				// Coarse grid: many equal distances.
				p = pos(float64(rng.IntN(5)*10), float64(rng.IntN(3)*10), rng.IntN(3))
			}
			people[i] = nurse(fmt.Sprintf("s%02d", rng.IntN(100)), p)
			if rng.IntN(2) == 0 {
				people[i].LastOfferedAt = t0.Add(-time.Duration(rng.IntN(3)) * time.Minute)
			}
		}
		env := Env{Now: t0, Origin: site, People: people}
		all := r.rank(nil, rankRequest{tier: &tier, env: &env, k: -1})
		for k := 1; k <= 5; k++ {
			got := r.rank(nil, rankRequest{tier: &tier, env: &env, k: k})
			n := min(k, len(all))
			if !slices.Equal(ids(got), ids(all[:n])) {
				t.Fatalf("round %d k %d: select %v, sort %v", round, k, ids(got), ids(all[:n]))
			}
		}
	}
}

// TestRankConcurrent: the Router is shared by every alarm; its scratch pool must
// not leak one ranking into another.
func TestRankConcurrent(t *testing.T) {
	r := newRouter(t, baseConfig())
	envs := []Env{benchEnv(50), benchEnv(300)}
	envs[1].People = envs[1].People[100:] // a different crowd
	tier := Tier{Target: TargetNearest, Count: 3, Wait: time.Second}
	want := [][]Candidate{r.Rank(tier, envs[0]), r.Rank(tier, envs[1])}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				i := g % 2
				if got := r.Rank(tier, envs[i]); !slices.Equal(got, want[i]) {
					t.Errorf("concurrent Rank differs for env %d", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

func offline(p *Person) { p.Offline = true }

// TestOfflinePhonesRankLast: a nurse whose phone is not connected would see an offer
// only after reconnecting, so the resident would wait offer_confirm for nothing. She
// ranks after every connected colleague (nearest first among the offline), keeps her
// distance, and is still offered the alarm when nobody connected is eligible.
func TestOfflinePhonesRankLast(t *testing.T) {
	r := newRouter(t, baseConfig())
	people := []Person{
		nurse("a", pos(30, 40, 1), offline), // 50 m, no phone connected
		nurse("b", pos(0, 100, 1)),          // 100 m
		nurse("c", nil),                     // connected, position unknown
		nurse("d", pos(0, 200, 1), offline), // 200 m, offline
		nurse("e", nil, offline),            // offline, position unknown
		nurse("f", pos(0, 20, 1), offline, busy),
	}
	env := Env{Now: t0, Origin: site, People: people}
	nearest := Tier{Target: TargetNearest, Count: 1, Wait: time.Second}
	got := r.Rank(nearest, env)
	if !slices.Equal(ids(got), staffIDs("b", "c", "a", "d", "e")) {
		t.Fatalf("order = %v, want b c a d e", ids(got))
	}
	if d := got[2].DistanceM; math.Abs(d-50) > 0.05 {
		t.Errorf("offline a is %.3f m away, want ≈ 50 (her distance, not unknown)", d)
	}
	if got[1].DistanceM != -1 || got[4].DistanceM != -1 {
		t.Errorf("unknown positions: %+v", got)
	}
	// The selection path (few wanted) agrees with the full sort.
	for k := 1; k <= 5; k++ {
		sel := r.rank(nil, rankRequest{tier: &nearest, env: &env, k: k, confirm: 1})
		if !slices.Equal(ids(sel), ids(got)[:k]) {
			t.Errorf("first %d = %v, want %v", k, ids(sel), ids(got)[:k])
		}
	}
	a := &vakt.Alarm{ID: "a-1", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency, State: vakt.StateRaised, Policy: "p", RaisedAt: t0}
	r2 := newRouter(t, baseConfig(Policy{Name: "p", Tiers: []Tier{nearest}}))
	if acts := r2.Raise(a, env); len(acts) == 0 || acts[0] != offer("b") {
		t.Fatalf("raise: %+v, want an offer to b", acts)
	}
	// Nobody connected: the nearest offline nurse is offered (she may reconnect).
	alone := Env{Now: t0, Origin: site, People: []Person{people[0], people[3]}}
	a2 := &vakt.Alarm{ID: "a-2", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency, State: vakt.StateRaised, Policy: "p", RaisedAt: t0}
	if acts := r2.Raise(a2, alone); len(acts) == 0 || acts[0] != offer("a") {
		t.Fatalf("raise with nobody connected: %+v, want an offer to a", acts)
	}
}
