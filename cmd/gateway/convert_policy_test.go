package main

import (
	"slices"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/routing"
)

// TestRoutingConfigPolicyDepth: windows, the site's time zone, parallel and
// interrupt-busy tiers and primary contacts reach routing as written.
func TestRoutingConfigPolicyDepth(t *testing.T) {
	cfg, err := config.Parse([]byte(`
site: {id: test-site, timezone: Europe/Oslo}
zones: [{id: east}]
transmitters:
  - {id: room-101, kind: button, driver: espa, address: "101", room: "101", zone: east, primary_contacts: [nurse-1]}
policies:
  - name: emergency
    kinds: [emergency]
    tiers: [{target: nearest, wait: 30s}]
  - name: night-emergency
    kinds: [emergency]
    interrupt_busy: true
    windows: [{days: [weekdays], from: "22:00", to: "07:00"}]
    tiers:
      - {target: primary, wait: 60s}
      - {target: arc, parallel: true}
drivers:
  serial: [{device: /dev/ttyUSB0, fallback: room-101}]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := routing.New(routingConfig(cfg))
	if err != nil {
		t.Fatalf("routing.New: %v", err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	loc := vakt.Location{Room: "101", Zone: "east"}
	// Monday 23:00 in Oslo is 21:00 UTC in summer.
	if got := r.PolicyAt(vakt.EventEmergency, loc, time.Date(2026, 6, 15, 21, 0, 0, 0, time.UTC)).Name; got != "night-emergency" {
		t.Errorf("Monday 23:00 Oslo: %q, want night-emergency", got)
	}
	if got := r.PolicyAt(vakt.EventEmergency, loc, time.Date(2026, 6, 15, 23, 0, 0, 0, oslo).Add(-3*time.Hour)).Name; got != "emergency" {
		t.Errorf("Monday 20:00 Oslo: %q, want emergency", got)
	}
	p := r.PolicyAt(vakt.EventEmergency, loc, time.Date(2026, 6, 16, 6, 0, 0, 0, oslo))
	if !p.InterruptBusy || len(p.Tiers) != 2 || p.Tiers[0].Target != routing.TargetPrimary || !p.Tiers[1].Parallel {
		t.Errorf("night policy: %+v", p)
	}
	tx := transmittersFromConfig(cfg)
	if !slices.Equal(tx[0].PrimaryContacts, []vakt.StaffID{"nurse-1"}) {
		t.Errorf("primary contacts: %v", tx[0].PrimaryContacts)
	}
}
