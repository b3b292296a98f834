package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/store"
)

// BenchmarkTriggerToOffer measures P1: an MQTT publish of a press → the offer on the
// nearest nurse's WebSocket, through the embedded broker, the MQTT driver, one fsync'd
// commit, routing and the push. 200 staff on duty, 500 transmitters, as the target
// says. Each press is followed by a reset so the next press opens a new alarm.
// The single-commit fsync floor is measured first, in the same run, and the result
// is reported as a ratio to it. Run: see docs/benchmarks.md.
func BenchmarkTriggerToOffer(b *testing.B) {
	b.Run("embedded-broker", func(b *testing.B) { triggerToOffer(b, true) })
	b.Run("mosquitto", func(b *testing.B) { triggerToOffer(b, false) })
}

func triggerToOffer(b *testing.B, embedded bool) {
	floor := commitFloor(b)
	const staff, transmitters = 200, 500
	brokerPort, apiPort := freePort(b), freePort(b)
	if !embedded {
		mosquitto(b, brokerPort)
	}
	cfg := siteConfig(b, staff, transmitters, brokerPort, apiPort, embedded)
	_, c := startGateway(b, cfg, nil)
	base := c.base
	offers := make(chan string, 1024) // alarm ids as offers arrive, any phone
	var conns []*websocket.Conn
	for i := range staff {
		tok := c.login(fmt.Sprintf("s-%d", i), "demo")
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/v1/stream?token="+tok, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
		go func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var msg pushMsg
				if json.Unmarshal(data, &msg) == nil && msg.Type == "offer" {
					_ = ws.WriteJSON(map[string]string{"type": "delivered", "alarm_id": msg.id()})
					offers <- msg.Alarm.Transmitter.ID
				}
			}
		}()
	}
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).SetClientID("bench-z2m"))
	if tok := pub.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)

	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		tx := fmt.Sprintf("r%d", i%transmitters)
		i++
		start := time.Now()
		pub.Publish("zigbee2mqtt/"+tx+"/sos", 1, false, `{"action":"emergency"}`) // not waiting for PUBACK: the offer is the proof
		for got := <-offers; got != "tx-"+tx; got = <-offers {
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		// Reset the button so its next press is a new alarm, not a repeat.
		pub.Publish("zigbee2mqtt/"+tx+"/sos", 1, false, `{"action":"reset"}`).Wait()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-commit-ms")
	b.ReportMetric(float64(p50)/float64(floor), "p50/floor")
	b.ReportMetric(0, "ns/op")
}

// commitFloor is the median time of one fsync'd single-event commit on this disk,
// measured with the real store in the same run (the floor P1 is compared to).
func commitFloor(b *testing.B) time.Duration {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "floor.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var ds []time.Duration
	for range 500 {
		start := time.Now()
		if err := db.Commit(ctx, &vakt.Batch{Events: []vakt.EventRecord{{Event: vakt.Event{Transmitter: "x", Kind: vakt.EventCheckIn, ReceivedAt: start}}}}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// siteConfig writes a demo-mode site with n staff spread over a building and m
// Zigbee SOS buttons, one nearest-nurse policy.
func siteConfig(b *testing.B, staff, transmitters, brokerPort, apiPort int, embedded bool) string {
	dir := b.TempDir()
	var sb strings.Builder
	fmt.Fprintf(&sb, `site: {id: bench, name: Bench, demo: true, lat: 59.9139, lon: 10.7522}
zones: [{id: east, name: East, floor: 1}]
roles: [nurse]
storage: {path: %s}
api: {listen: "127.0.0.1:%d"}
drivers:
  broker: {enabled: %t, listen: "127.0.0.1:%d"}
  mqtt: {enabled: true, %sbase_topic: zigbee2mqtt}
privacy: {nearest_routing: true, position_ttl: 15m}
policies:
  - name: all
    tiers: [{target: nearest, count: 1, wait: 30s}]
transmitters:
`, filepath.Join(dir, "vakt.db"), apiPort, embedded, brokerPort, mqttURL(embedded, brokerPort))
	for i := range transmitters {
		fmt.Fprintf(&sb, "  - {id: tx-r%d, kind: sos-pendant, driver: zigbee2mqtt, address: r%d/sos, room: \"%d\", zone: east, floor: 1, lat: %.6f, lon: %.6f, actions: {reset: cancel}}\n",
			i, i, i, 59.9139+float64(i%50)*0.00005, 10.7522+float64(i/50)*0.0001)
	}
	b.Logf("site: %d staff, %d transmitters", staff, transmitters)
	sb.WriteString("staff:\n")
	for i := range staff {
		fmt.Fprintf(&sb, "  - {id: s-%d, name: Staff %d, roles: [nurse], zone: east, secret: demo, on_duty: true, availability: available, position: {lat: %.6f, lon: %.6f, floor: 1}}\n",
			i, i, 59.9139+float64(i%20)*0.0001, 10.7522+float64(i/20)*0.0005)
	}
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkNurseCallToOffer measures issue 3's latency: the last byte of an ESPA
// call block written on the call system's side of a pseudo-terminal → the offer on
// the nearest phone's WebSocket (serial read, BCC check, fsync'd commit, routing,
// push). The pty carries bytes at memory speed; a real 9600-baud line adds ≈ 30–45 ms
// of wire time per block before the last byte arrives. Each call is then reset
// (call type 1), so the next one opens a new alarm.
func BenchmarkNurseCallToOffer(b *testing.B) {
	floor := commitFloor(b)
	cs := newCallSystem(b)
	apiPort, brokerPort := freePort(b), freePort(b)
	cfg := serialConfig(b, cs.path, apiPort, brokerPort)
	_, c := startGateway(b, cfg, nil)
	nurse := c.phone("nurse-4", c.login("nurse-4", "demo"))

	reset := espa.Encode(espa.CallBlock(espa.Call{CallAddress: "550", Message: "ROOM 201", CallType: espa.CallReset}))
	call := callBlock("ROOM 201")
	var lat []time.Duration
	for b.Loop() {
		cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
		cs.expect(espa.TokenACK)
		start := time.Now()
		cs.send(call...)
		nurse.expect("offer")
		lat = append(lat, time.Since(start))
		b.StopTimer()
		cs.expect(espa.TokenACK)
		cs.send(reset...)
		cs.expect(espa.TokenACK)
		cs.send(espa.EOT)
		nurse.expect("withdrawn")
		// Answer the status blocks (paged, terminated) the gateway now has queued.
		drainStatus(cs)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-commit-ms")
	b.ReportMetric(float64(lat[len(lat)/2])/float64(floor), "p50/floor")
	b.ReportMetric(0, "ns/op")
}

// drainStatus polls until the gateway has no status block left to send.
func drainStatus(cs *callSystem) {
	for {
		cs.send(espa.EOT, '2', espa.ENQ)
		tok := cs.next()
		if tok.Type == espa.TokenEOT {
			return
		}
		cs.send(espa.ACK) // accept the selection; it may send several blocks
		for cs.ExpectType(espa.TokenBlock, espa.TokenEOT).Type == espa.TokenBlock {
			cs.send(espa.ACK)
		}
	}
}

// mqttURL is the drivers.mqtt url key: none with the embedded broker, which the
// gateway reads in-process.
func mqttURL(embedded bool, brokerPort int) string {
	if embedded {
		return ""
	}
	return fmt.Sprintf("url: \"tcp://127.0.0.1:%d\", ", brokerPort)
}
