package engine_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/store"
)

// TestEmergencyPressUpgradesOpenCall: a call, then the emergency button on the same
// transmitter: one alarm, now an emergency, and the nurse offered the call is told.
func TestEmergencyPressUpgradesOpenCall(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "espa"})
	r.phones.wait(t, "offer", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "espa"})
	r.phones.wait(t, "update", func() bool { return r.phones.count("near", vakt.NoticeUpdate) == 1 })
	open := r.open()
	if len(open) != 1 {
		t.Fatalf("%d open alarms, want one", len(open))
	}
	if a := open[0]; a.Kind != vakt.EventEmergency || a.Priority != vakt.PriorityEmergency || a.Count != 2 {
		t.Errorf("alarm is %s priority %d count %d, want an emergency, priority 1, count 2", a.Kind, a.Priority, a.Count)
	}
}

// depthEngine is an engine routing by cfg, with "near" and "far" nurses on duty and
// room-101 (primary contact: far) and room-102.
func depthEngine(t *testing.T, cfg routing.Config) (*engine.Engine, *phones) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "vakt.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := routing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	near := vakt.Position{Lat: 59.91391, Lon: 10.7522, Floor: 1}
	far := vakt.Position{Lat: 59.9150, Lon: 10.7522, Floor: 1}
	r101 := room
	r101.PrimaryContacts = []vakt.StaffID{"far"}
	r102 := room
	r102.ID, r102.Location.Room = "room-102", "102"
	ph := newPhones()
	eng, err := engine.New(ctx, engine.Options{
		Store: db, Router: router, Notifier: ph, Clock: fakeclock.New(t0),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Transmitters: []vakt.Transmitter{r101, r102}, NearestRouting: true, PositionTTL: time.Hour,
		Directory: []vakt.Staff{{ID: "near", Roles: []string{"nurse"}}, {ID: "far", Roles: []string{"nurse"}}},
		InitialStaff: []vakt.StaffState{
			{Staff: "near", OnDuty: true, Availability: vakt.Available, Position: &near},
			{Staff: "far", OnDuty: true, Availability: vakt.Available, Position: &far},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = db.Close() })
	return eng, ph
}

func ingestWait(t *testing.T, eng *engine.Engine, ev vakt.Event) {
	t.Helper()
	errc := make(chan error, 1)
	if err := eng.Ingest(ev, func(err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestPrimaryContactOfferedFirst: the resident's primary contact is offered before
// the nearer nurse.
func TestPrimaryContactOfferedFirst(t *testing.T) {
	eng, ph := depthEngine(t, routing.Config{
		OfferConfirm: 10 * time.Second, NearestEnabled: true, PositionTTL: time.Hour,
		Policies: []routing.Policy{{Name: "care", Tiers: []routing.Tier{
			{Target: routing.TargetPrimary, Wait: 30 * time.Second},
			{Target: routing.TargetNearest, Wait: 30 * time.Second},
		}}},
	})
	ingestWait(t, eng, vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "espa"})
	ph.wait(t, "offer to far", func() bool { return ph.count("far", vakt.NoticeOffer) == 1 })
	// room-102's resident has no primary contact: the nearest nurse.
	ingestWait(t, eng, vakt.Event{Transmitter: "room-102", Kind: vakt.EventCall, Source: "espa"})
	ph.wait(t, "offer to near", func() bool { return ph.count("near", vakt.NoticeOffer) == 1 })
	if n := ph.count("near", vakt.NoticeOffer); n != 1 {
		t.Errorf("near offered %d alarms, want only room-102's", n)
	}
}

// TestEmergencyInterruptsNormalCall: a nurse busy with one normal call is offered
// an emergency on an interrupt-busy policy, before the free nurse further away.
func TestEmergencyInterruptsNormalCall(t *testing.T) {
	eng, ph := depthEngine(t, routing.Config{
		OfferConfirm: 10 * time.Second, NearestEnabled: true, PositionTTL: time.Hour,
		Policies: []routing.Policy{
			{Name: "care", Tiers: []routing.Tier{{Target: routing.TargetNearest, Wait: 30 * time.Second}}},
			{Name: "emergency", Kinds: []vakt.EventKind{vakt.EventEmergency}, InterruptBusy: true,
				Tiers: []routing.Tier{{Target: routing.TargetNearest, Wait: 30 * time.Second}}},
		},
	})
	ctx := context.Background()
	ingestWait(t, eng, vakt.Event{Transmitter: "room-102", Kind: vakt.EventCall, Source: "espa"})
	ph.wait(t, "offer to near", func() bool { return ph.count("near", vakt.NoticeOffer) == 1 })
	if _, err := eng.Accept(ctx, "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SetAvailability(ctx, "near", vakt.Busy); err != nil {
		t.Fatal(err)
	}
	ingestWait(t, eng, vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "espa"})
	ph.wait(t, "emergency offered to near", func() bool { return ph.count("near", vakt.NoticeOffer) == 2 })
	if n := ph.count("far", vakt.NoticeOffer); n != 0 {
		t.Errorf("far offered %d alarms, want none: near may be interrupted", n)
	}
}
