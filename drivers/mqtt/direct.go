package mqtt

import (
	"errors"
	"sync"
	"time"
)

// ErrStopped is returned by Deliver (and passed to DeliverAsync's done) when the
// driver stops before the message was committed: the publisher must not be
// acknowledged.
var ErrStopped = errors.New("mqtt: driver stopped")

// Deliver takes one publish from the embedded broker, in-process, and returns only
// when every event of it is committed (or the message was rejected for good, e.g.
// malformed, which can never succeed). See DeliverAsync.
func (d *Driver) Deliver(topic string, payload []byte) error {
	res := make(chan error, 1)
	d.DeliverAsync(topic, payload, func(err error) { res <- err })
	return <-res
}

// DeliverAsync takes one publish from the embedded broker, in-process, and calls done
// once every event of it is committed (nil), the message was rejected for good (nil:
// e.g. malformed, which can never succeed), or the driver stopped first (ErrStopped).
// The broker answers the publisher only after done(nil), so with the embedded broker
// the PUBACK a button gets proves the press is on disk — the broker keeps sessions only
// in memory and dies with the gateway, so acknowledging first and committing later
// could lose a press in a crash.
//
// It returns once the message is queued (waiting only while the driver's queue is
// full), not after the commit, so one publisher can have many messages in one group
// commit. Messages are decoded and ingested in the order of the calls, so calls made
// one after another from one publisher keep its devices' order; done is called once,
// on the driver's acknowledging goroutine (or the caller's, when stopped), and must not
// block.
func (d *Driver) DeliverAsync(topic string, payload []byte, done func(error)) {
	m := &directMessage{d: d, topic: topic, payload: payload, done: done}
	d.stats.received.Add(1)
	d.mu.Lock()
	if d.stopped || !d.started {
		d.mu.Unlock()
		m.finish(ErrStopped)
		return
	}
	if d.direct == nil {
		d.direct = make(map[*directMessage]struct{})
	}
	d.direct[m] = struct{}{}
	d.mu.Unlock()
	select {
	case d.queue <- received{msg: m, at: time.Now()}:
	case <-d.stop:
		d.forget(m)
		m.finish(ErrStopped)
	}
}

// failDirect tells every hand-over not yet committed that it never will be (Stop).
func (d *Driver) failDirect() {
	d.mu.Lock()
	pending := d.direct
	d.direct = nil
	d.mu.Unlock()
	for m := range pending {
		m.finish(ErrStopped)
	}
}

func (d *Driver) forget(m *directMessage) {
	d.mu.Lock()
	delete(d.direct, m)
	d.mu.Unlock()
}

// directMessage is a publish handed over by the embedded broker; it satisfies the
// same message interface the driver's worker uses for paho's messages, and Ack
// reports the commit to the broker.
type directMessage struct {
	d       *Driver
	topic   string
	payload []byte
	once    sync.Once
	done    func(error)
}

func (m *directMessage) finish(err error) { m.once.Do(func() { m.done(err) }) }

func (m *directMessage) Duplicate() bool   { return false }
func (m *directMessage) Qos() byte         { return 1 }
func (m *directMessage) Retained() bool    { return false } // live publishes are never retained deliveries
func (m *directMessage) Topic() string     { return m.topic }
func (m *directMessage) MessageID() uint16 { return 0 }
func (m *directMessage) Payload() []byte   { return m.payload }
func (m *directMessage) Ack() {
	if m.d != nil {
		m.d.forget(m)
	}
	m.finish(nil)
}
