package engine_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// waitView waits, without polling, for a published view that satisfies cond.
func (r *rig) waitView(what string, cond func(*engine.View) bool) *engine.View {
	r.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		ch := r.eng.ViewChanged()
		if v := r.eng.View(); v != nil && cond(v) {
			return v
		}
		select {
		case <-ch:
		case <-timeout:
			r.t.Fatalf("timed out waiting for a view with %s", what)
		}
	}
}

// TestViewShowsCommittedState: the status page's snapshot shows the transmitter's
// health and its open technical alarm, the staff on duty, and the open alarms —
// also after a burst, whose last change is published shortly after it.
func TestViewShowsCommittedState(t *testing.T) {
	r := newRig(t)
	bat, lq := 9, 77
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventLowBattery, Battery: &bat, LinkQuality: &lq, Source: "mqtt"})
	for range 20 {
		r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	}
	v := r.waitView("the burst's last call counted", func(v *engine.View) bool {
		for _, a := range v.Alarms {
			if a.Kind == vakt.EventCall && a.Count == 20 {
				return true
			}
		}
		return false
	})
	if len(v.Transmitters) != 1 {
		t.Fatalf("transmitters %+v", v.Transmitters)
	}
	tv := v.Transmitters[0]
	if tv.ID != "room-101" || !tv.Configured || tv.Health.Battery == nil || *tv.Health.Battery != 9 ||
		*tv.Health.LinkQuality != 77 || len(tv.Technical) != 1 || tv.Technical[0].Kind != vakt.EventLowBattery {
		t.Fatalf("transmitter view %+v", tv)
	}
	if len(v.Alarms) != 2 || len(v.Staff) != 3 || !v.Staff[2].State.OnDuty || v.Staff[2].ID != "tech" {
		t.Fatalf("alarms %d staff %+v", len(v.Alarms), v.Staff)
	}
	// Immutable: a later change does not touch the view already handed out.
	count := v.Alarms[0].Count
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventLowBattery, Battery: &bat, Source: "mqtt"})
	r.waitView("the repeat", func(n *engine.View) bool { return n != v })
	if v.Alarms[0].Count != count {
		t.Fatal("a published view changed after publication")
	}
}

// blockingStore holds a commit while stuck is set, like a card that stopped answering.
type blockingStore struct {
	vakt.Store
	stuck   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Commit(ctx context.Context, b *vakt.Batch) error {
	if s.stuck.Load() {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Store.Commit(ctx, b)
}

// TestPingAnswersOnlyWhileLoopRuns: Ping answers from a running loop, and a Ping sent
// while the loop is stuck in a commit answers only once the loop moves again — so the
// sd_notify watchdog stops pinging and systemd restarts the gateway.
func TestPingAnswersOnlyWhileLoopRuns(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	bs := &blockingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r.wrap = func(s vakt.Store) vakt.Store { bs.Store = s; return bs }
	r.start(false)
	t.Cleanup(func() { r.stop() })
	if err := r.eng.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	bs.stuck.Store(true)
	if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"}, nil); err != nil {
		t.Fatal(err)
	}
	<-bs.entered
	done := make(chan error, 1)
	go func() { done <- r.eng.Ping(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("ping answered (%v) while the loop was stuck in a commit", err)
	case <-time.After(200 * time.Millisecond): // nothing is expected to happen
	}
	bs.stuck.Store(false)
	close(bs.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
