package broker

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The publish pipeline. mochi runs OnPublish in the publisher's read loop and writes
// the PUBACK when it returns, so a hook that waits for the commit lets one connection
// carry at most one message per commit: a Zigbee2MQTT bridge, one connection for every
// device, would be held to the disk's commit rate. Instead the hook hands the publish
// over and returns packets.ErrRejectPacket at once, after which mochi does nothing more
// for that packet (no retain, no fan-out, no PUBACK, no inflight or receive-quota
// accounting: its QoS 1 path would undo them before returning anyway). When the
// hand-over reports the commit, the pipeline does in the publisher's order what mochi
// skipped: it re-injects the publish through the inline client (retain and fan-out, as
// mochi's own path would) and writes the PUBACK. A publish that was not committed gets
// neither; the publisher sends it again after it reconnects.
//
// What differs from mochi's own path, knowingly:
//   - The message reaches subscribers with the inline client as its origin, so a
//     publisher's own MQTT 5 no-local subscription receives it.
//   - mochi's receive maximum is not enforced; maxPending and maxPendingBytes bound a
//     connection instead, and the read loop waits when they are reached.
//   - QoS 2 keeps mochi's own path: its hook waits until the publish and everything
//     before it are done, so mochi's PUBREC still follows the commit (one per commit).
const (
	// maxPending bounds the publishes of one connection handed over and not yet
	// answered; at the bound the broker stops reading that connection until the
	// oldest is committed. A group commit takes what is pending, so this is far
	// above any batch.
	maxPending = 1024
	// maxPendingBytes bounds their payloads (one publish is always let in, so a
	// payload up to maxPacket still passes).
	maxPendingBytes = 8 << 20
)

// pipe is one connection's publishes, in the order they arrived.
type pipe struct {
	h  *authHook
	cl *mqtt.Client

	// guarded by h.mu (one lock for all pipes: the work under it is a few slice ops)
	items    []*pending
	bytes    int
	draining bool
	waiting  bool
	room     chan struct{} // signalled when an item leaves or the broker closes
}

type pending struct {
	pk   packets.Packet
	done bool
	err  error
	// sync, for QoS 2, receives the outcome instead of the pipeline answering.
	sync chan error
}

var errClosed = errors.New("broker closed")

func (h *authHook) start(s *mqtt.Server) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.server = s
	h.inline, _ = s.Clients.Get(mqtt.InlineClientId)
}

// close wakes every read loop waiting for room: the broker is going away.
func (h *authHook) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, p := range h.pipes {
		select {
		case p.room <- struct{}{}:
		default:
		}
	}
}

// OnDisconnect forgets the connection's pipe. Publishes still pending keep it alive
// until they are answered; the PUBACK write to a closed client fails harmlessly.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.pipes, cl)
	h.mu.Unlock()
	if h.limit != nil {
		h.limit.forget(cl)
	}
}

// OnPublish runs in the publisher's read loop after the ACL check. It hands the
// publish over and returns at once, telling mochi to do nothing more with it (see
// above); only QoS 2 waits for its commit.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // our own re-injection, or the gateway's: already committed
	}
	it := &pending{pk: pk}
	if pk.FixedHeader.Qos == 2 {
		it.sync = make(chan error, 1)
	}
	p, err := h.admit(cl, it)
	if err != nil {
		return pk, packets.ErrRejectPacket
	}
	h.publish(pk.TopicName, pk.Payload, func(err error) { p.finish(it, err) })
	if it.sync != nil {
		if err := <-it.sync; err != nil {
			return pk, packets.ErrRejectPacket
		}
		return pk, nil
	}
	return pk, packets.ErrRejectPacket
}

// admit appends it to cl's pipe, waiting while the pipe is full.
func (h *authHook) admit(cl *mqtt.Client, it *pending) (*pipe, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pipes[cl]
	if p == nil {
		p = &pipe{h: h, cl: cl, room: make(chan struct{}, 1)}
		h.pipes[cl] = p
	}
	n := len(it.pk.Payload)
	for len(p.items) > 0 && (len(p.items) >= maxPending || p.bytes+n > maxPendingBytes) {
		if h.closed {
			return nil, errClosed
		}
		p.waiting = true
		h.mu.Unlock()
		<-p.room
		h.mu.Lock()
	}
	if h.closed {
		return nil, errClosed
	}
	p.items = append(p.items, it)
	p.bytes += n
	return p, nil
}

// finish records it's outcome; answering happens in arrival order on a goroutine of
// the pipe's own, so a slow publisher delays nobody else and done never blocks.
func (p *pipe) finish(it *pending, err error) {
	h := p.h
	h.mu.Lock()
	if it.done {
		h.mu.Unlock()
		return // done is called once; guard against a second call
	}
	it.done, it.err = true, err
	start := !p.draining && len(p.items) > 0 && p.items[0].done
	if start {
		p.draining = true
	}
	h.mu.Unlock()
	if start {
		go p.drain()
	}
}

func (p *pipe) drain() {
	h := p.h
	for {
		h.mu.Lock()
		if len(p.items) == 0 || !p.items[0].done {
			p.draining = false
			h.mu.Unlock()
			return
		}
		it := p.items[0]
		p.items[0] = nil
		p.items = p.items[1:]
		p.bytes -= len(it.pk.Payload)
		if p.waiting {
			p.waiting = false
			select {
			case p.room <- struct{}{}:
			default:
			}
		}
		srv, inline := h.server, h.inline
		h.mu.Unlock()
		p.answer(srv, inline, it)
	}
}

// answer does for one publish what mochi skipped, once it is committed.
func (p *pipe) answer(srv *mqtt.Server, inline *mqtt.Client, it *pending) {
	pk := it.pk
	if it.err != nil {
		p.h.log.Warn("publish not acknowledged: not committed", "topic", pk.TopicName, "client", p.cl.ID, "err", it.err)
		if it.sync != nil {
			it.sync <- it.err
		}
		return
	}
	if it.sync != nil {
		it.sync <- nil // mochi's own path retains, fans out and sends PUBREC
		return
	}
	if srv != nil && inline != nil {
		out := pk.Copy(true)
		out.Payload = pk.Payload
		// The topic is resolved already; the alias is the publisher's, not ours.
		out.Properties.TopicAlias, out.Properties.TopicAliasFlag = 0, false
		if err := srv.InjectPacket(inline, out); err != nil {
			p.h.log.Warn("committed publish not passed to subscribers", "topic", pk.TopicName, "client", p.cl.ID, "err", err)
		}
	}
	if pk.FixedHeader.Qos == 0 {
		return
	}
	// As mochi's buildAck for a QoS 1 success: its properties are the publish's.
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Puback},
		PacketID:    pk.PacketID,
		ReasonCode:  packets.CodeSuccess.Code,
		Properties:  pk.Properties,
	}
	if srv != nil && srv.Options.Capabilities.Compatibilities.NoInheritedPropertiesOnAck {
		ack.Properties = packets.Properties{}
	}
	if err := p.cl.WritePacket(ack); err != nil {
		// The publisher left: it sends the message again when it reconnects, and it
		// is committed once more (the hand-over is at least once).
		p.h.log.Debug("puback not written", "client", p.cl.ID, "err", err)
	}
}
