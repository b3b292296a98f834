package mqtt

import (
	"errors"
	"sync"
	"time"
)

// ErrStopped is returned by Deliver when the driver stops before the message was
// committed: the publisher must not be acknowledged.
var ErrStopped = errors.New("mqtt: driver stopped")

// Deliver takes one publish from the embedded broker, in-process, and returns only
// when every event of it is committed (or the message was rejected for good, e.g.
// malformed, which can never succeed). The broker calls it before it answers the
// publisher, so with the embedded broker the PUBACK a button gets proves the press is
// on disk — the broker keeps sessions only in memory and dies with the gateway, so
// acknowledging first and committing later could lose a press in a crash.
// Calls from one publisher come one after another, so a device's order is kept.
func (d *Driver) Deliver(topic string, payload []byte) error {
	m := &directMessage{topic: topic, payload: payload, acked: make(chan struct{})}
	d.stats.received.Add(1)
	select {
	case d.queue <- received{msg: m, at: time.Now()}:
	case <-d.stop:
		return ErrStopped
	}
	select {
	case <-m.acked:
		return nil
	case <-d.stop:
		return ErrStopped
	}
}

// directMessage is a publish handed over by the embedded broker; it satisfies the
// same message interface the driver's worker uses for paho's messages, and Ack
// releases the waiting broker.
type directMessage struct {
	topic   string
	payload []byte
	once    sync.Once
	acked   chan struct{}
}

func (m *directMessage) Duplicate() bool   { return false }
func (m *directMessage) Qos() byte         { return 1 }
func (m *directMessage) Retained() bool    { return false } // live publishes are never retained deliveries
func (m *directMessage) Topic() string     { return m.topic }
func (m *directMessage) MessageID() uint16 { return 0 }
func (m *directMessage) Payload() []byte   { return m.payload }
func (m *directMessage) Ack()              { m.once.Do(func() { close(m.acked) }) }
