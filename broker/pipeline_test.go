package broker_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vakt/vakt/broker"
	"github.com/vakt/vakt/internal/mqttwire"
)

// gate is a Handover whose commits happen only when the test says so.
type gate struct {
	mu       sync.Mutex
	handed   []handed
	arrived  chan handed
	answered atomic.Int64
}

type handed struct {
	topic, payload string
	done           func(error)
}

func newGate() *gate { return &gate{arrived: make(chan handed, 1<<16)} }

func (g *gate) Handover(topic string, payload []byte, done func(error)) {
	h := handed{topic: topic, payload: string(payload), done: func(err error) { g.answered.Add(1); done(err) }}
	g.mu.Lock()
	g.handed = append(g.handed, h)
	g.mu.Unlock()
	g.arrived <- h
}

func (g *gate) next(t *testing.T) handed {
	t.Helper()
	select {
	case h := <-g.arrived:
		return h
	case <-time.After(wait):
		t.Fatal("no hand-over within", wait)
		return handed{}
	}
}

func recv(t *testing.T, c *client) paho.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("subscriber got nothing within", wait)
		return nil
	}
}

// raw is a bare MQTT 3.1.1 client, so the test sees the broker's packets in the
// order it writes them (paho hides that).
type raw struct {
	net.Conn
	r *bufio.Reader
}

func rawConnect(t *testing.T, b *broker.Broker, user, pass, id string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(4 * wait)) // a hang guard, not a timing assertion
	r := &raw{Conn: c, r: bufio.NewReader(c)}
	var p []byte
	p = append(p, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60)
	for _, s := range []string{id, user, pass} {
		p = append(p, byte(len(s)>>8), byte(len(s)))
		p = append(p, s...)
	}
	r.send(t, 0x10, p)
	if typ, body := r.read(t); typ != 0x20 || len(body) != 2 || body[1] != 0 {
		t.Fatalf("connack %x %x", typ, body)
	}
	return r
}

func (r *raw) send(t *testing.T, first byte, body []byte) {
	t.Helper()
	if _, err := r.Write(mqttwire.Packet(first, body)); err != nil {
		t.Fatal(err)
	}
}

func (r *raw) publish(t *testing.T, qos byte, retain bool, id uint16, topic, payload string) {
	t.Helper()
	if _, err := r.Write(publishFrame(qos, retain, id, topic, payload)); err != nil {
		t.Fatal(err)
	}
}

func publishFrame(qos byte, retain bool, id uint16, topic, payload string) []byte {
	first := 0x30 | qos<<1
	if retain {
		first |= 1
	}
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	return mqttwire.Packet(first, append(body, payload...))
}

func (r *raw) read(t *testing.T) (byte, []byte) {
	t.Helper()
	typ, err := r.r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	n, mul := 0, 1
	for {
		b, err := r.r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		t.Fatal(err)
	}
	return typ, body
}

// ping sends PINGREQ and returns the packets the broker wrote before its PINGRESP.
// The broker answers PINGREQ in the read loop after every packet sent before it was
// handled, so whatever it would have sent for those has been written by then.
func (r *raw) ping(t *testing.T) [][2]any {
	t.Helper()
	r.send(t, 0xC0, nil)
	var before [][2]any
	for {
		typ, body := r.read(t)
		if typ == 0xD0 {
			return before
		}
		before = append(before, [2]any{typ, body})
	}
}

func (r *raw) puback(t *testing.T) uint16 {
	t.Helper()
	typ, body := r.read(t)
	if typ != 0x40 || len(body) != 2 {
		t.Fatalf("want PUBACK, got %x %x", typ, body)
	}
	return uint16(body[0])<<8 | uint16(body[1])
}

