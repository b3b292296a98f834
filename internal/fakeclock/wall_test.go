package fakeclock

import (
	"testing"
	"time"
)

// A step moves what Now says but not durations measured between readings, as with a
// stepped system clock; a reading that lost its monotonic part sees the step.
func TestWallStep(t *testing.T) {
	var w Wall
	before := w.Now()
	w.Jump(time.Hour)
	after := w.Now()
	if d := after.Sub(before); d < 0 || d > time.Minute {
		t.Errorf("monotonic duration across a +1h step: %v", d)
	}
	if d := after.Round(0).Sub(before.Round(0)); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("wall difference across a +1h step: %v", d)
	}
	w.Jump(-2 * time.Hour)
	if d := w.Now().Sub(before); d < 0 {
		t.Errorf("monotonic duration across a -1h step went negative: %v", d)
	}
	boot := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
	w.Set(boot)
	if now := w.Now(); now.Year() != 1970 || now.Sub(before) < 0 {
		t.Errorf("after Set(1970): %v (monotonic since before %v)", now, now.Sub(before))
	}
	fired := make(chan struct{})
	w.AfterFunc(time.Millisecond, func() { close(fired) })
	<-fired
}
