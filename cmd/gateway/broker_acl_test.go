package main

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestZigbee2MQTTSubscribesToItsBaseTopic: drivers.broker.clients[].subscribe reaches
// the embedded broker. Zigbee2MQTT, logged in with its own credentials, subscribes to
// zigbee2mqtt/# (bridge requests, /set commands from its frontend) and receives them;
// it cannot subscribe to # or $SYS/#, and a press still reaches the gateway.
func TestZigbee2MQTTSubscribesToItsBaseTopic(t *testing.T) {
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := prodConfig(t, apiPort, fmt.Sprintf("0.0.0.0:%d", brokerPort))
	startChild(t, cfg, apiPort)

	msgs := make(chan paho.Message, 16)
	o := paho.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).
		SetClientID("zigbee2mqtt-bridge").
		SetUsername(siteZ2MUser).
		SetPassword(siteZ2MPass).
		SetAutoReconnect(false).
		SetConnectTimeout(waitLimit).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
	z2m := paho.NewClient(o)
	if tok := z2m.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("zigbee2mqtt connect: %v", tok.Error())
	}
	defer z2m.Disconnect(0)
	suback := func(filter string) byte {
		t.Helper()
		tok := z2m.Subscribe(filter, 1, nil)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return tok.(*paho.SubscribeToken).Result()[filter]
	}
	if code := suback("zigbee2mqtt/#"); code != 1 {
		t.Fatalf("zigbee2mqtt/#: suback %#x, want 1 (granted QoS 1)", code)
	}
	for _, filter := range []string{"#", "$SYS/#"} {
		if code := suback(filter); code != 0x80 {
			t.Errorf("%s: suback %#x, want 0x80 (refused)", filter, code)
		}
	}

	// The frontend (same credentials, its own connection) asks the bridge for
	// something and switches a device; the bridge receives both.
	front, err := connectBridge(t, brokerPort, "zigbee2mqtt-frontend")
	if err != nil {
		t.Fatal(err)
	}
	sent := []string{"zigbee2mqtt/bridge/request/permit_join", "zigbee2mqtt/room101/sos/set"}
	for _, topic := range sent {
		if err := front.publish(topic, `{"value":true}`); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sent {
		select {
		case m := <-msgs:
			if m.Topic() != want {
				t.Fatalf("zigbee2mqtt received %s, want %s", m.Topic(), want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("zigbee2mqtt did not receive %s", want)
		}
	}

	// A press from the bridge is still an alarm.
	if err := front.publish("zigbee2mqtt/room101/sos", `{"action":"emergency"}`); err != nil {
		t.Fatal(err)
	}
	// The PUBACK came after the commit (in-process hand-over): no waiting.
	if list := siteAlarms(t, apiPort); !containsAlarm(list, "room-101-sos") {
		t.Fatalf("the bridge's press was acknowledged but is not an open alarm: %s", list)
	}
}
