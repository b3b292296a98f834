package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// syncBuffer is a log sink safe for the engine's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 7, section 4: every transition is logged at INFO by alarm id, so the demo
// terminal shows an accept worked; completing without presence records presence
// first; a presence after the completion is a conflict (409), not "not found".
func TestTransitionsLoggedCompleteImpliesPresence(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(), logs: logs}
	r.start(false)
	t.Cleanup(func() { r.stop() })

	r.ingest(vakt.Event{Transmitter: room.ID, Kind: vakt.EventCall, Source: "test"})
	id := r.open()[0].ID
	// Nobody answers the nearest tier in time: the alarm escalates to the site. The
	// timer's tick reaches the loop from its own goroutine: wait for far's offer.
	r.idle()
	r.clock.Advance(31 * time.Second)
	r.phones.wait(t, "the site tier's offer to far", func() bool { return r.phones.count("far", vakt.NoticeOffer) > 0 })
	if _, err := r.eng.Accept(ctx, "far", id); err != nil {
		t.Fatal(err)
	}
	a, err := r.eng.Complete(ctx, "far", id, "assisted")
	if err != nil || a.State != vakt.StateCompleted {
		t.Fatalf("complete straight after accept: %+v, %v", a, err)
	}
	for _, want := range []string{"alarm raised", "alarm offered", "alarm escalated", "alarm accepted", "alarm present", "alarm completed"} {
		if !strings.Contains(logs.String(), `msg="`+want+`" alarm=`+string(id)) {
			t.Errorf("no INFO line %q for %s in:\n%s", want, id, logs.String())
		}
	}
	seq, _ := r.db.AuditHead()
	audit, _ := r.db.AuditRange(ctx, 1, int(seq))
	var actions []string
	for _, e := range audit {
		if e.Subject == "alarm:"+string(id) && e.Actor == "staff:far" {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "alarm.accepted,alarm.presence,alarm.completed" {
		t.Errorf("audit of far's steps = %v, want accepted, presence, completed", actions)
	}

	for _, late := range []func() error{
		func() error { _, err := r.eng.Presence(ctx, "far", id); return err },
		func() error { _, err := r.eng.Complete(ctx, "far", id, ""); return err },
	} {
		if err := late(); !errors.Is(err, vakt.ErrConflict) || !strings.Contains(err.Error(), "already completed") {
			t.Errorf("a step after completion = %v, want a conflict saying it is already completed", err)
		}
	}
	if _, err := r.eng.Presence(ctx, "far", "a-999"); !errors.Is(err, vakt.ErrNotFound) {
		t.Errorf("presence on an alarm that never was = %v, want not found", err)
	}
}
