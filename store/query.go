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
// (limit <= 0: all).
func (db *DB) Outbox(ctx context.Context, afterSeq int64, limit int) ([]vakt.OutboxEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	entries, err := collect(func(s scanner) (vakt.OutboxEntry, error) {
		var (
			e  vakt.OutboxEntry
			at sql.NullInt64
		)
		err := s.Scan(&e.Seq, &e.Kind, &e.Body, &at)
		e.At = fromNanos(at)
		return e, err
	})(db.r.QueryContext(ctx, `SELECT seq, kind, body, at FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`,
		afterSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return entries, nil
}

// DeleteOutbox removes every entry with Seq <= uptoSeq, once the cloud acknowledged
// them. Only the sync uploader calls it. It writes, so it goes through the writer's
// single connection: it waits while a Commit holds that connection (database/sql
// queues it; SQLite's busy_timeout covers any other process holding the file).
func (db *DB) DeleteOutbox(ctx context.Context, uptoSeq int64) error {
	if err := db.writable(); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, uptoSeq)
	if err != nil {
		return fmt.Errorf("store: delete outbox: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil {
		db.outboxLen.Add(-n)
	}
	return nil
}

// OutboxLen is the number of entries waiting for the cloud. It is kept in memory
// (counted at Open, then moved by Commit and DeleteOutbox), because counting a
// backlog of a million rows on every status-page refresh would scan them all.
func (db *DB) OutboxLen(ctx context.Context) (int64, error) {
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
