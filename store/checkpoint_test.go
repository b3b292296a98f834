package store

import (
	"os"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// TestCheckpointsBesideTheWriter (P5): the writer never checkpoints inside a
// commit (its autocheckpoint is off); the checkpointer copies the WAL into the main
// file once it holds the threshold's pages.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	db, path := newTestDB(t)
	if db.ckpt == nil {
		t.Fatal("no checkpointer started")
	}
	var auto int
	if err := db.w.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	type run struct{ log, copied int }
	ran := make(chan run, 16)
	db.ckpt.ran = func(log, copied int) { ran <- run{log, copied} }

	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// ~1 KB bodies on 1 KB pages: each entry takes at least a page.
	body := []byte(`{"id":"` + strings.Repeat("x", 900) + `"}`)
	threshold := int(db.ckpt.threshold)
	for written := 0; written < 2*threshold; written += 500 {
		b := &vakt.Batch{}
		for range 500 {
			b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindAlarm, Body: body})
		}
		commit(t, db, b)
	}
	select {
	case r := <-ran:
		if r.copied < threshold || r.log < threshold {
			t.Errorf("checkpoint copied %d of %d frames, want at least %d", r.copied, r.log, threshold)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint ran after twice the threshold's pages")
	}
	// In WAL mode only a checkpoint writes the main file: it now holds the pages.
	// (Some frames of the WAL are later versions of the same page.)
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.Size() - before.Size(); grew < int64(threshold/2)*1024 {
		t.Errorf("main file grew by %d bytes with the checkpoint, want at least half the threshold's %d pages", grew, threshold)
	}
}
