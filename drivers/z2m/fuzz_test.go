package z2m_test

import (
	"errors"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/z2m"
)

// FuzzDecode feeds arbitrary messages through one decoder (so its state machine sees
// odd sequences too). Decode must never panic, and must either reject with one of its
// sentinels, ignore, or return well-formed events.
func FuzzDecode(f *testing.F) {
	for _, l := range goldenMessages(f) {
		f.Add(l.Topic, []byte(l.Payload), false)
		f.Add(l.Topic, []byte(l.Payload), true)
	}
	f.Add("zigbee2mqtt/room102/sos/availability", []byte(`{"state":"offline"}`), true)
	f.Add("zigbee2mqtt/room104/bed/set/state", []byte(`ON`), false)
	f.Add("zigbee2mqtt/room101/sos", []byte(`{"a":[[[[[[[[[1]]]]]]]]]}`), false)
	f.Add("zigbee2mqtt/room101/sos", []byte(`{"battery":1e308,"linkquality":-0,"battery_low":null}`), false)
	d := newDecoder(f)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, retained bool) {
		res, err := d.Decode(topic, payload, retained)
		if err != nil {
			if !errors.Is(err, z2m.ErrMalformed) && !errors.Is(err, z2m.ErrUnknown) && !errors.Is(err, z2m.ErrOversize) {
				t.Fatalf("error %v is not a sentinel", err)
			}
			if len(res.Events) != 0 || res.Ignored {
				t.Fatalf("rejection with a result: %+v", res)
			}
			return
		}
		if res.Ignored {
			if len(res.Events) != 0 {
				t.Fatalf("ignored with events: %+v", res)
			}
			return
		}
		if len(res.Events) == 0 || res.Transmitter == "" {
			t.Fatalf("no events: %+v", res)
		}
		for _, ev := range res.Events {
			if ev.Transmitter != res.Transmitter || ev.Kind == "" {
				t.Fatalf("bad event %+v", ev)
			}
			if retained && ev.Kind != vakt.EventCheckIn && ev.Kind != vakt.EventOffline {
				t.Fatalf("retained message raised %s", ev.Kind)
			}
			if ev.Battery != nil && (*ev.Battery < 0 || *ev.Battery > 100) {
				t.Fatalf("battery %d", *ev.Battery)
			}
			if ev.LinkQuality != nil && (*ev.LinkQuality < 0 || *ev.LinkQuality > 255) {
				t.Fatalf("link quality %d", *ev.LinkQuality)
			}
		}
	})
}
