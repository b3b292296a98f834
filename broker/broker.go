// Package broker is the embedded MQTT broker (mochi-mqtt) for sites that run no
// Mosquitto of their own. Every client authenticates with its own credentials and may
// publish and subscribe only to its own topic filters (S5: a button can publish only to
// its own topic; Zigbee2MQTT reads and writes its base topic). The gateway is no client:
// every publish is handed to it in-process (Options.Handover) before the PUBACK.
//
// This is the only package that imports mochi-mqtt.
//
// What mochi does and does not promise (v2.7.9, seen in its code and our tests):
//   - Sessions live in memory: what it acknowledged to a publisher but has not yet
//     delivered to the gateway is lost if the process dies. The gateway's PUBACK after
//     commit is the end-to-end proof, never the broker's.
//   - On its own path it sends the publisher's PUBACK before it queues the message
//     for subscribers. Ours (pipeline.go) commits, then queues, then PUBACKs; either
//     way a persistent session being taken over at that instant can miss the message,
//     which is why the gateway reads the broker in-process and is no subscriber.
//   - Messages queued for an absent persistent session are resent sorted by creation
//     second only, so their order within a second is lost. Live delivery keeps order.
//   - It refuses (0x91) a SUBSCRIBE whose packet id equals one of its own
//     unacknowledged PUBLISHes to that client; drivers/mqtt retries.
//   - Beyond MaximumInflight unacknowledged messages per client it drops QoS 1
//     messages ("client store quota reached"): sized to the maximum here.
package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultListen is the listen address when Options.Listen is empty.
const DefaultListen = "127.0.0.1:1883"

// Sizing for storms (mochi drops QoS 1 messages beyond these; see Start).
const (
	// maxInflight is the per-client store of unacknowledged QoS 1/2 messages, including
	// those queued for a disconnected persistent session: the most the gateway can
	// miss while it restarts. 65535 is MQTT's packet-id space, and mochi's maximum.
	maxInflight = math.MaxUint16
	// maxWritesPending is each client's outbound queue. mochi allocates it per client
	// (8 bytes a slot), so it is large but not 64 Ki: 128 KiB per connected client.
	maxWritesPending = 16 * 1024
	// maxPacket bounds an inbound packet (S6). Z2M's retained bridge/devices message
	// grows with the network, so this is far above any alarm payload.
	maxPacket = 1 << 20
	// sessionExpiry frees sessions of clients that never came back.
	sessionExpiry = 7 * 24 * 60 * 60
)

// Client is one MQTT client the broker accepts.
type Client struct {
	Username string
	Password string
	// ClientID, when set, is the only MQTT client id this credential may use, and no
	// other credential may use it: nobody else can take over that client's persistent
	// session (set it for the gateway's own client).
	ClientID string
	// Publish and Subscribe are the topic filters the client may publish to and
	// subscribe to. A button has its own topic in Publish; Zigbee2MQTT has
	// "zigbee2mqtt/#" in both; the gateway has "#" in Subscribe.
	Publish   []string
	Subscribe []string
}

// Options configures a Broker.
type Options struct {
	// Listen is host:port (DefaultListen when empty; "127.0.0.1:0" picks a port).
	Listen string
	// TLS, when set, makes the listener TLS only (minimum TLS 1.2 is enforced).
	TLS     *tls.Config
	Clients []Client
	// RateLimit bounds each login's publishes; the zero value is no limit.
	RateLimit RateLimit
	// AllowAnonymous lets clients without a username connect and publish and subscribe
	// anywhere. Demo mode only.
	AllowAnonymous bool
	Logger         *slog.Logger
	// Handover is handed every authorised publish, in each publisher's order, and
	// calls done once the publish is committed (nil) or can never be (an error).
	// Only after done(nil) does the broker keep the message (retain), pass it to
	// the subscribers and answer the publisher (PUBACK), in the publisher's order;
	// an error withholds all three, so the publisher sends the message again.
	// Handover must not wait for the commit: the broker reads the publisher's next
	// packets meanwhile (up to maxPending per connection), which is what lets one
	// connection carrying many devices (a Zigbee2MQTT bridge) fill a group commit.
	// done may be called on any goroutine, also before Handover returns; it must be
	// called exactly once. The gateway passes the MQTT driver's DeliverAsync (see
	// pipeline.go for how mochi is made to wait).
	//
	// Exactly one of Handover and OnPublish is required: the broker keeps sessions in
	// memory only, so a PUBACK it sent on its own would promise nothing, and no
	// listen address or URL spelling can make it acknowledge a press not on disk.
	Handover func(topic string, payload []byte, done func(error))
	// OnPublish is Handover for a handler that returns after the commit: it blocks
	// that publisher's read loop, one message per commit.
	OnPublish func(topic string, payload []byte) error
}

