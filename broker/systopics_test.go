package broker_test

import (
	"slices"
	"testing"

	"github.com/vakt/vakt/broker"
)

// P4, idle: the broker retains no $SYS messages (no client may read them, and mochi
// copied them all once a second), while a message a client retains, such as
// Zigbee2MQTT's availability, is still delivered to a later subscriber.
func TestNoSysTopicsRetainedKept(t *testing.T) {
	b := start(t, broker.Options{Clients: clients()})
	if got := broker.RetainedTopics(b); len(got) != 0 {
		t.Fatalf("retained after start: %v, want none ($SYS dropped)", got)
	}
	const avail = "zigbee2mqtt/room101/availability"
	z2m := mustConnect(t, b, "z2m", "z2m-secret", "z2m", true)
	if tok := z2m.Publish(avail, 1, true, `{"state":"online"}`); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish retained: %v", tok.Error())
	}
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	if code := gw.subscribe(t, "zigbee2mqtt/+/availability"); code != 1 {
		t.Fatalf("suback %#x", code)
	}
	m := gw.next(t)
	if m.Topic() != avail || !m.Retained() || string(m.Payload()) != `{"state":"online"}` {
		t.Fatalf("got %s %q retained=%v, want the retained availability", m.Topic(), m.Payload(), m.Retained())
	}
	if got := broker.RetainedTopics(b); !slices.Equal(got, []string{avail}) {
		t.Fatalf("retained: %v, want only %s", got, avail)
	}
}
