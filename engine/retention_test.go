package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

const day = 24 * time.Hour

// retentionRig is a rig with 90-day retention whose wall clock (the fake clock)
// and monotonic clock (mono) the test moves apart, and whose clock sync it sets.
type retentionRig struct {
	*rig
	mono   atomic.Int64
	synced atomic.Bool
	purged chan vakt.RetentionResult
}

// retentionWatch signals every purge the store ran.
type retentionWatch struct {
	vakt.Store
	ch chan vakt.RetentionResult
}

func (w retentionWatch) PurgeRetention(ctx context.Context, p vakt.RetentionPurge) (vakt.RetentionResult, error) {
	res, err := w.Store.PurgeRetention(ctx, p)
	w.ch <- res
	return res, err
}

// newRetentionRig purges only when the test calls purge (Retention.Manual), unless
// scheduled is given.
func newRetentionRig(t *testing.T, cloud bool, scheduled ...bool) *retentionRig {
	rr := &retentionRig{purged: make(chan vakt.RetentionResult, 16)}
	rr.synced.Store(true)
	rr.rig = &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		synced: rr.synced.Load,
		wrap:   func(s vakt.Store) vakt.Store { return retentionWatch{Store: s, ch: rr.purged} },
		retention: engine.Retention{Alarms: 90 * day, Events: 90 * day, Visits: 90 * day, EPR: 90 * day, Audit: 90 * day,
			CloudSync: cloud, Monotonic: func() time.Duration { return time.Duration(rr.mono.Load()) },
			Manual: len(scheduled) == 0 || !scheduled[0]},
	}
	rr.start(false)
	t.Cleanup(func() { rr.stop() })
	return rr
}

// history makes a completed alarm a-1 (with its events and visit) and an open
// alarm a-2, at t0.
func (rr *retentionRig) history() {
	t := rr.t
	ctx := context.Background()
	rr.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt", SourceID: "m-1"})
	if _, err := rr.eng.Accept(ctx, "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rr.eng.Complete(ctx, "near", "a-1", "assisted"); err != nil {
		t.Fatal(err)
	}
	rr.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt", SourceID: "m-2"})
	if _, err := rr.db.Alarm(ctx, "a-1"); err != nil {
		t.Fatalf("precondition: %v", err)
	}
}

// pass moves both clocks by d, as real time passing does.
func (rr *retentionRig) pass(d time.Duration) {
	rr.idle()
	rr.mono.Add(int64(d))
	rr.clock.Advance(d)
}

func (rr *retentionRig) has(id vakt.AlarmID) bool {
	rr.t.Helper()
	_, err := rr.db.Alarm(context.Background(), id)
	if err != nil && !errors.Is(err, vakt.ErrNotFound) {
		rr.t.Fatal(err)
	}
	return err == nil
}

func (rr *retentionRig) purge() vakt.RetentionResult {
	rr.t.Helper()
	res, err := rr.eng.PurgeRetention(context.Background())
	if err != nil {
		rr.t.Fatal(err)
	}
	<-rr.purged
	return res
}

// TestRetentionSyncOffAfterPeriod: without cloud sync a completed alarm goes with
// its events once its period passed, the open alarm stays, and the audit chain that
// lost its oldest entries still verifies.
func TestRetentionSyncOffAfterPeriod(t *testing.T) {
	rr := newRetentionRig(t, false)
	rr.history()
	rr.pass(89 * day)
	if res := rr.purge(); res.Total() != 0 {
		t.Errorf("purged %+v before the period passed", res)
	}
	rr.pass(2 * day)
	res := rr.purge()
	if rr.has("a-1") || !rr.has("a-2") {
		t.Errorf("after 91 days: a-1 kept %v (want gone), open a-2 kept %v (want kept)", rr.has("a-1"), rr.has("a-2"))
	}
	if res.Alarms != 1 || res.Events < 1 || res.Visits != 1 || res.Audit == 0 {
		t.Errorf("purge = %+v; want a-1, its event and visit, and audit entries", res)
	}
	if err := rr.db.VerifyAudit(context.Background()); err != nil {
		t.Errorf("verify audit after the purge: %v", err)
	}
	if len(rr.open()) != 1 {
		t.Errorf("open alarms = %v, want a-2 only", rr.open())
	}
}

