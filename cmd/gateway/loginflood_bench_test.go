package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"
)

// BenchmarkPressDuringLoginFlood measures issue 6's high finding: a press → its
// PUBACK and → the offer on the nearest phone, while bursts of 300 parallel wrong
// logins arrive, against the same presses without the flood (the floor, measured
// first in the same run on the same gateway). The flood is the worst case for the
// hashing: every login comes from a fresh loopback address (127.1.x.y), half
// against a real staff id and half against unknown ids, so no per-address budget
// stops it and the hashing slot is kept busy all the time. Secrets are hashed at
// bcrypt's default cost, as in production. Run: see
// docs/benchmarks.md.
func BenchmarkPressDuringLoginFlood(b *testing.B) {
	const staff, transmitters, floorPresses, burst = 10, 50, 200, 300
	brokerPort, apiPort := freePort(b), freePort(b)
	cfg := siteConfig(b, staff, transmitters, brokerPort, apiPort, true)
	// Production-cost hashes: demo mode would hash the secrets at bcrypt's minimum
	// cost, which hides the cost of a login flood.
	hash, err := bcrypt.GenerateFromPassword([]byte("demo"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	site, err := os.ReadFile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	site = bytes.ReplaceAll(site, []byte("secret: demo"), []byte("secret_hash: '"+string(hash)+"'"))
	if err := os.WriteFile(cfg, site, 0o600); err != nil {
		b.Fatal(err)
	}
	_, c := startGateway(b, cfg, nil)
	offers := make(chan offerAt, 1024)
	for i := range staff {
		tok := c.login(fmt.Sprintf("s-%d", i), "demo")
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+"/api/v1/stream?token="+tok, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		go func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				at := time.Now()
				var msg pushMsg
				if json.Unmarshal(data, &msg) == nil && msg.Type == "offer" {
					_ = ws.WriteJSON(map[string]string{"type": "delivered", "alarm_id": msg.id()})
					offers <- offerAt{tx: msg.Alarm.Transmitter.ID, at: at}
				}
			}
		}()
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).SetClientID("bench-z2m"))
	if tok := pub.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)

	i := 0
	pressOnce := func() (puback, offer time.Duration) {
		tx := fmt.Sprintf("r%d", i%transmitters)
		i++
		start := time.Now()
		tok := pub.Publish("zigbee2mqtt/"+tx+"/sos", 1, false, `{"action":"emergency"}`)
		tok.Wait()
		puback = time.Since(start)
		for {
			o := <-offers
			if o.tx == "tx-"+tx {
				offer = o.at.Sub(start)
				break
			}
		}
		pub.Publish("zigbee2mqtt/"+tx+"/sos", 1, false, `{"action":"reset"}`).Wait()
		return puback, offer
	}

	var floorAck, floorOffer []time.Duration
	for range floorPresses {
		a, o := pressOnce()
		floorAck, floorOffer = append(floorAck, a), append(floorOffer, o)
	}

	f := newFlood(c.base, burst)
	ctx, cancel := context.WithCancel(context.Background())
	floodDone := make(chan struct{})
	go func() { f.run(ctx); close(floodDone) }()
	<-f.firstBurst // the flood is on before the first measured press
	var ack, off []time.Duration
	started := time.Now()
	for b.Loop() {
		a, o := pressOnce()
		ack, off = append(ack, a), append(off, o)
	}
	elapsed := time.Since(started)
	cancel()
	<-floodDone

	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	report("floor-puback", floorAck)
	report("floor-offer", floorOffer)
	report("flood-puback", ack)
	report("flood-offer", off)
	b.ReportMetric(float64(f.checked.Load())/elapsed.Seconds(), "logins-checked/s")
	b.ReportMetric(float64(f.refused.Load())/elapsed.Seconds(), "logins-429/s")
	b.ReportMetric(0, "ns/op")
}

type offerAt struct {
	tx string
	at time.Time
}

// flood sends bursts of parallel wrong logins, each from its own loopback address.
type flood struct {
	base       string
	burst      int
	client     *http.Client
	next       atomic.Uint32
	checked    atomic.Int64 // answered 401: the secret was hashed
	refused    atomic.Int64 // answered 429
	firstBurst chan struct{}
}

func newFlood(base string, burst int) *flood {
	f := &flood{base: base, burst: burst, firstBurst: make(chan struct{})}
	f.client = &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n := f.next.Add(1)
			local := &net.TCPAddr{IP: net.IPv4(127, 1, byte(n>>8), byte(n))}
			d := net.Dialer{LocalAddr: local}
			return d.DialContext(ctx, network, addr)
		},
	}}
	return f
}

func (f *flood) run(ctx context.Context) {
	first := true
	for n := 0; ctx.Err() == nil; n++ {
		var wg sync.WaitGroup
		for k := range f.burst {
			id := "s-0"
			if k%2 == 1 {
				id = fmt.Sprintf("nobody-%d-%d", n, k)
			}
			wg.Go(func() { f.login(ctx, id) })
		}
		wg.Wait()
		if first {
			close(f.firstBurst)
			first = false
		}
	}
}

func (f *flood) login(ctx context.Context, id string) {
	body, _ := json.Marshal(map[string]string{"staff_id": id, "secret": "wrong"})
	req, _ := http.NewRequestWithContext(ctx, "POST", f.base+"/api/v1/sessions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		f.checked.Add(1)
	case http.StatusTooManyRequests:
		f.refused.Add(1)
	}
}
