package engine_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// lingerRig is a rig whose check-ins may wait linger for company.
func lingerRig(t *testing.T, linger time.Duration) *rig {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(), linger: linger}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	r.idle()
	return r
}

// untilLingering returns once the engine armed one more timer than before (its
// linger): the fake clock may be moved only after that.
func untilLingering(t *testing.T, r *rig, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.clock.Pending() <= before {
		if time.Now().After(deadline) {
			t.Fatal("the engine never started to linger")
		}
		runtime.Gosched()
	}
}

// offerStatus reads near's offer of a-1 from the database (what survives a crash).
func offerStatus(t *testing.T, r *rig) vakt.OfferStatus {
	t.Helper()
	a, err := r.db.Alarm(context.Background(), "a-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range a.Offers {
		if o.Staff == "near" {
			return o.Status
		}
	}
	t.Fatalf("a-1 has no offer to near: %+v", a.Offers)
	return ""
}

func auditActions(t *testing.T, r *rig) []string {
	t.Helper()
	entries, err := r.db.AuditRange(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}

// TestDeliveredWaitsAcceptDoesNot (P6): a phone's delivery confirmation waits for
// company instead of a commit of its own; the phone's accept that follows is not
// held back by it (the clock does not move), and the confirmation is committed in
// the accept's transaction, before the accept is answered.
func TestDeliveredWaitsAcceptDoesNot(t *testing.T) {
	r := lingerRig(t, 10*time.Second)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	r.phones.wait(t, "offer", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	r.idle()
	before, timers := r.eng.Stats().Batches, r.clock.Pending()

	if err := r.eng.Delivered(context.Background(), "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	untilLingering(t, r, timers)
	if st := offerStatus(t, r); st != vakt.OfferPending {
		t.Fatalf("offer %q in the database while the confirmation waits; want it still pending", st)
	}

	a, err := r.eng.Accept(context.Background(), "near", "a-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != vakt.StateAccepted {
		t.Fatalf("accept answered %q", a.State)
	}
	// Answered, so on disk: the accept and, before it, the confirmation.
	if st := offerStatus(t, r); st != vakt.OfferAccepted {
		t.Errorf("offer %q in the database after the accept was answered; want accepted", st)
	}
	acts := auditActions(t, r)
	if len(acts) < 2 || acts[len(acts)-2] != "alarm.delivered" || acts[len(acts)-1] != "alarm.accepted" {
		t.Errorf("audit trail ends %v; want alarm.delivered then alarm.accepted", acts)
	}
	if n := r.eng.Stats().Batches - before; n != 1 {
		t.Errorf("confirmation and accept took %d commits, want 1", n)
	}
}

// TestDeliveredWaitsAtMostItsBound (P6): a confirmation that joins check-ins waiting
// for up to 10 s ends their wait after its own, shorter, bound (2 s): the status
// page and a crash see it confirmed soon, not a check-in linger later.
func TestDeliveredWaitsAtMostItsBound(t *testing.T) {
	r := lingerRig(t, 10*time.Second)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	r.phones.wait(t, "offer", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	r.idle()
	timers := r.clock.Pending()

	checkin := make(chan error, 1)
	// room-102's first message: its health row is written with its own commit
	// (room-101's would wait for the next health write and commit nothing now).
	if err := r.eng.Ingest(vakt.Event{Transmitter: "room-102", Kind: vakt.EventCheckIn, Source: "mqtt"},
		func(err error) { checkin <- err }); err != nil {
		t.Fatal(err)
	}
	untilLingering(t, r, timers) // the check-in waits, up to 10 s
	if err := r.eng.Delivered(context.Background(), "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	// The confirmation shortens the wait to 2 s from now: one more timer.
	untilLingering(t, r, timers+1)
	select {
	case err := <-checkin:
		t.Fatalf("the check-in was committed (%v) before any wait ended", err)
	default:
	}
	r.clock.Advance(2 * time.Second)
	if err := <-checkin; err != nil { // committed with the confirmation
		t.Fatal(err)
	}
	if st := offerStatus(t, r); st != vakt.OfferDelivered {
		t.Errorf("offer %q in the database 2 s after the confirmation; want delivered", st)
	}
}

// TestDeliveredBeforeConfirmDeadline: a confirmation still waiting for company when
// the offer's confirm deadline comes is applied before the deadline's timer, so
// the alarm is not offered onwards (the timer ends the wait; here the confirmation
// alone would wait 2 s, the deadline is 10 s after the offer).
func TestDeliveredBeforeConfirmDeadline(t *testing.T) {
	r := lingerRig(t, 10*time.Second)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	r.phones.wait(t, "offer", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	r.idle()
	r.clock.Advance(9 * time.Second)
	r.idle()
	timers := r.clock.Pending()
	if err := r.eng.Delivered(context.Background(), "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	untilLingering(t, r, timers)
	r.clock.Advance(time.Second) // the offer's confirm deadline: its tick ends the wait
	r.idle()
	if st := offerStatus(t, r); st != vakt.OfferDelivered {
		t.Errorf("offer %q after the confirm deadline; want delivered", st)
	}
	if n := r.phones.count("far", vakt.NoticeOffer); n != 0 {
		t.Errorf("far was offered the alarm %d times although near's phone confirmed in time", n)
	}
}
