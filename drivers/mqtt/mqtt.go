// Package mqtt is the MQTT driver: it subscribes to the topics of the configured
// payload dialects (drivers.Dialect: Zigbee2MQTT, generic JSON, Shelly, ...) on a broker
// (Mosquitto or the embedded one), has each message decoded by the dialect that serves
// its topic, and hands the events to the gateway's Ingester. A message's PUBACK is sent only after
// every event it produced has been committed, so a message is acknowledged to the
// broker only once it is durable (at least once, end to end).
//
// This is the only package that imports paho.mqtt.golang.
//
// Delivery, as paho and the brokers actually behave:
//   - Subscriptions are QoS 1 in a persistent session (clean session off, fixed client
//     id), so presses published while the gateway is away are queued by the broker.
//   - paho's automatic PUBACK is off; Message.Ack is called after commit. An Ack made
//     after the connection that delivered the message has dropped is discarded by paho;
//     the broker then redelivers the message (DUP) on the next connection, and it is
//     ingested again with the same SourceID.
//   - A message that is not acknowledged is redelivered only when the session
//     reconnects, never on the same connection. The driver therefore never leaves a
//     message unacknowledged on purpose: ErrBusy and failed commits are retried here.
//   - The paho handler enqueues. When the queue (QueueSize, default DefaultQueueSize)
//     is full it waits for room, which holds paho's reader and so the broker's TCP
//     stream (back pressure); it never drops a message. Dropping one would leave it
//     unacknowledged until the next reconnect, and the queue does fill: with
//     max_inflight_messages 0 (firmware-notes) Mosquitto pushes a persistent session's
//     whole backlog at once after a restart, and after a reconnect the dead
//     connection's window may still be queued when the broker redelivers it. A wait
//     is short: the worker drains the queue as fast as commits go, and an engine stuck
//     for keepAlive+pingTimeout costs a reconnect, after which the broker redelivers.
//   - Order matters (transitions): Mosquitto 2.0 was seen reordering QoS 1 messages to
//     a subscriber that acknowledges late unless max_inflight_messages is 0; give it
//     that, with max_queued_messages large and set_tcp_nodelay true.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
)

// The broker URL schemes the driver connects with; TLSSchemes are those over TLS.
var (
	Schemes    = []string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}
	TLSSchemes = []string{"ssl", "tls", "mqtts", "wss"}
)

// Defaults applied to zero options.
const (
	// DefaultQueueSize is a buffer between paho's reader and the ingest, not a bound
	// on what the broker may send (the handler waits when it is full): a few
	// engine batches. 65,536 queued messages held ~25 MB, which under the gateway's
	// soft memory limit made the garbage collector run flat out during a backlog.
	DefaultQueueSize = 4096
	// DirectQueueSize is the default with the embedded broker's in-process hand-over:
	// there the queue is the pipeline between the broker's connections and group
	// commit (each publisher waits for its PUBACK until the commit), and 4,096 cut
	// the crash loop's acknowledged rate by about a sixth (2,930 → 2,496 events/s).
	DirectQueueSize = 65536
	// Source is the Event.Source of everything this driver ingests.
	Source = "mqtt"
)

// Timing. R2 asks for a reconnect within 2 s of the broker's return: paho retries at
// most every reconnectInterval, and a refused dial fails at once.
const (
	reconnectInterval = time.Second
	keepAlive         = 10 * time.Second
	pingTimeout       = 5 * time.Second
	connectTimeout    = 5 * time.Second
	writeTimeout      = 5 * time.Second
	// A broker answers every SUBSCRIBE, but after the backlog it already queued for
	// the session (Mosquitto sends it first): with 65,535 messages in flight that
	// takes as long as committing them. Sending the SUBSCRIBE again sooner only adds
	// a retained-message replay (one per retained topic) behind the same backlog.
	subscribeTimeout    = 60 * time.Second
	subscribeBackoffMax = 2 * time.Second
	disconnectQuiesce   = 250 // ms
	busyBackoffMax      = 50 * time.Millisecond
	failBackoffMax      = 5 * time.Second
	logEvery            = 10 * time.Second // rate limit for repeated warnings
)

