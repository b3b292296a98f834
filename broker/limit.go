package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// RateLimit bounds the publishes of one login (S6): on average Rate a second, Burst
// at once. A connection that goes over is disconnected ("shed") and counted; it may
// connect again, and what it sent before the excess keeps its PUBACK rule
// (acknowledged only once committed). Each username has its own budget, shared by
// its connections and kept across reconnects, so a flooder that reconnects gets no
// fresh budget, and a flood from one device (or from stolen credentials) never uses
// up the budget of a button that presses behind it. Anonymous clients (demo mode
// only) have a budget per connection.
type RateLimit struct {
	// Rate is publishes a second; 0 means no limit.
	Rate float64
	// Burst is how many may arrive at once (at least 1 when Rate is set).
	Burst int
}

// Stats counts what the broker refused, for /metrics (vakt_broker_*).
type Stats struct {
	// Shed is connections disconnected for going over their RateLimit.
	Shed uint64
	// RefusedPublish is publishes to a topic the client may not publish to: they
	// reach no subscriber and not the gateway.
	RefusedPublish uint64
	// RefusedSubscribe is subscriptions to a filter the client may not read.
	RefusedSubscribe uint64
	// RefusedLogin is connections refused for bad credentials or client id.
	RefusedLogin uint64
}

// counters is Stats, updated from mochi's goroutines.
type counters struct {
	shed, refusedPub, refusedSub, refusedLogin atomic.Uint64
}

// errShed is the reason a flooding connection is closed.
var errShed = errors.New("publish rate over the broker's rate_limit: connection shed")

// bucket is one connection's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter holds a bucket per connection.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu sync.Mutex
	// buckets by username (a string), or by *mqtt.Client for anonymous clients.
	buckets map[any]*bucket
}

func newLimiter(r RateLimit, now func() time.Time) *limiter {
	if r.Rate <= 0 {
		return nil
	}
	return &limiter{rate: r.Rate, burst: float64(max(r.Burst, 1)), now: now, buckets: map[any]*bucket{}}
}

// key is whose budget cl's publishes use.
func limitKey(cl *mqtt.Client) any {
	if u := string(cl.Properties.Username); u != "" {
		return u // a configured username: the map is bounded by the clients list
	}
	return cl
}

// allow takes one token of cl's bucket, reporting false when it is empty.
func (l *limiter) allow(cl *mqtt.Client) bool {
	now := l.now()
	key := limitKey(cl)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forget drops an anonymous connection's bucket; a username's stays.
func (l *limiter) forget(cl *mqtt.Client) {
	l.mu.Lock()
	delete(l.buckets, any(cl))
	l.mu.Unlock()
}

// OnPacketRead applies the rate limit to every PUBLISH read, before its ACL check,
// so junk to topics the client may not use counts as much as any other.
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.limit == nil || cl.Net.Inline || pk.FixedHeader.Type != packets.Publish {
		return pk, nil
	}
	if h.limit.allow(cl) {
		return pk, nil
	}
	if !cl.Closed() {
		h.stats.shed.Add(1)
		// Once per shed connection: the flood itself is not logged message by message.
		h.log.Warn("mqtt client shed: publish rate over drivers.broker.rate_limit", "client", cl.ID, "remote", cl.Net.Remote)
		cl.Stop(errShed)
	}
	// mochi ignores any other error of this hook; a rejected packet ends the read loop.
	return pk, packets.ErrRejectPacket
}
