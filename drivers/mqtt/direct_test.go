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
