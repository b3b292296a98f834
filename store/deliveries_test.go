package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// TestDeliveriesSurviveReopen: a queued forward committed with its alarm is loaded
// after a reopen with the same content (sequence included); a finished one is gone.
func TestDeliveriesSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	db := openTest(t, path)
	a := openAlarm()
	d1 := vakt.Delivery{ID: string(a.ID) + "/1", Alarm: a.ID, Target: "arc", Zone: 101, Kind: a.Kind,
		Seq: 42, Created: time.Unix(100, 0).UTC()}
	d2 := vakt.Delivery{ID: string(a.ID) + "/2", Alarm: a.ID, Target: "pager:dect", Address: "123",
		Text: "ROOM 101 CALL", Created: time.Unix(101, 0).UTC()}
	if err := db.Commit(ctx, &vakt.Batch{Alarms: []vakt.Alarm{a}, Deliveries: []vakt.Delivery{d1, d2}}); err != nil {
		t.Fatal(err)
	}
	d1.Delivered = true
	if err := db.Commit(ctx, &vakt.Batch{Deliveries: []vakt.Delivery{d1}, DeliveriesDone: []string{d2.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path)
	snap, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Deliveries) != 1 || snap.Deliveries[0] != d1 {
		t.Fatalf("deliveries after reopen = %+v, want only %+v", snap.Deliveries, d1)
	}
}
