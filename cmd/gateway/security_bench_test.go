package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkPressBehindJunkFlood measures S6's promise: the delay of a real press
// (publish → the offer on the nurse's WebSocket, through the embedded broker, one
// fsync'd commit, routing and the push) while another connection floods junk and
// reconnects each time it is shed ("flood"), against the same measurement with no
// flood in the same run ("quiet", the floor). Each press is reset so the next one
// opens a new alarm. Run:
//
//	go test -run '^$' -bench PressBehindJunkFlood -benchtime 200x ./cmd/gateway
func BenchmarkPressBehindJunkFlood(b *testing.B) {
	var quiet time.Duration
	b.Run("quiet", func(b *testing.B) { quiet = pressBehindFlood(b, false, 0) })
	b.Run("flood", func(b *testing.B) { pressBehindFlood(b, true, quiet) })
}

func pressBehindFlood(b *testing.B, flood bool, floor time.Duration) time.Duration {
	dir := b.TempDir()
	brokerPort := freePort(b)
	cfg := fmt.Sprintf(`site: {id: flood-bench, name: Flood bench}
zones: [{id: east, name: East, floor: 1}]
roles: [nurse]
transmitters:
  - {id: room-1, kind: sos-pendant, driver: zigbee2mqtt, address: room1/sos, room: "1", zone: east, floor: 1, actions: {emergency: emergency, reset: cancel}}
staff:
  - {id: nurse-1, name: Nurse, roles: [nurse], zone: east, secret: %q}
policies:
  - name: all
    tiers: [{target: site, wait: 1m}]
drivers:
  broker:
    enabled: true
    listen: "127.0.0.1:%d"
    rate_limit: 50
    rate_burst: 400
    clients:
      - {username: zigbee2mqtt, password: %q, publish: ["zigbee2mqtt/#"]}
      - {username: button-1, password: %q, publish: ["zigbee2mqtt/room1/sos"]}
  mqtt: {enabled: true, base_topic: zigbee2mqtt}
api: {listen: "127.0.0.1:%d"}
storage: {path: %s}
`, secLeadSecret, brokerPort, secZ2MPass, secButtonPass, freePort(b), filepath.Join(dir, "vakt.db"))
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	_, c := startGateway(b, path, nil)
	tok := c.login("nurse-1", secLeadSecret)
	if code, body := c.do("PUT", "/api/v1/me/duty", tok, map[string]bool{"on_duty": true}); code/100 != 2 {
		b.Fatalf("duty: %d %s", code, body)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+"/api/v1/stream?token="+tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	offers := make(chan struct{}, 64)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m pushMsg
			if json.Unmarshal(data, &m) == nil && m.Type == "offer" {
				_ = ws.WriteJSON(map[string]string{"type": "delivered", "alarm_id": m.id()})
				offers <- struct{}{}
			}
		}
	}()

	var sheds, junkSent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	if flood {
		go func() {
			defer close(done)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				cl, err := dialRaw(brokerPort, "zigbee2mqtt", secZ2MPass, fmt.Sprintf("flood-%d", n))
				if err != nil {
					return
				}
				for i := 0; ; i++ {
					j := junk[i%len(junk)]
					if cl.publish(j.topic, j.payload, 0) != nil {
						break
					}
					junkSent.Add(1)
				}
				<-cl.lost
				cl.Close()
				sheds.Add(1)
			}
		}()
	} else {
		close(done)
	}

	btn, err := dialRaw(brokerPort, "button-1", secButtonPass, "button-1")
	if err != nil {
		b.Fatal(err)
	}
	defer btn.Close()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := btn.publish("zigbee2mqtt/room1/sos", `{"action":"emergency"}`, 1); err != nil {
			b.Fatal(err)
		}
		select {
		case <-offers:
		case <-time.After(waitLimit):
			b.Fatal("no offer")
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if err := btn.publish("zigbee2mqtt/room1/sos", `{"action":"reset"}`, 1); err != nil {
			b.Fatal(err)
		}
		for range 2 { // the two PUBACKs: the press's and the reset's (committed)
			select {
			case <-btn.puback:
			case <-time.After(waitLimit):
				b.Fatal("no PUBACK")
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	<-done
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	if flood {
		b.ReportMetric(float64(sheds.Load()), "sheds")
		b.ReportMetric(float64(junkSent.Load()), "junk-msgs")
		if floor > 0 {
			b.ReportMetric(float64(p50)/float64(floor), "p50/quiet-p50")
		}
	}
	b.ReportMetric(0, "ns/op")
	return p50
}
