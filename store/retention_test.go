package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

const day = 24 * time.Hour

var (
	old    = t0.Add(-200 * day) // past every 90-day period
	recent = t0.Add(-day)
	cutoff = t0.Add(-90 * day)
	// epoch is a time taken before the clock was synced (a box without an RTC).
	epoch = time.Unix(3600, 0).UTC()
)

func closedAlarm(id vakt.AlarmID, at time.Time, state vakt.AlarmState) vakt.Alarm {
	return vakt.Alarm{ID: id, Transmitter: "room-101", Kind: vakt.EventCall, Priority: 3, State: state,
		RaisedAt: at.Add(-time.Minute), UpdatedAt: at, Count: 1, Policy: "all", Offers: []vakt.Offer{}}
}

// history commits one of each kind, old and recent, each with its outbox entry as
// the engine writes them, and returns the seq of the last outbox entry.
type historyRow struct {
	alarm vakt.Alarm
	visit vakt.Visit
	epr   vakt.EPRRecord
	event vakt.EventRecord
}

func historyBatch(r historyRow) *vakt.Batch {
	b := &vakt.Batch{}
	if r.alarm.ID != "" {
		b.Alarms = append(b.Alarms, r.alarm)
		b.Events = append(b.Events, vakt.EventRecord{Event: vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall,
			Source: "z2m", SourceID: string(r.alarm.ID), ReceivedAt: r.alarm.RaisedAt}, Alarm: r.alarm.ID})
		body, _ := json.Marshal(vakt.OutboxAlarm{ID: string(r.alarm.ID), State: string(r.alarm.State)})
		b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindAlarm, Body: body, At: r.alarm.UpdatedAt})
		b.Audit = append(b.Audit, vakt.AuditRecord{At: r.alarm.UpdatedAt, Actor: "system", Action: "alarm." + string(r.alarm.State),
			Subject: "alarm:" + string(r.alarm.ID)})
	}
	if r.visit.ID != "" {
		b.Visits = append(b.Visits, r.visit)
		body, _ := json.Marshal(vakt.OutboxVisit{ID: string(r.visit.ID), Staff: string(r.visit.Staff)})
		b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindVisit, Body: body, At: r.visit.Start})
	}
	if r.epr.Visit != "" {
		b.EPR = append(b.EPR, r.epr)
		body, _ := json.Marshal(vakt.OutboxEPR{Visit: string(r.epr.Visit), System: r.epr.System})
		b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindEPR, Body: body, At: r.epr.SentAt})
	}
	if r.event.Transmitter != "" {
		b.Events = append(b.Events, r.event)
	}
	return b
}

func checkIn(at time.Time) vakt.EventRecord {
	return vakt.EventRecord{Event: vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "z2m", ReceivedAt: at}}
}

func visitAt(id vakt.VisitID, end time.Time) vakt.Visit {
	return vakt.Visit{ID: id, Staff: "s-1", Room: "101", Resident: "r-7", Start: end.Add(-time.Hour), End: end, Note: "assisted"}
}

func purgeAll(at time.Time, acked bool) vakt.RetentionPurge {
	return vakt.RetentionPurge{Alarms: at, Events: at, Visits: at, EPR: at, Audit: at, RequireAcked: acked, At: t0}
}

