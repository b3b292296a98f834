package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

// Reads below go through the read-only pool and never wait for Commit.

// Alarm returns one alarm, open or not; vakt.ErrNotFound if there is none.
func (db *DB) Alarm(ctx context.Context, id vakt.AlarmID) (vakt.Alarm, error) {
	a, err := scanAlarm(db.r.QueryRowContext(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("store: alarm %s: %w", id, vakt.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: alarm %s: %w", id, err)
	}
	return a, nil
}

// AlarmHistory returns alarms raised at or after since, open or not, newest first,
// at most limit of them (limit <= 0: all). A zero since means every alarm.
func (db *DB) AlarmHistory(ctx context.Context, since time.Time, limit int) ([]vakt.Alarm, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	q, args := `SELECT `+alarmColumns+` FROM alarms ORDER BY raised_at DESC, id DESC LIMIT ?`, []any{limit}
	if !since.IsZero() {
		q = `SELECT ` + alarmColumns + ` FROM alarms WHERE raised_at >= ? ORDER BY raised_at DESC, id DESC LIMIT ?`
		args = []any{since.UnixNano(), limit}
	}
	alarms, err := collect(scanAlarm)(db.r.QueryContext(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("store: alarm history: %w", err)
	}
	return alarms, nil
}

// EventsForAlarm returns the events that opened or repeated an alarm, in the order
// they were committed.
func (db *DB) EventsForAlarm(ctx context.Context, id vakt.AlarmID) ([]vakt.EventRecord, error) {
	if id == "" {
		return nil, nil
	}
	events, err := collect(scanEvent)(db.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE alarm_id = ? AND alarm_id <> '' ORDER BY id`, id))
	if err != nil {
		return nil, fmt.Errorf("store: events of alarm %s: %w", id, err)
	}
	return events, nil
}

// Visits returns a staff member's visits, oldest first.
func (db *DB) Visits(ctx context.Context, staff vakt.StaffID) ([]vakt.Visit, error) {
	visits, err := collect(scanVisit)(db.r.QueryContext(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE staff_id = ? ORDER BY start_at, id`, staff))
	if err != nil {
		return nil, fmt.Errorf("store: visits of %s: %w", staff, err)
	}
	return visits, nil
}

// Outbox returns up to limit queued entries with Seq > afterSeq, in Seq order
// (limit <= 0: all). Entries the cloud acknowledged are never among them, also
// while their rows wait for PurgeAckedOutbox.
func (db *DB) Outbox(ctx context.Context, afterSeq int64, limit int) ([]vakt.OutboxEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	entries, err := collect(func(s scanner) (vakt.OutboxEntry, error) {
		var (
			e     vakt.OutboxEntry
			at    sql.NullInt64
			since int64
		)
		err := s.Scan(&e.Seq, &e.Kind, &e.V, &e.Body, &at, &e.Origin.ClockSynced, &e.Origin.Boot, &since)
		e.At = fromNanos(at)
		e.Origin.SinceBoot = time.Duration(since) * time.Millisecond
		return e, err
	})(db.r.QueryContext(ctx, `SELECT seq, kind, v, body, at, clock_synced, boot, since_boot_ms FROM outbox
		WHERE seq > max(?, `+ackedSeq+`) ORDER BY seq LIMIT ?`,
		afterSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return entries, nil
}

// PendingOutbox is Outbox under the name the sync uploader's interface uses: up to
// limit entries with Seq > afterSeq, in Seq order, read from the read pool. Entries
// leave it only by a commit with Batch.OutboxAckedUpTo (the engine's
// AcknowledgeOutbox), never here.
func (db *DB) PendingOutbox(ctx context.Context, afterSeq int64, limit int) ([]vakt.OutboxEntry, error) {
	return db.Outbox(ctx, afterSeq, limit)
}

// OutboxStats describes the outbox's backlog.
type OutboxStats struct {
	Entries int64
	Bytes   int64     // sum of the bodies' lengths
	Oldest  time.Time // At of the oldest entry; zero when empty
	// OldestSynced: the clock was synced when the oldest entry was made.
	OldestSynced bool
	// HealthEntries and HealthBytes are the health samples among them, for
	// HealthTransmitters distinct transmitters (the backlog policy's input).
	HealthEntries, HealthBytes, HealthTransmitters int64
}

// OutboxStats counts the backlog (what the cloud has not acknowledged). It reads every entry's length, so it is for the
// status page and the uploader's backlog check, not for every commit; OutboxLen
// is the cheap count.
func (db *DB) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var (
		st     OutboxStats
		oldest sql.NullInt64
	)
	var synced sql.NullBool
	err := db.r.QueryRowContext(ctx, `WITH pending AS (SELECT * FROM outbox WHERE seq > `+ackedSeq+`)
		SELECT count(*), coalesce(sum(length(body)), 0),
		(SELECT at FROM pending ORDER BY seq LIMIT 1), (SELECT clock_synced FROM pending ORDER BY seq LIMIT 1),
		coalesce(sum(health_of IS NOT NULL), 0), coalesce(sum(CASE WHEN health_of IS NOT NULL THEN length(body) END), 0),
		count(DISTINCT health_of) FROM pending`).Scan(&st.Entries, &st.Bytes, &oldest, &synced,
		&st.HealthEntries, &st.HealthBytes, &st.HealthTransmitters)
	if err != nil {
		return OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	st.OldestSynced = synced.Bool
	st.Oldest = fromNanos(oldest)
	return st, nil
}

// OutboxAcked is the highest seq the cloud acknowledged (0 before the first).
func (db *DB) OutboxAcked(ctx context.Context) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'outbox_acked'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: outbox acknowledged seq: %w", err)
	}
	return n, nil
}

// DirectoryCursor is the cloud directory feed's cursor last committed ("" before
// the first page).
func (db *DB) DirectoryCursor(ctx context.Context) (string, error) {
	var c string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM sync_state WHERE key = 'directory_cursor'`).Scan(&c)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: directory cursor: %w", err)
	}
	return c, nil
}

// OutboxLen is the number of entries waiting for the cloud. It is kept in memory
// (counted at Open, then moved by Commit), because counting a
// backlog of a million rows on every status-page refresh would scan them all.
//
// Right after Open the count of the entries already there runs in the background
// (see countOutbox): OutboxLen waits for it, bounded by ctx.
func (db *DB) OutboxLen(ctx context.Context) (int64, error) {
	if db.counting != nil {
		select {
		case <-db.counting:
		case <-ctx.Done():
			return db.outboxLen.Load(), ctx.Err()
		}
	}
	return db.outboxLen.Load(), nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns nil when SQLite answers
// "ok", otherwise an error listing the first problems it reports.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, `PRAGMA integrity_check(20)`)
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("store: integrity check: %w", err)
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return nil
	}
	return fmt.Errorf("store: integrity check: %s", strings.Join(problems, "; "))
}
