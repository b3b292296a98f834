package main

import (
	"strings"
	"testing"
)

// TestSecurityBrokerACL (S5), with real MQTT clients against the gateway process
// (site.demo: false): nobody logs in without credentials, a staff member's phone
// login is no MQTT login, a button may publish only to its own topic (a press on
// another device's topic is refused and not committed, and costs the button its
// connection), and neither a button nor Zigbee2MQTT may subscribe to # or $SYS.
func TestSecurityBrokerACL(t *testing.T) {
	s := writeSecSite(t, secOpts{})
	startChild(t, s.path, s.apiPort, s.env...)

	for _, r := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"wrong password", "button-102", secZ2MPass},
		{"a stranger", "mallory", "Mal-0ry-pass-x"},
		{"a phone's staff login", "lead-1", secLeadSecret},
	} {
		if _, err := dialBroker(t, s.brokerPort, nil, r.user, r.pass, "x-"+strings.ReplaceAll(r.name, " ", "-")); err == nil {
			t.Errorf("%s logged in to the embedded broker", r.name)
		}
	}

	btn, err := dialBroker(t, s.brokerPort, nil, "button-102", secButtonPass, "button-102")
	if err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{"#", "$SYS/#", "zigbee2mqtt/#", "zigbee2mqtt/room101/sos"} {
		tok := btn.Subscribe(filter, 1, nil)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		if code := tok.(interface{ Result() map[string]byte }).Result()[filter]; code != 0x80 {
			t.Errorf("button subscribed to %s: suback %#x, want 0x80", filter, code)
		}
	}
	z2m, err := dialBroker(t, s.brokerPort, nil, "zigbee2mqtt", secZ2MPass, "z2m-bridge")
	if err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{"#", "$SYS/#", "$SYS/broker/clients/connected"} {
		tok := z2m.Subscribe(filter, 1, nil)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		if code := tok.(interface{ Result() map[string]byte }).Result()[filter]; code != 0x80 {
			t.Errorf("zigbee2mqtt subscribed to %s: suback %#x, want 0x80", filter, code)
		}
	}

	// The button presses on room 101's topic: refused (MQTT 3.1.1 has no negative
	// PUBACK, so the broker drops the connection), and no alarm.
	_ = btn.pub("zigbee2mqtt/room101/sos", `{"action":"emergency"}`)
	select {
	case <-btn.lost:
	case <-timeoutC():
		t.Fatal("the button kept its connection after publishing to another device's topic")
	}
	// Its own topic works (a new connection); once its PUBACK is here the refused
	// press, sent earlier, would have been committed before it.
	btn2, err := dialBroker(t, s.brokerPort, nil, "button-102", secButtonPass, "button-102")
	if err != nil {
		t.Fatal(err)
	}
	if err := btn2.pub("zigbee2mqtt/room102/button", `{"action":"single"}`); err != nil {
		t.Fatal(err)
	}
	list := secAlarms(t, s)
	if !containsAlarm(list, "room-102-button") {
		t.Errorf("the button's own press is not an open alarm: %s", list)
	}
	if strings.Contains(list, `"id":"room-101-sos"`) {
		t.Errorf("a press published by button-102 on room 101's topic was committed: %s", list)
	}
	m := scrapeMetrics(t, s)
	for _, want := range []string{`vakt_broker_refused_total{what="login"}`, `vakt_broker_refused_total{what="publish"}`, `vakt_broker_refused_total{what="subscribe"}`} {
		if metricValue(m, want) < 1 {
			t.Errorf("%s not counted:\n%s", want, grepLines(m, "vakt_broker"))
		}
	}
}
