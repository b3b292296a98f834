package routing

import (
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

func TestPolicy(t *testing.T) {
	tiers := []Tier{{Target: TargetSite, Wait: time.Minute}}
	cfg := baseConfig(
		Policy{Name: "care", Tiers: tiers},
		Policy{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency, vakt.EventFall}, Tiers: tiers},
		Policy{Name: "east-emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, Zone: "east", Tiers: tiers},
		Policy{Name: "room-101", Kinds: []vakt.EventKind{vakt.EventEmergency}, Rooms: []string{"101", "103"}, Tiers: tiers},
		Policy{Name: "west-room-101", Kinds: []vakt.EventKind{vakt.EventCall}, Zone: "west", Rooms: []string{"101"}, Tiers: tiers},
		Policy{Name: "care-again", Tiers: tiers}, // as specific as "care", listed later
		Policy{Name: "east-doors", Kinds: []vakt.EventKind{vakt.EventDoor}, Zone: "east", Tiers: tiers},
		Policy{Name: "east-doors-again", Kinds: []vakt.EventKind{vakt.EventDoor}, Zone: "east", Tiers: tiers},
		Policy{Name: "technical", Kinds: []vakt.EventKind{vakt.EventLowBattery, vakt.EventTamper}, Tiers: tiers},
		Policy{Name: "north-care", Zone: "north", Tiers: tiers},
	)
	r := newRouter(t, cfg)
	east101 := vakt.Location{Room: "101", Zone: "east"}
	east102 := vakt.Location{Room: "102", Zone: "east"}
	west201 := vakt.Location{Room: "201", Zone: "west"}
	tests := []struct {
		kind vakt.EventKind
		loc  vakt.Location
		want string
	}{
		{vakt.EventCall, west201, "care"},                // site-wide, first of equals
		{vakt.EventSensor, east102, "care"},              // empty Kinds: every care kind
		{vakt.EventFall, west201, "emergency"},           // naming the kind beats the catch-all listed before it
		{vakt.EventEmergency, west201, "emergency"},      // site-wide for the kind
		{vakt.EventEmergency, east102, "east-emergency"}, // zone beats site
		{vakt.EventEmergency, east101, "room-101"},       // room beats zone
		{vakt.EventCall, east101, "care"},                // a room policy for the wrong zone does not match
		{vakt.EventCall, vakt.Location{Room: "101", Zone: "west"}, "west-room-101"},
		{vakt.EventDoor, east102, "east-doors"}, // first of two equally specific
		{vakt.EventLowBattery, east101, "technical"},
		{vakt.EventTamper, west201, "technical"},
		{vakt.EventOffline, west201, "fallback"},                                       // technical kinds only where listed
		{vakt.EventCheckIn, west201, "fallback"},                                       // not a care alarm
		{vakt.EventEmergency, vakt.Location{Room: "301", Zone: "north"}, "north-care"}, // location before kind
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"@"+tt.loc.Zone+"/"+tt.loc.Room, func(t *testing.T) {
			if got := r.Policy(tt.kind, tt.loc).Name; got != tt.want {
				t.Errorf("Policy = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPolicyFallback(t *testing.T) {
	r := newRouter(t, baseConfig())
	p := r.Policy(vakt.EventEmergency, site)
	if p.Name != "fallback" || len(p.Tiers) != 1 || p.Tiers[0].Target != TargetSite || p.Tiers[0].Wait != 60*time.Second {
		t.Fatalf("fallback = %+v", p)
	}
	// Changing the returned value must not change the next.
	p.Tiers[0].Wait = time.Hour
	if w := r.Policy(vakt.EventEmergency, site).Tiers[0].Wait; w != 60*time.Second {
		t.Fatalf("fallback changed to %v", w)
	}
}

func TestNew(t *testing.T) {
	ok := []Tier{{Target: TargetNearest, Wait: 30 * time.Second}}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{name: "valid", cfg: baseConfig(Policy{Name: "care", Tiers: ok})},
		{name: "no policies: the fallback routes everything", cfg: baseConfig()},
		{
			name: "arc needs no wait",
			cfg: baseConfig(Policy{Name: "care", Tiers: []Tier{
				{Target: TargetNearest, Wait: time.Second}, {Target: TargetARC},
			}}),
		},
		{
			name: "wait must be positive, named by policy and tier",
			cfg: baseConfig(Policy{Name: "emergency", Tiers: []Tier{
				{Target: TargetNearest, Wait: time.Second}, {Target: TargetZone},
			}}),
			want: []string{`policy "emergency" tier 2: wait must be > 0`},
		},
		{
			name: "every problem reported",
			cfg: baseConfig(
				Policy{Name: "a", Tiers: []Tier{{Target: "everyone", Wait: time.Second}}},
				Policy{Name: "b", Tiers: []Tier{{Target: TargetNearest, Count: -1, Wait: -time.Second}}},
				Policy{Name: "c"},
				Policy{Name: "d", Tiers: []Tier{{Target: TargetRole, Wait: time.Second}, {Target: TargetARC, Wait: -1}}},
			),
			want: []string{
				`policy "a" tier 1: unknown target "everyone"`,
				`policy "b" tier 1: wait must be > 0`,
				`policy "b" tier 1: count must be >= 0`,
				`policy "c": needs at least one tier`,
				`policy "d" tier 1: role target needs roles`,
				`policy "d" tier 2: wait must be >= 0`,
			},
		},
		{
			name: "names",
			cfg: baseConfig(
				Policy{Tiers: ok},
				Policy{Name: "x", Tiers: ok},
				Policy{Name: "x", Tiers: ok},
			),
			want: []string{`policy 1: name must be set`, `policy "x": name used twice`},
		},
		{
			name: "kinds, priority, re-alarm",
			cfg: baseConfig(Policy{
				Name: "p", Kinds: []vakt.EventKind{vakt.EventCancel}, Priority: 9,
				ReAlarmAfter: -time.Second, Tiers: ok,
			}),
			want: []string{
				`policy "p": kind "cancel" does not raise an alarm`,
				`policy "p": priority must be 1..4`,
				`policy "p": re-alarm after must be >= 0`,
			},
		},
		{
			name: "site knobs",
			cfg: Config{
				Policies:       []Policy{{Name: "p", Tiers: ok}},
				OfferConfirm:   -time.Second,
				FloorPenaltyM:  -1,
				NearestEnabled: true,
			},
			want: []string{"offer confirm must be >= 0", "floor penalty must be >= 0", "position TTL must be > 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New: no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestNewDefaultsAndCopies(t *testing.T) {
	cfg := baseConfig(Policy{Name: "care", Tiers: []Tier{{Target: TargetSite, Wait: time.Minute}}})
	cfg.OfferConfirm = 0
	r := newRouter(t, cfg)
	if r.cfg.OfferConfirm != 10*time.Second {
		t.Errorf("OfferConfirm default = %v, want 10s", r.cfg.OfferConfirm)
	}
	// The caller's config is its own after New.
	cfg.Policies[0].Tiers[0].Wait = time.Hour
	cfg.Policies[0].Name = "changed"
	if p := r.Policy(vakt.EventCall, site); p.Name != "care" || p.Tiers[0].Wait != time.Minute {
		t.Errorf("router saw the caller's change: %+v", p)
	}
}
