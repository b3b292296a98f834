package vakt

import "time"

// Clock is the time source. Routing and the engine take one so tests can drive time
// and a wall-clock jump cannot fire a timer early or late: durations are measured
// with Go's monotonic reading carried inside time.Time values from Now.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable pending call.
type Timer interface {
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
