package main

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vakt/vakt/internal/fakeclock"
)

// TestCheckInLingersBehindEmbeddedBroker (P6): with the embedded broker a check-in
// waits for company (storage.checkin_linger, 10 s by default) like behind Mosquitto,
// and a press on the same bridge connection right behind it is not held back: the
// broker pipelines a connection's publishes (issue 13), the press ends the linger,
// and both are acknowledged after their commit. The clock is the test's: the linger
// would never end by itself.
func TestCheckInLingersBehindEmbeddedBroker(t *testing.T) {
	brokerPort := freePort(t)
	clock := fakeclock.New(time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC))
	m, c := startGateway(t, demoConfig(t, freePort(t), brokerPort, true), clock)
	nurse := c.phone("nurse-1", c.login("nurse-1", "demo"))

	o := paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).
		SetClientID("test-z2m-bridge").SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(waitLimit).SetWriteTimeout(waitLimit)
	bridge := paho.NewClient(o)
	if tok := bridge.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect the bridge: %v", tok.Error())
	}
	t.Cleanup(func() { bridge.Disconnect(0) })

	settle(t, m)
	timers := clock.Pending()
	checkIn := bridge.Publish("zigbee2mqtt/room101/sos", 1, false, `{"battery":97,"linkquality":120}`)
	deadline := time.Now().Add(waitLimit)
	for clock.Pending() == timers { // the engine arms its linger timer
		if time.Now().After(deadline) {
			t.Fatal("the check-in did not linger with the embedded broker")
		}
		runtime.Gosched()
	}
	select {
	case <-checkIn.Done():
		t.Fatal("the check-in was acknowledged while it lingers uncommitted")
	default:
	}

	press := bridge.Publish("zigbee2mqtt/room101/sos", 1, false, `{"action":"emergency","battery":97}`)
	if !press.WaitTimeout(waitLimit) || press.Error() != nil {
		t.Fatalf("the press behind a lingering check-in was not acknowledged: %v", press.Error())
	}
	if offer := nurse.expect("offer"); offer.Alarm == nil || offer.Alarm.Transmitter.ID != "room-101-sos" {
		t.Fatalf("offer = %+v", offer)
	}
	if !checkIn.WaitTimeout(waitLimit) || checkIn.Error() != nil {
		t.Fatalf("the check-in was not committed with the press: %v", checkIn.Error())
	}
}
