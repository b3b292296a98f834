package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// lastQueued is the seq of the newest pending outbox entry.
func (r *rig) lastQueued() int64 {
	r.t.Helper()
	entries, err := r.db.PendingOutbox(context.Background(), 0, 0)
	if err != nil || len(entries) == 0 {
		r.t.Fatalf("nothing queued: %v", err)
	}
	return entries[len(entries)-1].Seq
}

func (r *rig) storedAck() int64 {
	r.t.Helper()
	n, err := r.db.OutboxAcked(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// TestSmallAckWaitsForCompany (P6): a quiet site's acknowledgement is answered at
// once and committed with the next commit that comes anyway — or alone after
// ackLinger (30 s) — instead of a commit of its own; OutboxAckQueued says where
// the next upload starts meanwhile.
func TestSmallAckWaitsForCompany(t *testing.T) {
	r := lingerRig(t, 10*time.Second)
	ctx := context.Background()
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	r.idle()
	last, timers, commits := r.lastQueued(), r.clock.Pending(), r.eng.Stats().Commits
	if err := r.eng.AcknowledgeOutbox(ctx, last); err != nil {
		t.Fatal(err)
	}
	untilLingering(t, r, timers)
	if got := r.storedAck(); got != 0 || r.eng.OutboxAckQueued() != last {
		t.Fatalf("while it waits: stored %d, queued %d; want 0 and %d", got, r.eng.OutboxAckQueued(), last)
	}
	// A press ends the wait: one commit holds both.
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	if got := r.storedAck(); got != last {
		t.Fatalf("after the press's commit the stored acknowledgement is %d, want %d", got, last)
	}
	if n := r.eng.Stats().Commits - commits; n != 1 {
		t.Fatalf("the acknowledgement and the press took %d commits, want 1", n)
	}

	// Alone, it commits ackLinger after the first one that waited (whose timer
	// is still armed: one timer for all that wait).
	r.idle()
	last, commits = r.lastQueued(), r.eng.Stats().Commits
	if err := r.eng.AcknowledgeOutbox(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got := r.storedAck(); got == last {
		t.Fatal("the second acknowledgement was committed at once")
	}
	r.clock.Advance(30 * time.Second)
	r.untilCommits(commits + 1)
	if got := r.storedAck(); got != last {
		t.Fatalf("after 30 s the stored acknowledgement is %d, want %d", got, last)
	}
}

// TestDrainAckCommitsAtOnce: an acknowledgement of a drain's batch (1,000 entries
// or more) is committed before AcknowledgeOutbox returns, as before.
func TestDrainAckCommitsAtOnce(t *testing.T) {
	r := lingerRig(t, 10*time.Second)
	ctx := context.Background()
	queueFixture(t, r, 1000)
	last := r.lastQueued()
	if err := r.eng.AcknowledgeOutbox(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got := r.storedAck(); got != last {
		t.Fatalf("stored acknowledgement %d when AcknowledgeOutbox returned, want %d", got, last)
	}

	// After a restart a small acknowledgement past that stored one waits again: the
	// size is counted from the stored acknowledgement, not from seq 0.
	r.stop()
	r.start(false)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	r.idle()
	small, timers := r.lastQueued(), r.clock.Pending()
	if err := r.eng.AcknowledgeOutbox(ctx, small); err != nil {
		t.Fatal(err)
	}
	untilLingering(t, r, timers)
	if got := r.storedAck(); got != last {
		t.Fatalf("a small acknowledgement after a restart was committed at once (stored %d), want it waiting", got)
	}
}

// queueFixture queues n health samples beside the engine (the store serialises
// commits), as a backlog the cloud then acknowledges.
func queueFixture(t *testing.T, r *rig, n int) {
	t.Helper()
	b := &vakt.Batch{}
	for i := range n {
		b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindHealth, At: t0,
			Body: fmt.Appendf(nil, `{"transmitter":"fixture-%d","online":true}`, i)})
	}
	if err := r.db.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// TestQuietPurgeWaitsForCompany (P6): with OutboxPurgeQuiet a few acknowledged
// rows stay in the file (out of every read) instead of a delete commit per
// acknowledgement; once purgeRowsMin (128) or more are acknowledged they go at once.
func TestQuietPurgeWaitsForCompany(t *testing.T) {
	ch := make(chan struct{}, 1)
	watch := &outboxPurgeWatch{ch: ch}
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		purgeQuiet: time.Hour, wrap: func(s vakt.Store) vakt.Store { watch.Store = s; return watch }}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	ctx := context.Background()
	waitPurged(t, r.path, ch, 0) // the start's first check

	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	if err := r.eng.AcknowledgeOutbox(ctx, r.lastQueued()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.idle()
	}
	few := outboxRows(t, r.path)
	if few == 0 {
		t.Fatal("a few acknowledged rows were deleted at once, want them kept for the quiet period")
	}
	if n, _ := r.db.OutboxLen(ctx); n != 0 {
		t.Fatalf("OutboxLen %d with every entry acknowledged, want 0", n)
	}

	queueFixture(t, r, 200)
	if err := r.eng.AcknowledgeOutbox(ctx, r.lastQueued()); err != nil {
		t.Fatal(err)
	}
	waitPurged(t, r.path, ch, 0)
}
