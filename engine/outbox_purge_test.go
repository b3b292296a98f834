package engine_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// outboxPurgeWatch reports each finished outbox purge (none left) on ch; with off set,
// it purges nothing, as a gateway killed before its loop got to the rows.
type outboxPurgeWatch struct {
	vakt.Store
	off bool
	ch  chan struct{}
}

func (p *outboxPurgeWatch) PurgeAckedOutbox(ctx context.Context, limit int) (int, bool, error) {
	if p.off {
		return 0, false, nil
	}
	n, more, err := p.Store.PurgeAckedOutbox(ctx, limit)
	if err == nil && !more {
		select {
		case p.ch <- struct{}{}:
		default:
		}
	}
	return n, more, err
}

// outboxRows counts the outbox table's rows, acknowledged or not, behind the
// store's back.
func outboxRows(t *testing.T, path string) int {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitPurged waits until the outbox table holds want rows, woken by each finished
// purge.
func waitPurged(t *testing.T, path string, ch <-chan struct{}, want int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for outboxRows(t, path) != want {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for the acknowledged rows to go: %d rows, want %d", outboxRows(t, path), want)
		}
	}
}

// TestAcknowledgedRowsPurgedWhileIdle (P5): after AcknowledgeOutbox the backlog
// shrinks at once, and the loop deletes the acknowledged rows by itself once
// nothing else is queued; rows a previous run acknowledged but did not delete go
// after the next start, without any new acknowledgement.
func TestAcknowledgedRowsPurgedWhileIdle(t *testing.T) {
	ch := make(chan struct{}, 1)
	watch := &outboxPurgeWatch{ch: ch}
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		wrap: func(s vakt.Store) vakt.Store { watch.Store = s; return watch }}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	ctx := context.Background()

	ack := func() int64 {
		t.Helper()
		r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
		if err := r.eng.Audit(ctx, "technician", "config.loaded", "site:test"); err != nil {
			t.Fatal(err)
		}
		entries, err := r.db.PendingOutbox(ctx, 0, 0)
		if err != nil || len(entries) == 0 {
			t.Fatalf("nothing queued: %v", err)
		}
		last := entries[len(entries)-1].Seq
		if err := r.eng.AcknowledgeOutbox(ctx, last); err != nil {
			t.Fatal(err)
		}
		if n, _ := r.db.OutboxLen(ctx); n != 0 {
			t.Errorf("OutboxLen right after the acknowledgement = %d, want 0", n)
		}
		return last
	}
	ack()
	waitPurged(t, r.path, ch, 0)

	// A run that stops before its loop purged: the rows stay, acknowledged.
	r.stop()
	watch.off = true
	r.start(false)
	acked := ack()
	r.idle()
	if n := outboxRows(t, r.path); n == 0 {
		t.Fatal("precondition: the rows were deleted without a purge")
	}
	r.stop() // writes room-101's health, held since the call: one new sample
	watch.off = false
	r.start(false)
	fresh, err := r.db.PendingOutbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fresh {
		if e.Seq <= acked || e.Kind != vakt.OutboxKindHealth {
			t.Errorf("pending after the restart: entry %d (%s); want only the stop's health sample after %d", e.Seq, e.Kind, acked)
		}
	}
	if n, _ := r.db.OutboxLen(context.Background()); n != int64(len(fresh)) || n > 1 {
		t.Errorf("OutboxLen after the restart = %d, want %d (at most the stop's health sample): acknowledged entries counted again", n, len(fresh))
	}
	waitPurged(t, r.path, ch, len(fresh))
}