func ids(t *testing.T, db *DB, query string) []string {
	t.Helper()
	rows, err := db.r.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func wantIDs(t *testing.T, db *DB, what, query string, want ...string) {
	t.Helper()
	got := ids(t, db, query)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// seedHistory: a-1 old and acked, a-2 old but still in the outbox, a-3 recent, a-4
// old but still open; the same pattern for visits (v-4: still going on) and EPR
// records; two check-ins, one old and one recent.
func seedHistory(t *testing.T, db *DB) {
	t.Helper()
	commit(t, db, historyBatch(historyRow{alarm: closedAlarm("a-1", old, vakt.StateCompleted),
		visit: visitAt("v-1", old), epr: vakt.EPRRecord{Visit: "v-1", System: "epr", SentAt: old, Staff: "s-1"},
		event: checkIn(old)}))
	acked := db.outboxLen.Load()
	var last int64
	if err := db.r.QueryRow(`SELECT max(seq) FROM outbox`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: last})
	purgeAcked(t, db) // as the engine's loop does once idle
	if db.outboxLen.Load() != 0 || acked == 0 {
		t.Fatalf("precondition: outbox not drained (%d of %d)", db.outboxLen.Load(), acked)
	}
	commit(t, db, historyBatch(historyRow{alarm: closedAlarm("a-2", old.Add(time.Hour), vakt.StateCancelled),
		visit: visitAt("v-2", old.Add(time.Hour)), epr: vakt.EPRRecord{Visit: "v-2", System: "epr", SentAt: old.Add(time.Hour), Staff: "s-1"}}))
	commit(t, db, historyBatch(historyRow{alarm: closedAlarm("a-3", recent, vakt.StateCompleted),
		visit: visitAt("v-3", recent), epr: vakt.EPRRecord{Visit: "v-3", System: "epr", SentAt: recent, Staff: "s-1"},
		event: checkIn(recent)}))
	open := closedAlarm("a-4", old, vakt.StateAccepted)
	openVisit := vakt.Visit{ID: "v-4", Staff: "s-1", Room: "102", Start: old}
	commit(t, db, &vakt.Batch{Alarms: []vakt.Alarm{open}, Visits: []vakt.Visit{openVisit}})
}

// TestRetentionSyncOn: with cloud sync, each period deletes what is older and
// acknowledged, and keeps what the cloud has not acknowledged, what is recent, and
// open alarms and visits; an alarm's events go with it.
func TestRetentionSyncOn(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	seedHistory(t, db)

	res, err := db.PurgeRetention(ctx, purgeAll(cutoff, true))
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, db, "alarms", `SELECT id FROM alarms`, "a-2", "a-3", "a-4")
	wantIDs(t, db, "alarm events", `SELECT alarm_id FROM events WHERE alarm_id <> ''`, "a-2", "a-3")
	wantIDs(t, db, "check-ins", `SELECT received_at FROM events WHERE alarm_id = ''`, fmt.Sprint(recent.UnixNano()))
	wantIDs(t, db, "visits", `SELECT id FROM visits`, "v-2", "v-3", "v-4")
	wantIDs(t, db, "epr records", `SELECT visit_id FROM epr_records`, "v-2", "v-3")
	// Audit: a-1's entry (seq 1) was acknowledged and old; a-2's is still queued.
	wantIDs(t, db, "audit", `SELECT seq FROM audit WHERE action <> 'retention.purged'`, "2", "3")
	want := vakt.RetentionResult{Alarms: 1, Events: 2, Visits: 1, EPR: 1, Audit: 1}
	if res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	if err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit after the purge: %v", err)
	}

	// The purge is audited, ids and counts only, and queued for the cloud.
	var subject string
	if err := db.r.QueryRow(`SELECT subject FROM audit WHERE action = 'retention.purged'`).Scan(&subject); err != nil {
		t.Fatal(err)
	}
	if subject != "retention:alarms=1,events=2,visits=1,epr_records=1,audit=1,outbox=0" {
		t.Errorf("audit subject = %q", subject)
	}
	wantIDs(t, db, "queued audit", `SELECT json_extract(CAST(body AS TEXT), '$.action') FROM outbox WHERE kind = 'audit'`,
		"alarm.cancelled", "alarm.completed", "retention.purged")

	// Once the cloud acknowledged the rest, a-2 and its rows go too.
	var last int64
	if err := db.r.QueryRow(`SELECT max(seq) FROM outbox`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: last})
	if _, err := db.PurgeRetention(ctx, purgeAll(cutoff, true)); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, db, "alarms after ack", `SELECT id FROM alarms`, "a-3", "a-4")
	wantIDs(t, db, "visits after ack", `SELECT id FROM visits`, "v-3", "v-4")
	wantIDs(t, db, "epr after ack", `SELECT visit_id FROM epr_records`, "v-3")
	if err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit after the second purge: %v", err)
	}
}

// TestRetentionSyncOff: without cloud sync the period alone decides, and outbox
// entries older than every cutoff (no cloud will take them) go too.
func TestRetentionSyncOff(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	seedHistory(t, db)
	if _, err := db.PurgeRetention(ctx, purgeAll(cutoff, false)); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, db, "alarms", `SELECT id FROM alarms`, "a-3", "a-4")
	wantIDs(t, db, "visits", `SELECT id FROM visits`, "v-3", "v-4")
	wantIDs(t, db, "epr records", `SELECT visit_id FROM epr_records`, "v-3")
	wantIDs(t, db, "outbox", `SELECT coalesce(json_extract(CAST(body AS TEXT), '$.id'), json_extract(CAST(body AS TEXT), '$.visit'),
		json_extract(CAST(body AS TEXT), '$.action')) FROM outbox`, "a-3", "v-3", "v-3", "alarm.completed", "retention.purged")
	var n int64
	if err := db.r.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got := db.outboxLen.Load(); got != n {
		t.Errorf("cached outbox length %d, table holds %d", got, n)
	}
	if err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}

