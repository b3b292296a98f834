package engine_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// eventRows counts the events table's rows of a transmitter, read behind the
// store's back from the file.
func (r *rig) eventRows(tx vakt.TransmitterID) int {
	r.t.Helper()
	return r.countEvents(`SELECT count(*) FROM events WHERE transmitter = ?`, tx)
}

// duplicateRows counts the rows of a transmitter marked as recognised redeliveries.
func (r *rig) duplicateRows(tx vakt.TransmitterID) int {
	r.t.Helper()
	return r.countEvents(`SELECT count(*) FROM events WHERE transmitter = ? AND duplicate <> 0`, tx)
}

func (r *rig) countEvents(query string, tx vakt.TransmitterID) int {
	r.t.Helper()
	raw, err := sql.Open("sqlite", "file:"+r.path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		r.t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(query, string(tx)).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// healthOf reads the transmitter's stored health through a fresh Load.
func (r *rig) healthOf(tx vakt.TransmitterID) (vakt.TransmitterHealth, bool) {
	r.t.Helper()
	snap, err := r.db.Load(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, h := range snap.Health {
		if h.Transmitter == tx {
			return h, true
		}
	}
	return vakt.TransmitterHealth{}, false
}

func intp(v int) *int { return &v }

// TestCheckInStoredAsHealthOnly (P6): a check-in that changes nothing but health
// is on disk as the transmitter's health row when its source is told done — no
// events row — while presses, and a check-in that closes an offline alarm, keep
// their rows. The committed-events counter still counts the check-ins.
func TestCheckInStoredAsHealthOnly(t *testing.T) {
	r := newRig(t)
	before := r.eng.Stats().Events
	seen := t0.Add(time.Minute)
	checkIn := vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", SourceID: "mqtt:1",
		Battery: intp(87), LinkQuality: intp(120), ReceivedAt: seen}

	found := make(chan error, 1)
	if err := r.eng.Ingest(checkIn, func(err error) { found <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-found; err != nil {
		t.Fatal(err)
	}
	// Durable before acknowledged: the health row is in the file at done.
	h, ok := r.healthOf("room-101")
	if !ok || !h.LastSeen.Equal(seen) || h.Battery == nil || *h.Battery != 87 || h.LinkQuality == nil || *h.LinkQuality != 120 || !h.Online {
		t.Fatalf("health after the check-in's commit: %+v (found %v)", h, ok)
	}
	if n := r.eventRows("room-101"); n != 0 {
		t.Fatalf("a plain check-in wrote %d events rows, want 0", n)
	}
	r.idle()
	if got := r.eng.Stats().Events - before; got != 1 {
		t.Fatalf("events counter moved by %d, want 1", got)
	}

	// A press keeps its row, linked to its alarm.
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt", SourceID: "mqtt:2"})
	if n := r.eventRows("room-101"); n != 1 {
		t.Fatalf("after a press: %d events rows, want 1", n)
	}
	if evs, err := r.db.EventsForAlarm(context.Background(), "a-1"); err != nil || len(evs) != 1 {
		t.Fatalf("the alarm's history: %+v, %v", evs, err)
	}

	// A check-in that closes an offline alarm is a state change: it keeps its row.
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventOffline, Source: "mqtt"})
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	r.phones.wait(t, "offline alarm withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
	if n := r.eventRows("room-101"); n != 3 {
		t.Fatalf("press, offline and the check-in that closed it: %d events rows, want 3", n)
	}
}

// TestRedeliveredCheckInHarmless: a check-in redelivered while the gateway runs is
// recognised (one row marked duplicate, nothing raised); after a restart — its id
// no longer known, since a plain check-in has no events row — it sets the same
// health again, raises nothing and writes no row.
func TestRedeliveredCheckInHarmless(t *testing.T) {
	r := newRig(t)
	again := vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", SourceID: "mqtt:8"}
	r.ingest(again)
	r.ingest(again) // PUBACK lost, the broker sends it again
	if n, dup := r.eventRows("room-101"), r.duplicateRows("room-101"); n != 1 || dup != 1 {
		t.Fatalf("in-process redelivery: %d events rows, %d marked duplicate; want the one duplicate row", n, dup)
	}

	checkIn := vakt.Event{Transmitter: "room-102", Kind: vakt.EventCheckIn, Source: "mqtt", SourceID: "mqtt:9",
		Battery: intp(55), LinkQuality: intp(90)}
	r.ingest(checkIn)
	r.stop()
	r.start(false)
	r.clock.Advance(time.Minute)
	r.ingest(checkIn) // redelivered after a restart: the gateway died before the PUBACK
	if open := r.open(); len(open) != 0 {
		t.Fatalf("a redelivered check-in raised %+v", open)
	}
	h, ok := r.healthOf("room-102")
	if !ok || h.Battery == nil || *h.Battery != 55 || h.LinkQuality == nil || *h.LinkQuality != 90 || !h.Online {
		t.Fatalf("health after the redelivery: %+v", h)
	}
	if n := r.eventRows("room-102"); n != 0 {
		t.Fatalf("%d events rows for a check-in and its redelivery after a restart, want 0", n)
	}
}
