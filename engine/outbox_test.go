package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// TestOutboxBodiesAreTheWireSchemas: every outbox kind the engine and the store
// queue is the sync contract's typed body (strict decode: no field outside the
// schema, so no position or name can slip out), stamped with the run's boot id and
// whether the wall clock was synced.
func TestOutboxBodiesAreTheWireSchemas(t *testing.T) {
	synced := false
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		boot: "b-test", synced: func() bool { return synced }}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	ctx := context.Background()

	bat, lqi := 80, 120
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Battery: &bat, LinkQuality: &lqi, Source: "mqtt"})
	synced = true // NTP set the clock
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Battery: &bat, LinkQuality: &lqi, Source: "mqtt"})
	a := r.open()[0]
	offered := a.Offers[0].Staff
	if _, err := r.eng.Accept(ctx, offered, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Complete(ctx, offered, a.ID, "assisted"); err != nil {
		t.Fatal(err)
	}
	v, err := r.eng.StartVisit(ctx, offered, "101", "r-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.EPRSent(ctx, offered, v.ID, "dips"); err != nil {
		t.Fatal(err)
	}

	entries, err := r.db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var transitions []string
	for _, e := range entries {
		if e.Origin.Boot != "b-test" || e.V != 1 {
			t.Errorf("entry %d (%s): boot %q v %d, want b-test v1", e.Seq, e.Kind, e.Origin.Boot, e.V)
		}
		kinds[e.Kind]++
		var into any
		switch e.Kind {
		case vakt.OutboxKindAlarm:
			into = &vakt.OutboxAlarm{}
		case vakt.OutboxKindVisit:
			into = &vakt.OutboxVisit{}
		case vakt.OutboxKindEPR:
			into = &vakt.OutboxEPR{}
		case vakt.OutboxKindHealth:
			into = &vakt.OutboxHealth{}
		case vakt.OutboxKindAudit:
			into = &vakt.OutboxAudit{}
		default:
			t.Fatalf("entry %d: unknown kind %q", e.Seq, e.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(e.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Errorf("entry %d (%s) is not the wire schema: %v: %s", e.Seq, e.Kind, err, e.Body)
		}
		if al, ok := into.(*vakt.OutboxAlarm); ok {
			transitions = append(transitions, al.Transition)
			if al.ID != string(a.ID) || al.Transmitter != "room-101" || al.Kind != "call" {
				t.Errorf("alarm body %+v", al)
			}
		}
		if h, ok := into.(*vakt.OutboxHealth); ok && (h.Battery == nil || *h.Battery != 80 || !h.Online) {
			t.Errorf("health body %s", e.Body)
		}
	}
	for _, k := range []string{"alarm", "visit", "epr", "health", "audit"} {
		if kinds[k] == 0 {
			t.Errorf("no %s entry in the outbox: %v", k, kinds)
		}
	}
	// The second, unchanged check-in queues no new health sample.
	if kinds["health"] != 1 {
		t.Errorf("%d health entries for one unchanged transmitter, want 1", kinds["health"])
	}
	if got := strings.Join(transitions, " "); !strings.HasPrefix(got, "alarm.raised") || !strings.Contains(got, "alarm.accepted") ||
		!strings.Contains(got, "alarm.completed") {
		t.Errorf("alarm transitions %q", got)
	}
	first, last := entries[0], entries[len(entries)-1]
	if first.Origin.ClockSynced || !last.Origin.ClockSynced {
		t.Errorf("clock_synced first %v last %v, want false then true", first.Origin.ClockSynced, last.Origin.ClockSynced)
	}
	if last.Origin.SinceBoot < first.Origin.SinceBoot {
		t.Errorf("since_boot went back: %v then %v", first.Origin.SinceBoot, last.Origin.SinceBoot)
	}
}