// TestOneConnectionPipelined: a Zigbee2MQTT bridge carries every device on ONE
// connection. The broker hands all its publishes over without waiting for each
// commit (so one group commit can take them), answers none before its commit, and
// once committed — in whatever order the commits report — PUBACKs them and passes
// them to subscribers in the order they were published.
func TestOneConnectionPipelined(t *testing.T) {
	g := newGate()
	b := start(t, broker.Options{Clients: clients(), Handover: g.Handover})
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	gw.subscribe(t, "#")
	z2m := rawConnect(t, b, "z2m", "z2m-secret", "z2m-bridge")

	const n = 200
	for i := range n {
		z2m.publish(t, 1, false, uint16(i+1), fmt.Sprintf("zigbee2mqtt/room%d/sos", i), fmt.Sprintf(`{"seq":%d}`, i))
	}
	if early := z2m.ping(t); len(early) != 0 {
		t.Fatalf("the broker answered before any commit: %v", early)
	}
	var hs []handed
	for i := range n {
		h := g.next(t)
		if want := fmt.Sprintf(`{"seq":%d}`, i); h.payload != want {
			t.Fatalf("hand-over %d: %s, want %s (the publisher's order)", i, h.payload, want)
		}
		hs = append(hs, h)
	}
	select {
	case m := <-gw.msgs:
		t.Fatalf("a subscriber got %s before its commit", m.Payload())
	default:
	}
	for i := n - 1; i >= 0; i-- { // the commits report last first
		hs[i].done(nil)
	}
	for i := range n {
		if id := z2m.puback(t); id != uint16(i+1) {
			t.Fatalf("PUBACK %d is for packet %d (PUBACKs must follow the publishes' order)", i+1, id)
		}
	}
	for i := range n {
		select {
		case m := <-gw.msgs:
			if want := fmt.Sprintf(`{"seq":%d}`, i); string(m.Payload()) != want {
				t.Fatalf("subscriber got %s, want %s", m.Payload(), want)
			}
		case <-time.After(wait):
			t.Fatalf("subscriber got %d of %d", i, n)
		}
	}

	// The packet ids are free again: reusing them is a new publish.
	z2m.publish(t, 1, false, 1, "zigbee2mqtt/room1/sos", `{"again":1}`)
	g.next(t).done(nil)
	if id := z2m.puback(t); id != 1 {
		t.Fatalf("PUBACK for %d", id)
	}
}

// TestCommitFailureNoPuback: a publish whose commit fails gets no PUBACK and reaches
// no subscriber (the publisher sends it again after it reconnects); the publishes
// around it are answered as usual.
func TestCommitFailureNoPuback(t *testing.T) {
	g := newGate()
	b := start(t, broker.Options{Clients: clients(), Handover: g.Handover})
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	gw.subscribe(t, "#")
	btn := rawConnect(t, b, btnUser, btnPass, "btn-1")
	for i := range 3 {
		btn.publish(t, 1, false, uint16(i+1), btnTopic, fmt.Sprintf(`{"seq":%d}`, i))
	}
	h0, h1, h2 := g.next(t), g.next(t), g.next(t)
	h1.done(errors.New("disk full"))
	h2.done(nil)
	if early := btn.ping(t); len(early) != 0 {
		t.Fatalf("answered ahead of the first publish: %v", early)
	}
	h0.done(nil)
	if a, c := btn.puback(t), btn.puback(t); a != 1 || c != 3 {
		t.Fatalf("PUBACKs %d, %d; want 1, 3 (none for the failed commit)", a, c)
	}
	if early := btn.ping(t); len(early) != 0 {
		t.Fatalf("an answer for the failed commit: %v", early)
	}
	for _, want := range []string{`{"seq":0}`, `{"seq":2}`} {
		if m := recv(t, gw); string(m.Payload()) != want {
			t.Fatalf("subscriber got %s, want %s", m.Payload(), want)
		}
	}
	select {
	case m := <-gw.msgs:
		t.Fatalf("subscriber got the uncommitted %s", m.Payload())
	default:
	}
}

