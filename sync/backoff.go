package sync

import (
	"context"
	"time"

	vakt "github.com/vakt/vakt"
)

// Backoff is capped exponential backoff with full jitter (AWS architecture blog,
// "Exponential Backoff and Jitter"): attempt n waits a uniformly random time in
// [0, min(Max, Base·2ⁿ)), so gateways that lost the cloud together do not come back
// in lock step. Rand returns a value in [0, 1).
type Backoff struct {
	Base, Max time.Duration
	Rand      func() float64
}

// Delay is the wait before retry number attempt (1 for the first retry), at least
// retryAfter when the cloud asked for it.
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	ceil := b.Max
	if attempt < 1 {
		attempt = 1
	}
	if shift := attempt - 1; shift < 40 {
		if d := b.Base << shift; d > 0 && d < b.Max {
			ceil = d
		}
	}
	d := time.Duration(b.Rand() * float64(ceil))
	return max(d, retryAfter)
}

// sleep waits d on clk, or until ctx ends or kick or retry fires (a nil channel never
// does). armed, if not nil, is called once the timer is set (tests advance a fake
// clock then). It reports false when ctx ended.
func sleep(ctx context.Context, clk vakt.Clock, d time.Duration, kick, retry <-chan struct{}, armed func()) bool {
	fired := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(fired) })
	defer t.Stop()
	if armed != nil {
		armed()
	}
	select {
	case <-ctx.Done():
		return false
	case <-fired:
	case <-kick:
	case <-retry:
	}
	return true
}