// Broker is the embedded MQTT broker.
type Broker struct {
	opts Options
	auth *authHook
	log  *slog.Logger

	mu       sync.Mutex
	server   *mqtt.Server
	listener *listeners.TCP
	closed   bool
}

// New validates the options and opens nothing.
func New(o Options) (*Broker, error) {
	if (o.OnPublish == nil) == (o.Handover == nil) {
		return nil, errors.New("broker: exactly one of Handover and OnPublish is required: the broker keeps sessions in memory only, so it may acknowledge a publish only after the gateway committed it")
	}
	handover := o.Handover
	if handover == nil {
		onPublish := o.OnPublish
		handover = func(topic string, payload []byte, done func(error)) { done(onPublish(topic, payload)) }
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.TLS != nil {
		if o.TLS.InsecureSkipVerify {
			return nil, errors.New("broker: tls: InsecureSkipVerify is not allowed")
		}
		o.TLS = o.TLS.Clone()
		if o.TLS.MinVersion < tls.VersionTLS12 {
			o.TLS.MinVersion = tls.VersionTLS12
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &authHook{
		users:   make(map[string]*Client, len(o.Clients)),
		pinned:  make(map[string]string),
		anon:    o.AllowAnonymous,
		publish: handover,
		log:     o.Logger,
		pipes:   make(map[*mqtt.Client]*pipe),
		limit:   newLimiter(o.RateLimit, time.Now),
	}
	if o.RateLimit.Rate < 0 || o.RateLimit.Burst < 0 {
		return nil, errors.New("broker: rate limit: rate and burst cannot be negative")
	}
	for i := range o.Clients {
		c := o.Clients[i]
		where := fmt.Sprintf("broker: clients[%d]", i)
		switch {
		case c.Username == "":
			return nil, fmt.Errorf("%s: username is empty", where)
		case c.Password == "":
			return nil, fmt.Errorf("%s (%s): password is empty", where, c.Username)
		case h.users[c.Username] != nil:
			return nil, fmt.Errorf("%s: username %q is used twice", where, c.Username)
		}
		for _, f := range append(append([]string(nil), c.Publish...), c.Subscribe...) {
			if !validFilter(f) {
				return nil, fmt.Errorf("%s (%s): topic filter %q is not valid", where, c.Username, f)
			}
		}
		if c.ClientID != "" {
			if other, ok := h.pinned[c.ClientID]; ok {
				return nil, fmt.Errorf("%s (%s): client id %q is pinned to %q already", where, c.Username, c.ClientID, other)
			}
			h.pinned[c.ClientID] = c.Username
		}
		c.Publish = append([]string(nil), c.Publish...)
		c.Subscribe = append([]string(nil), c.Subscribe...)
		h.users[c.Username] = &c
	}
	return &Broker{opts: o, auth: h, log: o.Logger}, nil
}

// Start listens and serves. It returns once the listener is bound, so Addr is valid.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.server != nil || b.closed {
		return errors.New("broker: already started")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = maxInflight
	caps.ReceiveMaximum = math.MaxUint16
	caps.MaximumClientWritesPending = maxWritesPending
	caps.MaximumPacketSize = maxPacket
	caps.MaximumSessionExpiryInterval = sessionExpiry
	// 0 = never: mochi otherwise deletes retained messages (Z2M availability) and
	// queued presses for an absent gateway after a day.
	caps.MaximumMessageExpiryInterval = 0
	s := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       b.log,
		// No $SYS topics (P4, idle): see dropSysTopics. 68 years: mochi's ticker then
		// never republishes them (0 would mean its default, every second).
		SysTopicResendInterval: math.MaxInt32,
		// The inline client re-injects each publish once it is committed
		// (pipeline.go); the auth hook lets it through unchecked.
		InlineClient: true,
	})
	b.auth.start(s) // before Serve: the first publish may come at once
	if err := s.AddHook(b.auth, nil); err != nil {
		return fmt.Errorf("broker: add auth hook: %w", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "vakt", Address: b.opts.Listen, TLSConfig: b.opts.TLS})
	if err := s.AddListener(l); err != nil {
		_ = s.Close()
		return fmt.Errorf("broker: listen %s: %w", b.opts.Listen, err)
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	dropSysTopics(s)
	b.server, b.listener = s, l
	b.log.Info("mqtt broker listening", "addr", l.Address(), "clients", len(b.auth.users))
	return nil
}

// dropSysTopics clears the $SYS messages mochi retains when it starts serving. No
// client may read them (the ACL refuses $ filters, and so does the configuration),
// yet mochi copies every retained message once a second to look for expired ones:
// its ~20 $SYS messages made ~19 KB of garbage a second at an idle site, so the heap
// grew to its collection goal and stayed there (P4: the load site's idle RSS rose
// from 27.9 to 30.5 MB over three minutes after ready; without them it stays flat).
// Messages clients retain (Zigbee2MQTT's availability) are kept.
func dropSysTopics(s *mqtt.Server) {
	for topic := range s.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, mqtt.SysPrefix+"/") {
			s.Topics.RetainMessage(packets.Packet{TopicName: topic, FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}})
		}
	}
}

