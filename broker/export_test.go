package broker

import "time"

// MaxPending is maxPending, for the tests.
const MaxPending = maxPending

// FreezeRateLimit stops b's rate-limit clock, so a connection gets exactly its burst
// and no refill: the tests count publishes, never time.
func FreezeRateLimit(b *Broker) {
	at := time.Unix(1_800_000_000, 0)
	b.auth.limit.now = func() time.Time { return at }
}
