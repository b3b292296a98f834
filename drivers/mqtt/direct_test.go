package mqtt_test

import (
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/mqtt"
)

// TestDeliverReturnsAfterCommit: the embedded broker's in-process hand-over returns
// only when the press is committed; junk returns at once (it can never succeed).
func TestDeliverReturnsAfterCommit(t *testing.T) {
	rec := newRecorder()
	rec.hold.Store(true)
	d, err := mqtt.New(mqtt.Options{Direct: true, Logger: testLogger(t),
		Dialects: dialects(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()

	if err := d.Deliver("zigbee2mqtt/room101/sos", []byte(`{"action":"`)); err != nil {
		t.Fatalf("malformed payload: %v", err)
	}
	returned := make(chan error, 1)
	go func() { returned <- d.Deliver("zigbee2mqtt/room101/sos", []byte(`{"action":"emergency"}`)) }()
	if ev := rec.next(t); ev.Kind != vakt.EventEmergency || ev.SourceID != "" {
		t.Fatalf("event %+v (in-process hand-overs are never redelivered: no source id)", ev)
	}
	select {
	case err := <-returned:
		t.Fatalf("Deliver returned before the commit: %v", err)
	default:
	}
	d.Stop() // the gateway stops before committing: the broker must not acknowledge
	if err := <-returned; err != mqtt.ErrStopped {
		t.Fatalf("Deliver after stop = %v, want ErrStopped", err)
	}
}

// TestDeliverAsyncPipelines: the embedded broker hands one connection's publishes over
// without waiting for their commits, so many are ingested before the first commit
// (one group commit can take them all); each is answered once it is committed, a
// failed commit is retried rather than answered, and a stop answers the rest with
// ErrStopped (no PUBACK).
func TestDeliverAsyncPipelines(t *testing.T) {
	rec := newRecorder()
	rec.hold.Store(true)
	d, err := mqtt.New(mqtt.Options{Direct: true, Logger: testLogger(t), Dialects: dialects(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()

	const n = 50
	results := make(chan error, n)
	for range n {
		d.DeliverAsync("zigbee2mqtt/room101/sos", []byte(`{"action":"emergency"}`), func(err error) { results <- err })
	}
	for i := range n {
		if ev := rec.next(t); ev.Kind != vakt.EventEmergency {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	select {
	case err := <-results:
		t.Fatalf("answered before any commit: %v", err)
	default:
	}
	d.Stop()
	for range n {
		if err := <-results; err != mqtt.ErrStopped {
			t.Fatalf("after stop: %v, want ErrStopped", err)
		}
	}
	d.DeliverAsync("zigbee2mqtt/room101/sos", []byte(`{"action":"emergency"}`), func(err error) { results <- err })
	if err := <-results; err != mqtt.ErrStopped {
		t.Fatalf("after stop: %v, want ErrStopped", err)
	}
}

// TestDeliverAsyncRetriesFailedCommit: a failed commit is not answered; it is
// ingested again and answered once that commit succeeds.
func TestDeliverAsyncRetriesFailedCommit(t *testing.T) {
	rec := newRecorder()
	rec.fail.Store(1)
	d, err := mqtt.New(mqtt.Options{Direct: true, Logger: testLogger(t), Dialects: dialects(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	results := make(chan error, 1)
	d.DeliverAsync("zigbee2mqtt/room101/sos", []byte(`{"action":"emergency"}`), func(err error) { results <- err })
	rec.next(t) // the failed commit
	rec.next(t) // the retry
	if err := <-results; err != nil {
		t.Fatalf("answer after the retried commit: %v", err)
	}
	if s := d.Stats(); s.Retries == 0 || s.Acked != 1 {
		t.Fatalf("stats %+v", s)
	}
}