// TestRetentionSyncOnNeedsAck: with cloud sync nothing the cloud has not
// acknowledged goes, however old; after the acknowledgement it does.
func TestRetentionSyncOnNeedsAck(t *testing.T) {
	rr := newRetentionRig(t, true)
	rr.history()
	rr.pass(91 * day)
	if res := rr.purge(); res.Total() != 0 || !rr.has("a-1") {
		t.Fatalf("purged %+v while the cloud had acknowledged nothing", res)
	}
	entries, err := rr.db.Outbox(context.Background(), 0, 0)
	if err != nil || len(entries) == 0 {
		t.Fatalf("outbox: %d entries, %v", len(entries), err)
	}
	if err := rr.eng.AcknowledgeOutbox(context.Background(), entries[len(entries)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if res := rr.purge(); res.Alarms != 1 || rr.has("a-1") || !rr.has("a-2") {
		t.Errorf("after the acknowledgement: purge %+v, a-1 kept %v, a-2 kept %v", res, rr.has("a-1"), rr.has("a-2"))
	}
}

// TestRetentionUntrustedClock: while the clock is not synchronised nothing is
// deleted and the purge says why.
func TestRetentionUntrustedClock(t *testing.T) {
	rr := newRetentionRig(t, false)
	rr.history()
	rr.pass(91 * day)
	rr.synced.Store(false)
	if _, err := rr.eng.PurgeRetention(context.Background()); !errors.Is(err, engine.ErrRetentionClock) {
		t.Errorf("purge with an unsynced clock = %v, want ErrRetentionClock", err)
	}
	if !rr.has("a-1") {
		t.Error("a-1 deleted while the clock was not trusted")
	}
}

// TestRetentionClockJumpBounded: the wall clock jumps a year ahead while an hour
// passes; new records stamped with the jumped clock do not move the purge either.
func TestRetentionClockJumpBounded(t *testing.T) {
	rr := newRetentionRig(t, false)
	rr.history()
	rr.idle()
	rr.mono.Add(int64(time.Hour))
	rr.clock.Advance(365 * day)
	rr.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	if res := rr.purge(); res.Total() != 0 || !rr.has("a-1") {
		t.Fatalf("a year's wall-clock jump purged %+v", res)
	}
	// Only real time moves it: 91 days of it later, a-1 goes.
	rr.pass(91 * day)
	if res := rr.purge(); res.Alarms != 1 || rr.has("a-1") {
		t.Errorf("91 real days after: purge %+v, a-1 kept %v", res, rr.has("a-1"))
	}
}

// TestRetentionRestartBound: the clock jumped forward while the gateway was off;
// the first purge after the start is bounded by the newest time recorded before
// it, not by the jumped clock.
func TestRetentionRestartBound(t *testing.T) {
	rr := newRetentionRig(t, false)
	rr.history()
	rr.stop()
	rr.clock.Advance(365 * day) // off for a "year" by the clock
	rr.mono.Store(0)
	rr.start(false)
	if res := rr.purge(); res.Total() != 0 || !rr.has("a-1") {
		t.Errorf("first purge after a jump during downtime deleted %+v", res)
	}
}

// TestRetentionRunsBySchedule: the purge runs by itself five minutes after the
// start, then hourly.
func TestRetentionRunsBySchedule(t *testing.T) {
	rr := newRetentionRig(t, false, true)
	rr.history()
	rr.pass(5 * time.Minute)
	<-rr.purged
	rr.pass(91 * day) // one timer: it fires once, an hour after the first
	<-rr.purged
	if rr.has("a-1") {
		t.Error("the scheduled purge left a-1")
	}
	rr.idle()
}
