package broker

import "time"

// MaxPending is maxPending, for the tests.
const MaxPending = maxPending

// RateLimitClock replaces b's rate-limit clock: the budget then refills only when
// the test moves it, so the tests count publishes, never time.
func RateLimitClock(b *Broker, now func() time.Time) { b.auth.limit.now = now }