// Options configures a Driver.
type Options struct {
	// URL is the broker: tcp://host:1883, ssl://host:8883 (also mqtt://, mqtts://, tls://, ws://, wss://).
	URL string
	// ClientID must be fixed: the broker keeps the persistent session under it.
	ClientID string
	Username string
	Password string
	// TLS configures ssl:// connections (minimum TLS 1.2 is enforced;
	// InsecureSkipVerify is refused).
	TLS *tls.Config
	// Dialects decode the messages, configured with their devices; each message goes
	// to the first dialect that does not answer drivers.ErrUnknown.
	Dialects []drivers.Dialect
	// MaxPayload bounds a payload no dialect claims (default drivers.DefaultMaxPayload).
	MaxPayload int
	Logger     *slog.Logger
	// QueueSize bounds messages received but not yet decoded (default DefaultQueueSize,
	// DirectQueueSize with Direct).
	QueueSize int
	// Queue is a queue made ahead by NewQueue, used by Start instead of one of
	// QueueSize (which is then ignored). Zero: Start makes it.
	Queue Queue
	// Direct: no broker connection; the embedded broker hands every publish to
	// Deliver before it answers the publisher (see direct.go). URL and ClientID are
	// then unused.
	Direct bool
}

// Queue is the driver's queue of received messages, for Options.Queue.
type Queue struct{ ch chan received }

// NewQueue makes a queue of size messages (0: DirectQueueSize), 2.6 MB at
// DirectQueueSize. A process makes it first, before its start-up garbage (P4, idle):
// the runtime zeroes memory it reuses, so a queue made at Start, on pages the
// start-up used and freed, was sometimes resident whole (all 2.6 MB in 1 of 6 starts
// of the load site) where one made on fresh pages holds only what traffic touched.
func NewQueue(size int) Queue {
	if size <= 0 {
		size = DirectQueueSize
	}
	return Queue{ch: make(chan received, size)}
}

// Stats are the driver's counters since New.
type Stats struct {
	Received  uint64 // messages handed over by paho
	Acked     uint64 // PUBACKs requested (committed, or rejected for good)
	Ignored   uint64 // bridge topics and commands to devices
	Malformed uint64
	Unknown   uint64
	Oversize  uint64
	// Busy counts messages that found the driver's queue full and waited for room
	// (back pressure on the broker connection); none is dropped.
	Busy uint64
	// Retries counts Ingest calls repeated after ErrBusy or a failed commit.
	Retries    uint64
	Reconnects uint64
	Connected  bool
}

// Driver is one broker connection.
type Driver struct {
	opts   Options
	where  string // the URL without its password, for errors and logs
	dec    mux
	topics map[string]byte
	log    *slog.Logger
	queue  chan received
	in     vakt.Ingester // from Start

	stats struct {
		received, acked, ignored, malformed, unknown, oversize, busy, retries, connects atomic.Uint64
		connected                                                                       atomic.Bool
	}
	warned sync.Map // string → *atomic.Int64 (unix nanos of the last log)

	mu         sync.Mutex
	client     paho.Client
	started    bool
	stopped    bool
	stop       chan struct{}
	subscribed chan struct{} // closed after the first successful subscription
	wg         sync.WaitGroup

	acks    *list[paho.Message]         // committed messages awaiting Ack
	retries *list[*submission]          // failed commits awaiting another Ingest
	direct  map[*directMessage]struct{} // embedded-broker hand-overs not yet answered (mu)
}

type received struct {
	msg paho.Message
	at  time.Time
}

// New validates the options and opens nothing.
func New(o Options) (*Driver, error) {
	if o.Direct {
		o.URL, o.ClientID = "direct://embedded", "embedded"
	}
	if o.URL == "" {
		return nil, errors.New("mqtt: url is empty")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: url: %w", err)
	}
	if !slices.Contains(Schemes, u.Scheme) && u.Scheme != "direct" {
		return nil, fmt.Errorf("mqtt: url %q: scheme must be one of %s", u.Redacted(), strings.Join(Schemes, ", "))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("mqtt: url %q: no host", u.Redacted())
	}
	if o.ClientID == "" {
		return nil, errors.New("mqtt: client id is empty (a persistent session needs a fixed one)")
	}
	if o.TLS != nil {
		if o.TLS.InsecureSkipVerify {
			return nil, errors.New("mqtt: tls: InsecureSkipVerify is not allowed")
		}
		o.TLS = o.TLS.Clone()
		if o.TLS.MinVersion < tls.VersionTLS12 {
			o.TLS.MinVersion = tls.VersionTLS12
		}
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
		if o.Direct {
			o.QueueSize = DirectQueueSize
		}
	}
	if o.QueueSize < 0 {
		return nil, fmt.Errorf("mqtt: queue size %d: must be positive", o.QueueSize)
	}
	if o.Queue.ch != nil {
		o.QueueSize = cap(o.Queue.ch)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = drivers.DefaultMaxPayload
	}
	dec := mux{dialects: o.Dialects, maxPayload: o.MaxPayload}
	topics := make(map[string]byte)
	for _, dl := range o.Dialects {
		for _, t := range dl.Topics() {
			topics[t] = 1
		}
	}
	return &Driver{
		opts:    o,
		where:   u.Redacted(),
		dec:     dec,
		topics:  topics,
		log:     o.Logger.With("driver", Source),
		acks:    newList[paho.Message](),
		retries: newList[*submission](),
	}, nil
}

