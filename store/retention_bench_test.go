package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// Retention benchmarks: what the hourly purge costs while it holds the write lock.
// BenchmarkRetentionIdle is a purge with nothing due on a busy site's database
// with the cloud away (100,000 entries queued in the outbox; the acknowledged check
// reads them only when something is old enough); its floor, in the same run, is one single-event commit (the fsync a
// press pays anyway). BenchmarkRetentionDelete deletes 10,000 old check-ins a purge.

func fillHistory(b *testing.B, db *DB, alarms, events, outbox int, at time.Time) {
	b.Helper()
	ctx := context.Background()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for i := range alarms {
		a := closedAlarm(vakt.AlarmID(fmt.Sprintf("a-%d", i+1)), at, vakt.StateCompleted)
		if _, err := tx.Exec(`INSERT INTO alarms (`+alarmColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			string(a.ID), string(a.Transmitter), string(a.Kind), 3, string(a.State), a.RaisedAt.UnixNano(), a.UpdatedAt.UnixNano(),
			1, "all", 1, nil, 0, "s-1", nil, "[]", nil, false, false, ""); err != nil {
			b.Fatal(err)
		}
	}
	for range events {
		if _, err := tx.Exec(`INSERT INTO events (transmitter, kind, priority, source, source_id, text, received_at, alarm_id, duplicate)
			VALUES ('room-101', 'check-in', 4, 'z2m', '', '', ?, '', 0)`, at.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	for i := range outbox {
		if _, err := tx.Exec(`INSERT INTO outbox (kind, body, at) VALUES ('alarm', ?, ?)`,
			[]byte(fmt.Sprintf(`{"id":"a-%d","transition":"alarm.raised","state":"raised"}`, i%max(alarms, 1)+1)), at.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRetentionIdle(b *testing.B) {
	ctx := context.Background()
	db, _ := newTestDB(b)
	fillHistory(b, db, 10_000, 100_000, 100_000, recent)
	db.maxPending = 1 << 40
	// The floor: one event committed alone.
	const floorRuns = 50
	start := time.Now()
	for i := range floorRuns {
		commit(b, db, &vakt.Batch{Events: []vakt.EventRecord{benchEvent(i)}})
	}
	floor := time.Since(start) / floorRuns
	p := purgeAll(cutoff, true)
	for b.Loop() {
		if res, err := db.PurgeRetention(ctx, p); err != nil || res.Total() != 0 {
			b.Fatalf("purge = %+v, %v", res, err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/purge")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-ms/commit")
}

// BenchmarkRetentionBacklog is the worst hourly case: the cloud has been away
// longer than the period, so 10,000 closed alarms are old enough but none is
// acknowledged, and the outbox (100,000 entries) is read to find that out. Above
// maxPendingCheck entries the purge does not read it (it waits for the cloud); the
// benchmark lifts that bound to show why it is there.
func BenchmarkRetentionBacklog(b *testing.B) {
	ctx := context.Background()
	db, _ := newTestDB(b)
	fillHistory(b, db, 10_000, 0, 100_000, old)
	db.maxPending = 1 << 40 // the check itself, however long the backlog
	p := purgeAll(cutoff, true)
	for b.Loop() {
		if res, err := db.PurgeRetention(ctx, p); err != nil || res.Total() != 0 {
			b.Fatalf("purge = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64((b.Elapsed()/time.Duration(b.N)).Microseconds())/1000, "ms/purge")
}

func BenchmarkRetentionDelete(b *testing.B) {
	ctx := context.Background()
	db, _ := newTestDB(b)
	p := vakt.RetentionPurge{Events: cutoff, At: t0}
	deleted := int64(0)
	for b.Loop() {
		b.StopTimer()
		fillHistory(b, db, 0, 10_000, 0, old)
		b.StartTimer()
		res, err := db.PurgeRetention(ctx, p)
		if err != nil || res.Events != 10_000 {
			b.Fatalf("purge = %+v, %v", res, err)
		}
		deleted += res.Events
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "rows/s")
}