// Addr is the address the broker listens on (after Start), e.g. "127.0.0.1:41883".
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.listener == nil {
		return ""
	}
	return b.listener.Address()
}

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.server == nil {
		return nil
	}
	b.auth.close()
	return b.server.Close()
}

// authHook authenticates clients and enforces their topic filters.
type authHook struct {
	mqtt.HookBase
	users  map[string]*Client // read-only after New
	pinned map[string]string  // client id → the only username allowed to use it
	anon   bool
	// publish is Options.Handover (never nil).
	publish func(topic string, payload []byte, done func(error))
	log     *slog.Logger
	limit   *limiter // nil: no rate limit
	stats   counters

	// The publish pipelines, one per connection (pipeline.go).
	mu     sync.Mutex
	pipes  map[*mqtt.Client]*pipe
	server *mqtt.Server
	inline *mqtt.Client
	closed bool
}

func (h *authHook) ID() string { return "vakt-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish || b == mqtt.OnDisconnect ||
		b == mqtt.OnPacketRead
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	ok := h.authenticate(cl, pk)
	if !ok {
		h.stats.refusedLogin.Add(1)
	}
	return ok
}

func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if owner, ok := h.pinned[cl.ID]; ok && owner != user {
		return false
	}
	if user == "" {
		return h.anon
	}
	c, ok := h.users[user]
	if !ok {
		secretEqual(pk.Connect.Password, "") // same work as a known user
		return false
	}
	if c.ClientID != "" && cl.ID != c.ClientID {
		return false
	}
	return secretEqual(pk.Connect.Password, c.Password)
}

// secretEqual compares in constant time, lengths included.
func secretEqual(got []byte, want string) bool {
	g, w := sha256.Sum256(got), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// OnACLCheck is asked with a topic name when a client publishes (write) and when a
// message is delivered to it, and with a topic filter when it subscribes.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	ok := h.aclCheck(cl, topic, write)
	switch {
	case ok:
	case write:
		h.stats.refusedPub.Add(1)
	default:
		h.stats.refusedSub.Add(1)
	}
	return ok
}

func (h *authHook) aclCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if user == "" {
		return h.anon
	}
	c, ok := h.users[user]
	if !ok {
		return false
	}
	allowed := c.Subscribe
	if write {
		allowed = c.Publish
	}
	for _, f := range allowed {
		if covers(f, topic) {
			return true
		}
	}
	return false
}

// covers reports whether every topic matched by filter (a topic name is a filter
// without wildcards) is also matched by allow.
func covers(allow, filter string) bool {
	if strings.HasPrefix(filter, "$") && (strings.HasPrefix(allow, "+") || strings.HasPrefix(allow, "#")) {
		return false // wildcards never match $SYS-style topics [MQTT-4.7.2-1]
	}
	al, fl := strings.Split(allow, "/"), strings.Split(filter, "/")
	for i, a := range al {
		if a == "#" {
			return true // also matches the parent level: "a/#" matches "a"
		}
		if i >= len(fl) {
			return false
		}
		switch {
		case fl[i] == "#":
			return false
		case a == "+":
		case fl[i] == "+" || a != fl[i]:
			return false
		}
	}
	return len(fl) == len(al)
}

func validFilter(f string) bool {
	if f == "" || strings.ContainsRune(f, 0) {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if (strings.Contains(l, "#") && (l != "#" || i != len(levels)-1)) ||
			(strings.Contains(l, "+") && l != "+") {
			return false
		}
	}
	return !strings.HasPrefix(f, "$share/")
}

// Clients lists the ids of the connected clients, sorted (the status page shows them).
func (b *Broker) Clients() []string {
	b.mu.Lock()
	srv := b.server
	b.mu.Unlock()
	if srv == nil {
		return nil
	}
	var ids []string
	for id, cl := range srv.Clients.GetAll() {
		if !cl.Closed() && !cl.Net.Inline {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Stats counts what the broker refused or shed since it was made.
func (b *Broker) Stats() Stats {
	c := &b.auth.stats
	return Stats{Shed: c.shed.Load(), RefusedPublish: c.refusedPub.Load(), RefusedSubscribe: c.refusedSub.Load(), RefusedLogin: c.refusedLogin.Load()}
}
