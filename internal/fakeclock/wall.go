package fakeclock

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	vakt "github.com/vakt/vakt"
)

// Wall is the real clock (time.Now, time.AfterFunc) with a wall reading the test can
// step, as NTP or an operator steps a system clock: every reading keeps Go's
// monotonic clock reading, so durations between readings and the timers are
// untouched by a step — exactly what a stepped system clock does to a Go program.
// Code that measures a duration from wall readings alone (a time that lost its
// monotonic reading through UTC, Round(0), a database round trip) sees the step, as
// it would on a real box. The zero value reads the real time.
type Wall struct {
	off atomic.Int64 // nanoseconds added to the wall reading
}

// Now implements vakt.Clock.
func (w *Wall) Now() time.Time { return shiftWall(time.Now(), time.Duration(w.off.Load())) }

// AfterFunc implements vakt.Clock: a real timer on the monotonic clock.
func (w *Wall) AfterFunc(d time.Duration, f func()) vakt.Timer { return time.AfterFunc(d, f) }

// Jump steps the wall reading by d (negative: back).
func (w *Wall) Jump(d time.Duration) { w.off.Add(int64(d)) }

// Set steps the wall reading to t (1970, for a box without a real-time clock).
func (w *Wall) Set(t time.Time) { w.off.Store(int64(t.Sub(time.Now().Round(0)))) }

// rawTime mirrors time.Time's layout (Go 1.9 and later): wall holds a flag, 33 bits
// of seconds since 1885 and 30 bits of nanoseconds when the monotonic reading ext is
// present. shiftWall checks its own result, so a change of layout fails loudly.
type rawTime struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

const (
	hasMonotonic = 1 << 63
	nsecShift    = 30
	maxWallSecs  = 1<<33 - 1
)

var epoch1885 = time.Date(1885, 1, 1, 0, 0, 0, 0, time.UTC)

// shiftWall returns t with its wall reading moved by d and its monotonic reading
// kept.
func shiftWall(t time.Time, d time.Duration) time.Time {
	if d == 0 {
		return t
	}
	want := t.Round(0).Add(d)
	secs := want.Unix() - epoch1885.Unix()
	r := *(*rawTime)(unsafe.Pointer(&t))
	if r.wall&hasMonotonic == 0 || secs < 0 || secs > maxWallSecs {
		panic(fmt.Sprintf("fakeclock: cannot step the wall reading to %v keeping the monotonic one", want))
	}
	r.wall = hasMonotonic | uint64(secs)<<nsecShift | uint64(want.Nanosecond())
	got := *(*time.Time)(unsafe.Pointer(&r))
	if !got.Round(0).Equal(want) || got.Sub(t) != 0 {
		panic("fakeclock: time.Time's layout changed; Wall cannot step the wall reading")
	}
	return got
}