// TestRetentionNothingDue: nothing older than the cutoff: nothing deleted, and no
// audit entry for an empty purge.
func TestRetentionNothingDue(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	seedHistory(t, db)
	seq, _ := db.AuditHead()
	res, err := db.PurgeRetention(ctx, purgeAll(old.Add(-day), false))
	if err != nil {
		t.Fatal(err)
	}
	if res.Total() != 0 {
		t.Errorf("deleted %+v before the oldest row", res)
	}
	if s, _ := db.AuditHead(); s != seq {
		t.Errorf("an empty purge was audited (head %d -> %d)", seq, s)
	}
}

// TestRetentionUnsyncedTimes: a record stamped while the clock was unsynced (1970)
// has no known age. It goes with a later trusted record that is past the period,
// and stays when every later record is recent (it may be from this morning's boot).
func TestRetentionUnsyncedTimes(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	commit(t, db, &vakt.Batch{Events: []vakt.EventRecord{checkIn(epoch)}, Visits: []vakt.Visit{visitAt("v-early", epoch)},
		Audit: []vakt.AuditRecord{{At: epoch, Actor: "system", Action: "gateway.started", Subject: "gateway"}}})
	commit(t, db, &vakt.Batch{Events: []vakt.EventRecord{checkIn(old)}, Visits: []vakt.Visit{visitAt("v-old", old)},
		Audit: []vakt.AuditRecord{{At: old, Actor: "system", Action: "gateway.synced", Subject: "gateway"}}})
	commit(t, db, &vakt.Batch{Events: []vakt.EventRecord{checkIn(epoch)}, Visits: []vakt.Visit{visitAt("v-boot", epoch)},
		Audit: []vakt.AuditRecord{{At: epoch, Actor: "system", Action: "gateway.started", Subject: "gateway"}}})
	if _, err := db.PurgeRetention(ctx, purgeAll(cutoff, false)); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, db, "visits", `SELECT id FROM visits`, "v-boot")
	wantIDs(t, db, "check-ins", `SELECT received_at FROM events`, fmt.Sprint(epoch.UnixNano()))
	wantIDs(t, db, "audit", `SELECT seq FROM audit WHERE action <> 'retention.purged'`, "3")
	if err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}

// TestRetentionLimit: a purge deletes at most Limit rows per table and says more is
// left; the next one goes on.
func TestRetentionLimit(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	b := &vakt.Batch{}
	for i := range 5 {
		b.Events = append(b.Events, checkIn(old.Add(time.Duration(i)*time.Second)))
	}
	commit(t, db, b)
	p := vakt.RetentionPurge{Events: cutoff, Limit: 3, At: t0}
	res, err := db.PurgeRetention(ctx, p)
	if err != nil || res.Events != 3 || !res.More {
		t.Fatalf("first purge = %+v, %v; want 3 events and more", res, err)
	}
	res, err = db.PurgeRetention(ctx, p)
	if err != nil || res.Events != 2 || res.More {
		t.Fatalf("second purge = %+v, %v; want 2 events, no more", res, err)
	}
}

