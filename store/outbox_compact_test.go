package store

import (
	"context"
	"encoding/json"
	"testing"

	vakt "github.com/vakt/vakt"
)

// TestCompactHealth: a compaction keeps the newest health sample per transmitter
// and every other entry, and the in-memory backlog count follows.
func TestCompactHealth(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	health := func(tx string, bat int) vakt.OutboxEntry {
		b, _ := json.Marshal(vakt.OutboxHealth{Transmitter: tx, Battery: &bat, Online: true})
		return vakt.OutboxEntry{Kind: vakt.OutboxKindHealth, Body: b}
	}
	for i := range 5 {
		b := &vakt.Batch{Outbox: []vakt.OutboxEntry{health("t-1", 90-i), health("t-2", 80-i),
			{Kind: vakt.OutboxKindAlarm, Body: []byte(`{"id":"a-1"}`)}},
			Origin: vakt.OutboxOrigin{Boot: "b-1", ClockSynced: true}}
		if err := db.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit(ctx, &vakt.Batch{CompactHealth: true}); err != nil {
		t.Fatal(err)
	}
	left, err := db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var alarms, health1, health2 int
	for _, e := range left {
		if e.Origin.Boot != "b-1" || !e.Origin.ClockSynced {
			t.Errorf("entry %d lost its origin: %+v", e.Seq, e.Origin)
		}
		switch {
		case e.Kind == vakt.OutboxKindAlarm:
			alarms++
		case string(e.Body) == `{"transmitter":"t-1","last_seen":"0001-01-01T00:00:00Z","battery":86,"online":true}`:
			health1++
		case string(e.Body) == `{"transmitter":"t-2","last_seen":"0001-01-01T00:00:00Z","battery":76,"online":true}`:
			health2++
		default:
			t.Errorf("entry %d kept: %s %s", e.Seq, e.Kind, e.Body)
		}
	}
	if alarms != 5 || health1 != 1 || health2 != 1 {
		t.Errorf("kept %d alarm entries, %d and %d newest health samples; want 5, 1, 1", alarms, health1, health2)
	}
	if n, _ := db.OutboxLen(ctx); n != int64(len(left)) {
		t.Errorf("OutboxLen %d, %d entries left", n, len(left))
	}
	st, err := db.OutboxStats(ctx)
	if err != nil || st.HealthEntries != 2 || st.HealthTransmitters != 2 || st.Entries != 7 || !st.OldestSynced {
		t.Errorf("stats %+v %v", st, err)
	}
}
