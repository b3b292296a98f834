package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vakt/vakt/internal/mqttwire"
)

// mqttConn is a minimal MQTT 3.1.1 publisher: CONNECT/CONNACK, PUBLISH at QoS 1 and
// its PUBACK, nothing else (no subscriptions, no keep-alive: keep alive 0). It stands
// in for a Zigbee2MQTT bridge and measures each PUBACK exactly: the callback runs the
// moment the PUBACK packet is read. paho is imported only by drivers/mqtt, and a
// publisher this small is easier to reason about when the far end is SIGKILLed.
type mqttConn struct {
	c    net.Conn
	wmu  sync.Mutex // guards w; held while writing
	w    *bufio.Writer
	mu   sync.Mutex // guards next, wait, err; never held while writing
	next uint16
	wait map[uint16]func(ok bool)
	err  error
	done chan struct{}
}

var errGone = errors.New("mqtt: connection closed")

// dialMQTT connects and completes CONNECT/CONNACK with a clean session.
func dialMQTT(addr, clientID, user, pass string, timeout time.Duration) (*mqttConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	var body []byte
	body = mqttwire.AppendString(body, "MQTT")
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80 | 0x40
	}
	body = append(body, 4, flags, 0, 0) // level 4 (3.1.1), keep alive 0
	body = mqttwire.AppendString(body, clientID)
	if user != "" {
		body = mqttwire.AppendString(body, user)
		body = mqttwire.AppendString(body, pass)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(mqttwire.Packet(0x10, body)); err != nil {
		c.Close()
		return nil, fmt.Errorf("mqtt connect to %s: %w", addr, err)
	}
	r := bufio.NewReader(c)
	typ, pl, err := readPacket(r)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("mqtt connack from %s: %w", addr, err)
	}
	if typ>>4 != 2 || len(pl) != 2 || pl[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("mqtt connect to %s refused (packet %#x %v): check the broker's clients and ACL", addr, typ, pl)
	}
	_ = c.SetDeadline(time.Time{})
	m := &mqttConn{c: c, w: bufio.NewWriterSize(c, 64<<10), next: 1, wait: map[uint16]func(bool){}, done: make(chan struct{})}
	go m.read(r)
	return m, nil
}

// publish sends one QoS 1 message; acked(true) runs when its PUBACK arrives,
// acked(false) when the connection dies first. Writes are buffered: call flush.
func (m *mqttConn) publish(topic string, payload []byte, acked func(ok bool)) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return m.err
	}
	if len(m.wait) >= 65535 {
		m.mu.Unlock()
		return errors.New("mqtt: 65535 messages in flight")
	}
	for m.next == 0 || m.wait[m.next] != nil {
		m.next++
	}
	id := m.next
	m.next++
	m.wait[id] = acked
	m.mu.Unlock()
	body := mqttwire.AppendString(make([]byte, 0, len(topic)+len(payload)+4), topic)
	body = binary.BigEndian.AppendUint16(body, id)
	body = append(body, payload...)
	if _, err := m.w.Write(mqttwire.Packet(0x32, body)); err != nil { // PUBLISH, QoS 1
		m.fail(err)
		return err
	}
	return nil
}

func (m *mqttConn) flush() error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.w == nil {
		return errGone
	}
	if err := m.w.Flush(); err != nil {
		m.fail(err)
		return err
	}
	return nil
}

func (m *mqttConn) fail(err error) {
	m.mu.Lock()
	m.failLocked(err)
	m.mu.Unlock()
}

func (m *mqttConn) read(r *bufio.Reader) {
	for {
		typ, pl, err := readPacket(r)
		if err != nil {
			m.fail(err)
			return
		}
		if typ>>4 != 4 || len(pl) < 2 { // only PUBACKs are expected
			continue
		}
		id := binary.BigEndian.Uint16(pl)
		m.mu.Lock()
		f := m.wait[id]
		delete(m.wait, id)
		m.mu.Unlock()
		if f != nil {
			f(true)
		}
	}
}

// failLocked closes the connection and fails every message still waiting.
func (m *mqttConn) failLocked(err error) {
	if m.err != nil {
		return
	}
	m.err = fmt.Errorf("%w: %v", errGone, err)
	m.c.Close()
	for id, f := range m.wait {
		delete(m.wait, id)
		go f(false)
	}
	close(m.done)
}

func (m *mqttConn) close() {
	if m.w == nil {
		return
	}
	m.wmu.Lock()
	_ = m.w.Flush()
	_, _ = m.w.Write([]byte{0xe0, 0}) // DISCONNECT
	_ = m.w.Flush()
	m.wmu.Unlock()
	m.fail(io.EOF)
}

func (m *mqttConn) inflight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.wait)
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("mqtt: bad remaining length")
		}
	}
	pl := make([]byte, n)
	if _, err := io.ReadFull(r, pl); err != nil {
		return 0, nil, err
	}
	return typ, pl, nil
}