// TestRetentionAuditVerifies: after the oldest audit entries are deleted the chain
// verifies from the anchor, also read-only (what `gateway verify-audit` opens) and
// after a restart; an edit, a deleted entry or a moved anchor is still caught.
func TestRetentionAuditVerifies(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*DB, string) {
		db, path := newTestDB(t)
		for i := range 6 {
			at := old.Add(time.Duration(i) * time.Hour)
			if i >= 3 {
				at = recent.Add(time.Duration(i) * time.Minute)
			}
			commit(t, db, &vakt.Batch{Audit: []vakt.AuditRecord{{At: at, Actor: "staff:s-1", Action: "alarm.accepted",
				Subject: fmt.Sprintf("alarm:a-%d", i)}}})
		}
		res, err := db.PurgeRetention(ctx, vakt.RetentionPurge{Audit: cutoff, At: t0})
		if err != nil || res.Audit != 3 {
			t.Fatalf("purge = %+v, %v; want 3 audit entries", res, err)
		}
		return db, path
	}

	t.Run("green", func(t *testing.T) {
		db, path := setup(t)
		if n, err := db.VerifyAuditCount(ctx); err != nil || n != 4 {
			t.Errorf("VerifyAuditCount = %d, %v; want 4 entries (4..7) intact", n, err)
		}
		if seq, hash, _ := db.AuditAnchor(ctx); seq != 3 || hash == "" {
			t.Errorf("anchor = %d %q, want entry 3", seq, hash)
		}
		db.Close()
		ro, err := OpenReadOnly(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if n, err := ro.VerifyAuditCount(ctx); err != nil || n != 4 {
			t.Errorf("read-only VerifyAuditCount after restart = %d, %v; want 4", n, err)
		}
	})
	for _, tc := range []struct {
		name   string
		tamper []string
		seq    int64
	}{
		{"edited", []string{`UPDATE audit SET actor = 'staff:s-9' WHERE seq = 5`}, 5},
		{"deleted first kept", []string{`DELETE FROM audit WHERE seq = 4`}, 4},
		{"anchor moved over a deletion", []string{`DELETE FROM audit WHERE seq = 4`,
			`UPDATE meta SET value = 4 WHERE key = 'audit_anchor_seq'`}, 5},
		{"anchor hash rewritten", []string{`UPDATE meta SET value = X'00' WHERE key = 'audit_anchor_hash'`}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := setup(t)
			raw := rawDB(t, path)
			for _, q := range tc.tamper {
				execSQL(t, raw, q)
			}
			var ae *AuditError
			err := db.VerifyAudit(ctx)
			if !errors.As(err, &ae) || ae.Seq != tc.seq {
				t.Errorf("VerifyAudit = %v, want an *AuditError naming entry %d", err, tc.seq)
			}
		})
	}
}

// TestRetentionLeavesNoTrace: a purged visit's text is in neither the database
// file nor its WAL once the engine's scrub (PurgePositions' checkpoint) ran.
func TestRetentionLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	const marker = "resident-zq7xk-retention-marker"
	v := visitAt("v-marker", old)
	v.Resident = marker
	commit(t, db, &vakt.Batch{Visits: []vakt.Visit{v}})
	if err := db.checkpoint(ctx); err != nil { // into the main file too
		t.Fatal(err)
	}
	commit(t, db, &vakt.Batch{Visits: []vakt.Visit{visitAt("v-kept", recent)}})
	if !contains(t, path, []byte(marker)) {
		t.Fatal("precondition: marker not in the files")
	}
	res, err := db.PurgeRetention(ctx, vakt.RetentionPurge{Visits: cutoff, At: t0})
	if err != nil || res.Visits != 1 {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	if _, err := db.PurgePositions(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if hits := found(t, path, needles(marker)); len(hits) > 0 {
		t.Errorf("purged visit still in the files: %v", hits)
	}
	if !strings.Contains(strings.Join(ids(t, db, `SELECT id FROM visits`), ","), "v-kept") {
		t.Error("recent visit lost")
	}
}

// TestRetentionKeepsQueuedDelivery: a closed alarm whose ARC restore is still queued
// stays (with its events) until the delivery is done.
func TestRetentionKeepsQueuedDelivery(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	b := historyBatch(historyRow{alarm: closedAlarm("a-1", old, vakt.StateCompleted)})
	b.Deliveries = []vakt.Delivery{{ID: "a-1/1", Alarm: "a-1", Target: "arc", Restore: true, Kind: vakt.EventCall, Created: old}}
	commit(t, db, b)
	if res, err := db.PurgeRetention(ctx, purgeAll(cutoff, false)); err != nil || res.Alarms != 0 {
		t.Fatalf("purge with a queued delivery = %+v, %v; want the alarm kept", res, err)
	}
	commit(t, db, &vakt.Batch{DeliveriesDone: []string{"a-1/1"}})
	if res, err := db.PurgeRetention(ctx, purgeAll(cutoff, false)); err != nil || res.Alarms != 1 || res.Events != 1 {
		t.Fatalf("purge after the delivery = %+v, %v; want a-1 and its event", res, err)
	}
}

// TestRetentionWaitsForBacklog: with the cloud far behind (more queued than the
// acknowledged check reads), only events go; the rest waits, however old.
func TestRetentionWaitsForBacklog(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	seedHistory(t, db)
	db.maxPending = 2
	res, err := db.PurgeRetention(ctx, purgeAll(cutoff, true))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Backlog || res.Alarms != 0 || res.Visits != 0 || res.EPR != 0 || res.Audit != 0 || res.Events != 1 {
		t.Errorf("purge with a backlog = %+v; want the old check-in only, and Backlog", res)
	}
	wantIDs(t, db, "alarms", `SELECT id FROM alarms`, "a-1", "a-2", "a-3", "a-4")
}
