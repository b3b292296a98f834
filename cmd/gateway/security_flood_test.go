package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/mqttwire"
)

// junk is what a broken or hostile client sends: each kind the gateway must shed and
// count (S6). Every topic but the last is one the zigbee2mqtt login may publish to.
var junk = []struct{ topic, payload string }{
	{"zigbee2mqtt/room101/sos", strings.Repeat("x", 5000)}, // over max_payload (4096)
	{"zigbee2mqtt/room101/sos", `{"action":`},              // bad JSON
	{"zigbee2mqtt/room101/sos", `[[[[[[[[[[[[[[[[[[[[`},    // bad JSON, deep
	{"zigbee2mqtt/nobody/here", `{"action":"emergency"}`},  // no such transmitter
	{"elsewhere/junk", `{"action":"emergency"}`},           // not its topic: refused
}

// TestSecurityJunkFloodRealAlarm (S6): one MQTT connection floods the gateway with
// junk (oversized payloads, bad JSON, unknown and forbidden topics, as fast as it
// can write) while a button on its own connection presses. The press is committed
// and offered to the nurse on duty, the junk is counted in /metrics, and the
// flooding connection is shed (drivers.broker.rate_limit). Correctness only: the
// press's delay is logged, never asserted (see BenchmarkPressBehindJunkFlood).
func TestSecurityJunkFloodRealAlarm(t *testing.T) {
	const burst = 400
	s := writeSecSite(t, secOpts{rateLimit: 50, rateBurst: burst})
	startChild(t, s.path, s.apiPort, s.env...)
	c := secClient(t, s)
	tok := c.login("lead-1", secLeadSecret)
	if code, body := c.do("PUT", "/api/v1/me/duty", tok, map[string]bool{"on_duty": true}); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("duty: %d %s", code, body)
	}
	ph := c.phone("lead-1", tok)

	flood, err := dialRaw(s.brokerPort, "zigbee2mqtt", secZ2MPass, "z2m-flood")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	// Within the budget: every kind of junk, then one QoS 1 message whose PUBACK
	// says the driver has been through all of it (one connection keeps its order).
	for i := range 3 * len(junk) {
		j := junk[i%len(junk)]
		if err := flood.publish(j.topic, j.payload, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := flood.publish("zigbee2mqtt/nobody/sync", `{}`, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-flood.puback:
	case <-flood.lost:
		t.Fatal("shed within the budget")
	case <-timeoutC():
		t.Fatal("no PUBACK for the junk within the budget")
	}
	m := scrapeMetrics(t, s)
	for _, outcome := range []string{"oversize", "malformed", "unknown"} {
		if v := metricValue(m, `vakt_mqtt_messages_total{outcome="`+outcome+`"}`); v < 3 {
			t.Errorf("junk %s counted %v times, want at least 3:\n%s", outcome, v, grepLines(m, "vakt_mqtt_messages_total"))
		}
	}
	if v := metricValue(m, `vakt_broker_refused_total{what="publish"}`); v < 3 {
		t.Errorf("forbidden publishes counted %v times, want at least 3", v)
	}

	// Over the budget: the flood runs until the broker sheds it (closes the
	// connection), and the flooder logs in again and floods on, as a broken bridge
	// would, until the test ends.
	var wg sync.WaitGroup
	stop, shedOnce := make(chan struct{}), make(chan struct{})
	var sheds int
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl := flood
		for {
			for i := 0; ; i++ {
				j := junk[i%len(junk)]
				if cl.publish(j.topic, j.payload, 0) != nil {
					break // the broker closed the connection
				}
			}
			select {
			case <-cl.lost:
			case <-stop:
				return
			}
			if sheds++; sheds == 1 {
				close(shedOnce)
			}
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if cl, err = dialRaw(s.brokerPort, "zigbee2mqtt", secZ2MPass, fmt.Sprintf("z2m-flood-%d", sheds)); err != nil {
				return
			}
			defer cl.Close()
		}
	}()
	select {
	case <-shedOnce:
	case <-timeoutC():
		t.Fatal("the flooding connection was not shed")
	}
	btn, err := dialBroker(t, s.brokerPort, nil, "button-102", secButtonPass, "button-102")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := btn.pub("zigbee2mqtt/room102/button", `{"action":"single"}`); err != nil {
		t.Fatalf("the real press during the flood: %v", err)
	}
	acked := time.Since(start)
	offer := ph.expect("offer")
	offered := time.Since(start)
	if offer.Alarm == nil || offer.Alarm.Transmitter.ID != "room-102-button" {
		t.Fatalf("offer during the flood: %+v", offer)
	}
	close(stop)
	wg.Wait()
	t.Logf("press during the junk flood: PUBACK (committed) after %v, offered after %v; the flooder was shed %d times", acked, offered, sheds)

	m = scrapeMetrics(t, s)
	if v := metricValue(m, "vakt_broker_shed_total"); v < float64(sheds) || sheds < 1 {
		t.Errorf("vakt_broker_shed_total = %v, want at least the %d sheds the flooder saw", v, sheds)
	}
	if list := secAlarms(t, s); !containsAlarm(list, "room-102-button") || strings.Contains(list, `"id":"room-101-sos"`) {
		t.Errorf("open alarms after the flood: %s (want the press, and no alarm from the junk)", list)
	}
	// The shed client may log in again (its budget, kept across reconnects, refills
	// at rate_limit).
	if _, err := dialBroker(t, s.brokerPort, nil, "zigbee2mqtt", secZ2MPass, "z2m-flood"); err != nil {
		t.Errorf("zigbee2mqtt cannot log in again after being shed: %v", err)
	}
}

// rawMQTT is a bare MQTT 3.1.1 publisher: unlike paho it never waits, so it floods
// as fast as the socket takes it, and it sees the broker closing the connection at
// once (lost).
type rawMQTT struct {
	net.Conn
	id     uint16
	puback chan struct{}
	lost   chan struct{}
}

func dialRaw(port int, user, pass, id string) (*rawMQTT, error) {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * waitLimit)) // a hang guard, not a timing assertion
	var p []byte
	p = append(p, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60)
	for _, s := range []string{id, user, pass} {
		p = append(p, byte(len(s)>>8), byte(len(s)))
		p = append(p, s...)
	}
	if _, err := c.Write(mqttwire.Packet(0x10, p)); err != nil {
		c.Close()
		return nil, err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("connack %x: %v", ack, err)
	}
	r := &rawMQTT{Conn: c, puback: make(chan struct{}, 16), lost: make(chan struct{})}
	go func() {
		defer close(r.lost)
		br := bufio.NewReader(c)
		for {
			h, err := br.ReadByte()
			if err != nil {
				return
			}
			n, shift := 0, 0
			for {
				b, err := br.ReadByte()
				if err != nil {
					return
				}
				n |= int(b&0x7f) << shift
				shift += 7
				if b&0x80 == 0 {
					break
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
			if h>>4 == 4 {
				select {
				case r.puback <- struct{}{}:
				default:
				}
			}
		}
	}()
	return r, nil
}

func (r *rawMQTT) publish(topic, payload string, qos byte) error {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	if qos > 0 {
		r.id++
		body = append(body, byte(r.id>>8), byte(r.id))
	}
	_, err := r.Write(mqttwire.Packet(0x30|qos<<1, append(body, payload...)))
	return err
}
