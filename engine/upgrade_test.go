package engine_test

import (
	"testing"

	vakt "github.com/vakt/vakt"
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