// TestRetainAndFanOutAfterCommit: what mochi no longer does itself on the hook's
// path still happens after the commit: Zigbee2MQTT's retained availability reaches a
// subscriber that comes later, a /set command reaches the Zigbee2MQTT subscriber, and
// a QoS 0 publish is passed on (without PUBACK) only once committed.
func TestRetainAndFanOutAfterCommit(t *testing.T) {
	g := newGate()
	cs := append(clients(), broker.Client{Username: "app", Password: "app-secret", Publish: []string{"zigbee2mqtt/+/set"}})
	b := start(t, broker.Options{Clients: cs, Handover: g.Handover})

	z2m := mustConnect(t, b, "z2m", "z2m-secret", "z2m-bridge", true)
	z2m.subscribe(t, "zigbee2mqtt/+/set")
	if tok := z2m.Publish("zigbee2mqtt/bridge/state", 1, true, `{"state":"online"}`); true {
		g.next(t).done(nil)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("retained publish not acknowledged: %v", tok.Error())
		}
	}
	later := mustConnect(t, b, gwUser, gwPass, gwID, true)
	later.subscribe(t, "zigbee2mqtt/bridge/state")
	select {
	case m := <-later.msgs:
		if !m.Retained() || string(m.Payload()) != `{"state":"online"}` {
			t.Fatalf("later subscriber got %s retained=%v", m.Payload(), m.Retained())
		}
	case <-time.After(wait):
		t.Fatal("the retained availability did not reach a later subscriber")
	}

	app := rawConnect(t, b, "app", "app-secret", "app-1")
	app.publish(t, 0, false, 0, "zigbee2mqtt/lamp1/set", `{"state":"ON"}`)
	if early := app.ping(t); len(early) != 0 {
		t.Fatalf("QoS 0 answered: %v", early)
	}
	h := g.next(t)
	select {
	case m := <-z2m.msgs:
		t.Fatalf("Zigbee2MQTT got %s before its commit", m.Payload())
	default:
	}
	h.done(nil)
	select {
	case m := <-z2m.msgs:
		if m.Topic() != "zigbee2mqtt/lamp1/set" || string(m.Payload()) != `{"state":"ON"}` {
			t.Fatalf("Zigbee2MQTT got %s %s", m.Topic(), m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("the /set command did not reach Zigbee2MQTT")
	}
}

// TestQoS2WaitsForCommit: QoS 2 keeps mochi's own path, its PUBREC after the commit.
func TestQoS2WaitsForCommit(t *testing.T) {
	g := newGate()
	b := start(t, broker.Options{Clients: clients(), Handover: g.Handover})
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	gw.subscribe(t, "#")
	btn := mustConnect(t, b, btnUser, btnPass, "btn-1", true)
	tok := btn.Publish(btnTopic, 2, false, `{"action":"emergency"}`)
	h := g.next(t)
	select {
	case <-tok.Done():
		t.Fatal("QoS 2 completed before the commit")
	default:
	}
	h.done(nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("QoS 2 not completed after the commit: %v", tok.Error())
	}
	if m := recv(t, gw); string(m.Payload()) != `{"action":"emergency"}` {
		t.Fatalf("subscriber got %s", m.Payload())
	}
}

// TestPipelineBoundedAndPublisherGone: one connection has at most MaxPending
// publishes handed over and unanswered (the broker stops reading it at the bound, so a
// flood cannot grow memory), and answering publishes of a publisher that has left
// is harmless: they still reach subscribers, since they are committed.
func TestPipelineBoundedAndPublisherGone(t *testing.T) {
	g := newGate()
	var over atomic.Int64
	handover := func(topic string, payload []byte, done func(error)) {
		g.mu.Lock()
		inFlight := int64(len(g.handed)) - g.answered.Load()
		g.mu.Unlock()
		if inFlight >= broker.MaxPending {
			over.Add(1)
		}
		g.Handover(topic, payload, done)
	}
	b := start(t, broker.Options{Clients: clients(), Handover: handover})
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	gw.subscribe(t, "#")
	btn := rawConnect(t, b, btnUser, btnPass, "btn-1")
	const extra = 10
	go func() {
		for i := range broker.MaxPending + extra { // errors show as missing hand-overs
			_, _ = btn.Write(publishFrame(1, false, uint16(i+1), btnTopic, fmt.Sprintf(`{"seq":%d}`, i)))
		}
	}()
	var hs []handed
	for range broker.MaxPending {
		hs = append(hs, g.next(t))
	}
	for i := range extra { // each answer lets exactly one more in
		hs[i].done(nil)
		hs = append(hs, g.next(t))
	}
	if n := over.Load(); n != 0 {
		t.Fatalf("%d hand-overs beyond the bound of %d", n, broker.MaxPending)
	}
	btn.Close()
	for _, h := range hs[extra:] {
		h.done(nil)
	}
	for i := range broker.MaxPending + extra {
		select {
		case m := <-gw.msgs:
			if want := fmt.Sprintf(`{"seq":%d}`, i); string(m.Payload()) != want {
				t.Fatalf("subscriber got %s, want %s", m.Payload(), want)
			}
		case <-time.After(wait):
			t.Fatalf("subscriber got %d of %d", i, broker.MaxPending+extra)
		}
	}
	// The broker still serves others.
	other := mustConnect(t, b, btnUser, btnPass, "btn-2", true)
	tok := other.Publish(btnTopic, 1, false, `{}`)
	g.next(t).done(nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("broker stuck after a publisher left: %v", tok.Error())
	}
}

// TestManyConnectionsPipelined: publishers on several connections at once, commits
// reported from other goroutines: every message reaches the subscriber once, each
// publisher's in its order, and every publisher gets all its PUBACKs.
func TestManyConnectionsPipelined(t *testing.T) {
	handover := func(_ string, _ []byte, done func(error)) { go done(nil) }
	b := start(t, broker.Options{Clients: clients(), AllowAnonymous: true, Handover: handover})
	gw := mustConnect(t, b, gwUser, gwPass, gwID, true)
	gw.subscribe(t, "#")
	const conns, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		pub := mustConnect(t, b, "", "", fmt.Sprintf("pub-%d", c), true)
		wg.Go(func() {
			var toks []paho.Token
			for i := range each {
				toks = append(toks, pub.Publish(fmt.Sprintf("site/pub%d", c), 1, false, fmt.Sprintf("%d", i)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(wait) || tok.Error() != nil {
					errs <- fmt.Errorf("pub-%d: no PUBACK: %v", c, tok.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := map[string]int{}
	for range conns * each {
		m := recv(t, gw)
		if want := fmt.Sprint(next[m.Topic()]); string(m.Payload()) != want {
			t.Fatalf("%s: got %s, want %s (a publisher's order)", m.Topic(), m.Payload(), want)
		}
		next[m.Topic()]++
	}
}
