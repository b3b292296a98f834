package engine_test

import (
	"errors"
	"path/filepath"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// TestQueueMadeAhead: an engine given a queue made by NewQueue (the gateway makes it
// before its start-up, P4) queues into that one: with the loop held in a commit, as
// many presses as it holds are accepted and the next is refused busy, and every
// accepted press is committed once the disk answers.
func TestQueueMadeAhead(t *testing.T) {
	const size = 5
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		queue: engine.NewQueue(size)}
	bs := &blockingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r.wrap = func(s vakt.Store) vakt.Store { bs.Store = s; return bs }
	r.start(false)
	t.Cleanup(func() { r.stop() })
	released := false
	release := func() {
		if !released {
			released = true
			bs.stuck.Store(false)
			close(bs.release)
		}
	}
	t.Cleanup(release) // before r.stop: a failed test must not leave the loop stuck
	r.idle()           // the start-up's commit is done

	committed := make(chan error, size+2) // room for a press wrongly accepted
	done := func(err error) { committed <- err }
	bs.stuck.Store(true)
	if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"}, done); err != nil {
		t.Fatal(err)
	}
	<-bs.entered // the loop holds the first in its commit; the queue is empty
	for i := range size {
		if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"}, done); err != nil {
			t.Fatalf("press %d of a queue of %d: %v", i+1, size, err)
		}
	}
	if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"}, done); !errors.Is(err, vakt.ErrBusy) {
		t.Fatalf("press beyond the queue of %d: %v, want ErrBusy (the engine's own queue of %d was used?)", size, err, engine.DefaultQueueSize)
	}
	release()
	for range size + 1 {
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
	}
}