// Start connects, subscribes and starts delivering events to in. It returns once the first
// subscription is in place. If ctx ends first (the broker is not there yet), Start
// returns ctx's error but the driver keeps connecting in the background, as it does
// after any later connection loss; call Stop in either case. ctx bounds only the
// wait, not the driver's life.
func (d *Driver) Start(ctx context.Context, in vakt.Ingester) error {
	if in == nil {
		return errors.New("mqtt: start: no ingester")
	}
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("mqtt: already started")
	}
	d.started = true
	d.in = in
	d.stop = make(chan struct{})
	d.subscribed = make(chan struct{})
	d.queue = d.opts.Queue.ch
	if d.queue == nil {
		d.queue = NewQueue(d.opts.QueueSize).ch
	}
	var once sync.Once
	o := paho.NewClientOptions().
		AddBroker(d.opts.URL).
		SetClientID(d.opts.ClientID).
		SetUsername(d.opts.Username).
		SetPassword(d.opts.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		// Ordered dispatch calls the handler on paho's router goroutine, one message
		// after another; the handler never blocks, so the router is never held up.
		// Unordered dispatch would run each handler in its own goroutine and could
		// reorder a device's messages, breaking transition detection.
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(reconnectInterval).
		SetMaxReconnectInterval(reconnectInterval).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(pingTimeout).
		SetWriteTimeout(writeTimeout).
		SetDefaultPublishHandler(d.handle).
		SetOnConnectHandler(func(c paho.Client) {
			if d.stats.connects.Add(1) > 1 {
				d.log.Info("reconnected to broker")
			}
			d.stats.connected.Store(true)
			if d.subscribe(c) {
				once.Do(func() { close(d.subscribed) })
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			d.stats.connected.Store(false)
			d.log.Warn("broker connection lost", "err", err)
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			switch n := n.(type) {
			case paho.ConnectionNotificationFailed:
				d.warn("connect", "connect to broker failed", "err", n.Reason)
			case paho.ConnectionNotificationBrokerFailed:
				d.warn("connect", "connect to broker failed", "err", n.Reason)
			}
		})
	if d.opts.TLS != nil {
		o.SetTLSConfig(d.opts.TLS)
	}
	d.wg.Add(2)
	go d.work()
	go d.acknowledge()
	if d.opts.Direct {
		d.stats.connected.Store(true)
		d.mu.Unlock()
		return nil
	}
	d.client = paho.NewClient(o)
	d.mu.Unlock()

	tok := d.client.Connect()
	select {
	case <-d.subscribed:
		return nil
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: connect %s: %w", d.where, err)
		}
		// Session present: the broker kept this client id's subscriptions (MQTT 3.1.1
		// §3.2.2.2) and is already delivering what it queued while the gateway was
		// away. The renewed SUBACK comes only after that backlog (Mosquitto with
		// max_inflight_messages 0 sends it all first), so waiting for it would hold
		// the gateway's readiness for as long as the backlog takes to commit.
		if ct, ok := tok.(*paho.ConnectToken); ok && ct.SessionPresent() {
			d.log.Info("session present at the broker: receiving; subscriptions renewed in the background")
			return nil
		}
		select {
		case <-d.subscribed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("mqtt: subscribe: %w", ctx.Err())
		}
	case <-ctx.Done():
		return fmt.Errorf("mqtt: connect %s: %w", d.where, ctx.Err())
	}
}

