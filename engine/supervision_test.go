package engine_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/z2m"
	"github.com/vakt/vakt/internal/fakeclock"
)

// z2mFeed decodes Zigbee2MQTT messages with the real decoder and ingests their events
// as drivers/mqtt does, each waited for until committed.
type z2mFeed struct {
	r   *rig
	dec *z2m.Decoder
}

func newZ2MFeed(t *testing.T, r *rig) *z2mFeed {
	dec, err := z2m.NewDecoder("zigbee2mqtt", []z2m.Device{{ID: "room-101", Topic: "zigbee2mqtt/room101"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &z2mFeed{r: r, dec: dec}
}

func (f *z2mFeed) send(topic, payload string) {
	f.r.t.Helper()
	res, err := f.dec.Decode(topic, []byte(payload), false)
	if err != nil {
		f.r.t.Fatalf("%s %s: %v", topic, payload, err)
	}
	for _, ev := range res.Events {
		ev.Source = "mqtt"
		f.r.ingest(ev)
	}
}

// alarmsOf lists every alarm the database holds for a transmitter and kind, open or
// closed, oldest first.
func (r *rig) alarmsOf(tx vakt.TransmitterID, kind vakt.EventKind) []vakt.Alarm {
	r.t.Helper()
	all, err := r.db.AlarmHistory(context.Background(), time.Time{}, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []vakt.Alarm
	for i := len(all) - 1; i >= 0; i-- {
		if a := all[i]; a.Transmitter == tx && a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// episode asserts that exactly one alarm of kind exists for tx and whether it is open.
func (r *rig) episode(tx vakt.TransmitterID, kind vakt.EventKind, n int, open bool) {
	r.t.Helper()
	list := r.alarmsOf(tx, kind)
	if len(list) != n {
		r.t.Fatalf("%s %s: %d alarms, want %d: %+v", tx, kind, len(list), n, list)
	}
	last := list[n-1]
	if got := last.State.Open(); got != open {
		r.t.Fatalf("%s %s: alarm %s state %s, want open=%v", tx, kind, last.ID, last.State, open)
	}
}

// TestLowBatteryEpisodeWithHysteresis: a battery drifting 14/15/19/14 around the
// threshold (15) is one technical alarm for the technician, open until the battery
// reports 20 (threshold + margin); the next drop is a new episode.
func TestLowBatteryEpisodeWithHysteresis(t *testing.T) {
	r := newRig(t)
	f := newZ2MFeed(t, r)
	const dev = "zigbee2mqtt/room101"
	f.send(dev, `{"battery":14,"linkquality":80}`)
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	for _, level := range []string{"15", "19", "14", "16"} {
		f.send(dev, `{"battery":`+level+`}`)
		r.episode("room-101", vakt.EventLowBattery, 1, true)
	}
	f.send(dev, `{"battery":20}`)
	r.episode("room-101", vakt.EventLowBattery, 1, false)
	r.phones.wait(t, "offer withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
	f.send(dev, `{"battery":80}`) // stays closed, nothing new
	r.episode("room-101", vakt.EventLowBattery, 1, false)
	if r.phones.count("near", vakt.NoticeOffer)+r.phones.count("far", vakt.NoticeOffer) != 0 {
		t.Fatal("a nurse was offered a technical alarm")
	}
	f.send(dev, `{"battery":9}`)
	r.episode("room-101", vakt.EventLowBattery, 2, true)
}

// TestLowBatteryClosedAfterRestart: the decoder forgets the episode when the gateway
// restarts; the first good reading afterwards still closes the stored alarm.
func TestLowBatteryClosedAfterRestart(t *testing.T) {
	r := newRig(t)
	newZ2MFeed(t, r).send("zigbee2mqtt/room101", `{"battery":10}`)
	r.stop()
	r.start(false)
	newZ2MFeed(t, r).send("zigbee2mqtt/room101", `{"battery":60}`)
	r.episode("room-101", vakt.EventLowBattery, 1, false)
}

// TestTamperEpisode: the cover opened is one technical alarm however often Z2M repeats
// tamper:true; tamper:false closes it.
func TestTamperEpisode(t *testing.T) {
	r := newRig(t)
	f := newZ2MFeed(t, r)
	const dev = "zigbee2mqtt/room101"
	f.send(dev, `{"tamper":false}`)
	f.send(dev, `{"tamper":true}`)
	f.send(dev, `{"tamper":true,"linkquality":40}`)
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.episode("room-101", vakt.EventTamper, 1, true)
	f.send(dev, `{"tamper":false}`)
	r.episode("room-101", vakt.EventTamper, 1, false)
	r.phones.wait(t, "offer withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
}

// TestAvailabilityOfflineOnline: Zigbee2MQTT reporting the device offline (both
// payload forms) is one technical alarm; online closes it.
func TestAvailabilityOfflineOnline(t *testing.T) {
	r := newRig(t)
	f := newZ2MFeed(t, r)
	const avail = "zigbee2mqtt/room101/availability"
	f.send(avail, `{"state":"offline"}`)
	f.send(avail, `offline`)
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.episode("room-101", vakt.EventOffline, 1, true)
	f.send(avail, `{"state":"online"}`)
	r.episode("room-101", vakt.EventOffline, 1, false)
	r.phones.wait(t, "offer withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
}

// TestBridgeOfflineOnline: the Zigbee2MQTT bridge going away (its last will on
// bridge/state) is one technical alarm on the bridge; its return closes it.
func TestBridgeOfflineOnline(t *testing.T) {
	r := newRig(t)
	f := newZ2MFeed(t, r)
	bridge := z2m.BridgeTransmitter("zigbee2mqtt")
	f.send("zigbee2mqtt/bridge/state", `{"state":"offline"}`)
	f.send("zigbee2mqtt/bridge/state", `offline`)
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.episode(bridge, vakt.EventOffline, 1, true)
	f.send("zigbee2mqtt/bridge/state", `online`)
	r.episode(bridge, vakt.EventOffline, 1, false)
}

// TestMissedCheckInOneAlarm: a supervised button silent for two periods is one
// "offline" alarm (the second silence folds into it); its next message closes it.
func TestMissedCheckInOneAlarm(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	supervised := room
	supervised.Supervision = time.Hour
	r.transmitters = []vakt.Transmitter{supervised}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	r.idle()
	r.clock.Advance(61 * time.Minute)
	r.phones.wait(t, "offline alarm to the technician", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.idle()
	r.clock.Advance(61 * time.Minute)
	r.idle()
	r.episode("room-101", vakt.EventOffline, 1, true)
	newZ2MFeed(t, r).send("zigbee2mqtt/room101", `{"linkquality":50}`)
	r.episode("room-101", vakt.EventOffline, 1, false)
}
