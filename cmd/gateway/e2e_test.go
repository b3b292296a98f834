package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// startGateway runs the whole gateway in-process on the demo configuration, with an
// injected clock so escalation timers run when the test says.
func startGateway(t testing.TB, cfgPath string, clock vakt.Clock, observers ...vakt.Observer) (*Main, client) {
	t.Helper()
	m := &Main{ConfigPath: cfgPath, Log: io.Discard, Clock: clock, Observers: observers}
	return m, runMain(t, m)
}

// runMain opens and runs m until it is ready, and stops it when the test ends.
func runMain(t testing.TB, m *Main) client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("gateway stopped: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("gateway not ready")
	}
	t.Cleanup(func() {
		cancel()
		<-done
		_ = m.Close()
	})
	return client{t: t, base: "http://" + m.APIAddr()}
}

// settle returns once the engine has finished the batch that told the test what it
// waited for, including re-arming its timer: the fake clock arms a timer at its own
// now + delay, so a clock moved between the engine's reading of now and its arming
// would push the deadline out by the jump. A ping goes through the loop's queue
// behind that batch.
func settle(t testing.TB, m *Main) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Engine.Ping(ctx); err != nil {
		t.Fatalf("engine ping: %v", err)
	}
}

// TestPressReachesNearestNurse is the spine, end to end, against both brokers: a
// Zigbee2MQTT SOS press → an offer on the nearest nurse's WebSocket → nobody accepts
// → tier 2 → accept → "taken" to the others → presence → complete.
func TestPressReachesNearestNurse(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		name := map[bool]string{true: "embedded-broker", false: "mosquitto"}[embedded]
		t.Run(name, func(t *testing.T) {
			brokerPort := freePort(t)
			if !embedded {
				mosquitto(t, brokerPort)
			}
			clock := fakeclock.New(time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC))
			watch := newAlarmWatch()
			m, c := startGateway(t, demoConfig(t, freePort(t), brokerPort, embedded), clock, watch)

			nurse1 := c.phone("nurse-1", c.login("nurse-1", "demo"))
			nurse2 := c.phone("nurse-2", c.login("nurse-2", "demo"))

			press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)

			offer := nurse1.expect("offer")
			a := offer.Alarm
			if a.Kind != "emergency" || a.Priority != 1 || a.State != "offered" || a.Tier != 1 || a.Transmitter.ID != "room-101-sos" || a.Transmitter.Room != "101" {
				t.Fatalf("offer to nurse-1 = %+v", *a)
			}
			watch.until(t, "nurse-1's offer delivered", offerIs(a.ID, "nurse-1", vakt.OfferDelivered))

			// Nobody accepts within tier 1's wait: the zone tier offers it to nurse-2
			// too, and nurse-1's offer stays open.
			settle(t, m)
			clock.Advance(31 * time.Second)
			if got := nurse2.expect("offer"); got.Alarm.ID != a.ID || got.Alarm.Tier != 2 {
				t.Fatalf("tier 2 offer to nurse-2 = %+v", *got.Alarm)
			}

			code, body := c.do("POST", "/api/v1/alarms/"+a.ID+"/accept", c.login("nurse-2", "demo"), nil)
			if code != http.StatusOK {
				t.Fatalf("accept: %d %s", code, body)
			}
			if taken := nurse1.expect("taken"); taken.AlarmID != a.ID || taken.By != "nurse-2" {
				t.Fatalf("nurse-1 got %+v, want taken by nurse-2", taken)
			}
			tok1 := c.login("nurse-1", "demo")
			if code, body := c.do("POST", "/api/v1/alarms/"+a.ID+"/accept", tok1, nil); code != http.StatusConflict {
				t.Fatalf("second accept by nurse-1: %d %s, want 409", code, body)
			}
			tok2 := c.login("nurse-2", "demo")
			for _, step := range []struct{ verb, state string }{{"presence", "present"}, {"complete", "completed"}} {
				code, body := c.do("POST", "/api/v1/alarms/"+a.ID+"/"+step.verb, tok2, nil)
				if code != http.StatusOK || !bytes.Contains(body, []byte(`"state":"`+step.state+`"`)) {
					t.Fatalf("%s: %d %s", step.verb, code, body)
				}
			}
			if code, body := c.do("GET", "/api/v1/alarms", tok2, nil); code != http.StatusOK || string(body) != "[]\n" {
				t.Fatalf("open alarms after complete: %d %s", code, body)
			}
		})
	}
}

// TestRepeatPressCountsOnOpenAlarm: pressing again while the alarm is open never
// opens a second alarm.
func TestRepeatPressCountsOnOpenAlarm(t *testing.T) {
	brokerPort := freePort(t)
	clock := fakeclock.New(time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC))
	m, c := startGateway(t, demoConfig(t, freePort(t), brokerPort, true), clock)
	nurse1 := c.phone("nurse-1", c.login("nurse-1", "demo"))
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	first := nurse1.expect("offer")
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	// mosquitto_pub returned on the PUBACK, which the embedded broker sends after the
	// commit: the repeat is counted now, no waiting.
	list, err := m.Engine.Alarms(context.Background(), "nurse-1")
	if err != nil || len(list) != 1 || list[0].Count != 2 || string(list[0].ID) != first.Alarm.ID {
		t.Fatalf("after the acknowledged repeat: %+v, %v; want one alarm %s counted twice", list, err, first.Alarm.ID)
	}
}

// TestOfflineNearestNurseIsPassedOver (R8): nurse-1 is nearest to room 101 but her
// phone is not connected, so an offer to her would wait offer_confirm for nothing.
// The emergency goes at once to nurse-2, whose phone is connected; when nurse-1's
// phone comes back she is nearest again for the next alarm.
func TestOfflineNearestNurseIsPassedOver(t *testing.T) {
	brokerPort := freePort(t)
	clock := fakeclock.New(time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC))
	_, c := startGateway(t, demoConfig(t, freePort(t), brokerPort, true), clock)
	tok1 := c.login("nurse-1", "demo")
	nurse2 := c.phone("nurse-2", c.login("nurse-2", "demo"))

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	offer := nurse2.expect("offer")
	if offer.Alarm.Tier != 1 {
		t.Fatalf("nurse-2 got the offer in tier %d, want tier 1 (nurse-1 is offline)", offer.Alarm.Tier)
	}
	if code, body := c.do("POST", "/api/v1/alarms/"+offer.Alarm.ID+"/accept", c.login("nurse-2", "demo"), nil); code != 200 {
		t.Fatalf("accept: %d %s", code, body)
	}
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"reset"}`)

	nurse1 := c.phone("nurse-1", tok1)
	press(t, brokerPort, "zigbee2mqtt/room102/sos", `{"action":"emergency"}`)
	if o := nurse1.expect("offer"); o.Alarm.Tier != 1 || o.Alarm.ID == offer.Alarm.ID {
		t.Fatalf("nurse-1 online again: offer %+v, want a new alarm's tier 1", *o.Alarm)
	}
}