// subscribe (re)establishes the subscriptions, retrying until the broker grants them
// or the connection drops. A persistent session keeps them at the broker, but a broker
// that lost its state (restarted without persistence) would not, so they are renewed
// on every connect. Retrying also covers mochi, which refuses a SUBSCRIBE whose packet
// id equals one of its own unacknowledged PUBLISHes to us (0x91), as happens right
// after a reconnect that resends them.
func (d *Driver) subscribe(c paho.Client) bool {
	backoff := 20 * time.Millisecond
	for {
		if d.trySubscribe(c) {
			d.log.Info("subscribed", "topics", len(d.topics))
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-d.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		if !c.IsConnectionOpen() {
			return false // the next OnConnect subscribes
		}
		backoff = min(2*backoff, subscribeBackoffMax)
	}
}

func (d *Driver) trySubscribe(c paho.Client) bool {
	tok := c.SubscribeMultiple(d.topics, nil) // nil: the default handler gets everything, once
	if !tok.WaitTimeout(subscribeTimeout) {
		d.warn("subscribe", "subscribe timed out")
		return false
	}
	if err := tok.Error(); err != nil {
		d.warn("subscribe", "subscribe failed", "err", err)
		return false
	}
	ok := true
	for topic, code := range tok.(*paho.SubscribeToken).Result() {
		if code > 2 {
			d.warn("subscribe", "subscription refused by broker, retrying", "topic", topic, "code", code)
			ok = false
		}
	}
	return ok
}

// handle runs on paho's router goroutine. When the queue is full it waits: paho's
// reader then stops reading the connection, and the broker holds what follows. This
// cannot deadlock: the worker that empties the queue never waits on paho, and the
// acknowledgements go out on paho's writer, which does not wait on the reader.
func (d *Driver) handle(_ paho.Client, m paho.Message) {
	d.stats.received.Add(1)
	r := received{msg: m, at: time.Now()}
	select {
	case d.queue <- r:
		return
	default:
	}
	d.stats.busy.Add(1)
	d.warn("busy", "queue full, reading from the broker paused until there is room", "queued", len(d.queue))
	select {
	case d.queue <- r:
	case <-d.stop:
		// Not acknowledged: the broker redelivers it to the next session.
	}
}

// Stop disconnects. Events ingested but not yet committed are acknowledged by nobody:
// the broker redelivers them to the next session.
func (d *Driver) Stop() error {
	d.mu.Lock()
	if !d.started || d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	c := d.client
	d.client = nil
	close(d.stop)
	d.mu.Unlock()

	d.wg.Wait()
	d.failDirect()
	if c != nil {
		c.Disconnect(disconnectQuiesce)
	}
	d.stats.connected.Store(false)
	return nil
}

// Name is "mqtt": there is one MQTT driver.
func (d *Driver) Name() string { return Source }

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	return Stats{
		Received:   d.stats.received.Load(),
		Acked:      d.stats.acked.Load(),
		Ignored:    d.stats.ignored.Load(),
		Malformed:  d.stats.malformed.Load(),
		Unknown:    d.stats.unknown.Load(),
		Oversize:   d.stats.oversize.Load(),
		Busy:       d.stats.busy.Load(),
		Retries:    d.stats.retries.Load(),
		Reconnects: max(d.stats.connects.Load(), 1) - 1,
		Connected:  d.stats.connected.Load(),
	}
}

// work decodes messages in delivery order and ingests their events.
func (d *Driver) work() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.retries.ready:
			for _, s := range d.retries.take() {
				if !d.ingest(s) {
					return
				}
			}
		case r := <-d.queue:
			if !d.process(r) {
				return
			}
		}
	}
}

// message tracks the events of one MQTT message until all are committed.
type message struct {
	msg  paho.Message
	left atomic.Int32
}

// submission is one event of a message, ingested until a commit succeeds.
type submission struct {
	m        *message
	ev       vakt.Event
	failures int
}

func (d *Driver) process(r received) bool {
	m := r.msg
	res, err := d.dec.Decode(m.Topic(), m.Payload(), m.Retained())
	if err != nil || res.Ignored || len(res.Events) == 0 {
		// A rejection can never succeed: acknowledge it, or the broker would
		// redeliver it on every reconnect. The payload is never logged.
		switch {
		case errors.Is(err, drivers.ErrMalformed):
			d.stats.malformed.Add(1)
			d.warn("malformed", "malformed payload", "topic", m.Topic(), "err", err)
		case errors.Is(err, drivers.ErrUnknown):
			d.stats.unknown.Add(1)
			d.warn("unknown", "message from an unknown device", "topic", m.Topic())
		case errors.Is(err, drivers.ErrOversize):
			d.stats.oversize.Add(1)
			d.warn("oversize", "payload too large", "topic", m.Topic(), "err", err)
		case err != nil:
			d.log.Error("undecodable message", "topic", m.Topic(), "err", err)
		default:
			d.stats.ignored.Add(1)
		}
		d.acks.push(m)
		return true
	}
	msg := &message{msg: m}
	msg.left.Store(int32(len(res.Events)))
	id := sourceID(m)
	for i, ev := range res.Events {
		ev.Source = Source
		if id != "" {
			ev.SourceID = fmt.Sprintf("%s/%d", id, i)
		}
		ev.ReceivedAt = r.at
		ev.Mono = r.at.Sub(epoch)
		if !d.ingest(&submission{m: msg, ev: ev}) {
			return false
		}
	}
	return true
}

// epoch anchors Event.Mono: a monotonic reading relative to process start.
var epoch = time.Now()

// sourceID names a message so its redelivery is recognised: the broker redelivers
// an unacknowledged message with the same packet id, topic and payload. Packet ids
// are reused (16 bits, per session), so a match is "probably the same message"; the
// ingest side should compare it only with recent events of the same transmitter.
func sourceID(m paho.Message) string {
	if _, ok := m.(*directMessage); ok {
		return "" // handed over in-process: never redelivered
	}
	h := fnv.New64a()
	h.Write([]byte(m.Topic()))
	h.Write([]byte{0})
	h.Write(m.Payload())
	return fmt.Sprintf("mqtt:%d:%016x", m.MessageID(), h.Sum64())
}

// ingest hands one event to the Ingester, retrying while it is busy. It returns false
// when the driver stops. Ingests happen only on the worker goroutine, in order.
func (d *Driver) ingest(s *submission) bool {
	backoff := time.Millisecond
	for {
		var once atomic.Bool
		err := d.in.Ingest(s.ev, func(err error) {
			if once.Swap(true) {
				return // done is called once; guard against a second call
			}
			d.committed(s, err)
		})
		if err == nil {
			return true
		}
		d.stats.retries.Add(1)
		if !errors.Is(err, vakt.ErrBusy) {
			d.warn("ingest", "ingest refused, retrying", "transmitter", s.ev.Transmitter, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-d.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, busyBackoffMax)
	}
}

// committed is the done callback. It may run on the committer's goroutine, so it
// only hands work to other goroutines and never blocks.
func (d *Driver) committed(s *submission, err error) {
	if err == nil {
		if s.m.left.Add(-1) == 0 {
			d.acks.push(s.m.msg)
		}
		return
	}
	// Not committed: try again later rather than wait for a reconnect that may never
	// come. The message stays unacknowledged until it is.
	s.failures++
	d.stats.retries.Add(1)
	d.warn("commit", "commit failed, retrying", "transmitter", s.ev.Transmitter, "err", err)
	wait := min(100*time.Millisecond<<min(s.failures-1, 6), failBackoffMax)
	time.AfterFunc(wait, func() { d.retries.push(s) })
}

// acknowledge sends PUBACKs off the committer's goroutine: paho's Ack waits for its
// writer.
func (d *Driver) acknowledge() {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.acks.ready:
			for _, m := range d.acks.take() {
				// Counted first: with the embedded broker Ack answers the publisher
				// at once, and whoever it answers may read the counters next.
				d.stats.acked.Add(1)
				m.Ack()
			}
		}
	}
}

// warn logs at most once per logEvery for each key, so a flood of junk cannot flood
// the log (S6).
func (d *Driver) warn(key, msg string, args ...any) {
	now := time.Now().UnixNano()
	v, _ := d.warned.LoadOrStore(key, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if prev != 0 && now-prev < int64(logEvery) || !last.CompareAndSwap(prev, now) {
		return
	}
	d.log.Warn(msg, args...)
}

// list is an unbounded hand-over list with a wake-up channel; push never blocks.
// Its length is bounded by the messages in flight, which the broker bounds.
type list[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{}
}

func newList[T any]() *list[T] { return &list[T]{ready: make(chan struct{}, 1)} }

func (l *list[T]) push(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

func (l *list[T]) take() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	items := l.items
	l.items = nil
	return items
}

// mux hands a message to the dialect that serves its topic.
type mux struct {
	dialects   []drivers.Dialect
	maxPayload int
}

func (m mux) Decode(topic string, payload []byte, retained bool) (drivers.Result, error) {
	for _, d := range m.dialects {
		res, err := d.Decode(topic, payload, retained)
		if errors.Is(err, drivers.ErrUnknown) {
			continue
		}
		return res, err
	}
	if len(payload) > m.maxPayload {
		return drivers.Result{}, fmt.Errorf("%w: %d bytes, limit %d", drivers.ErrOversize, len(payload), m.maxPayload)
	}
	return drivers.Result{}, drivers.ErrUnknown
}
