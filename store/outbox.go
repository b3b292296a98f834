package store

import (
	"context"
	"fmt"
)

// The outbox's acknowledged entries (P5). An acknowledgement (Batch.OutboxAckedUpTo)
// only moves the watermark meta.outbox_acked, one small write in the commit; the
// rows at or below it are invisible to every outbox read from then on (Outbox,
// PendingOutbox, OutboxStats, OutboxLen, the retention's pending set, the health
// compaction) and are deleted later by PurgeAckedOutbox, a bounded chunk at a time,
// which the engine's loop calls only while nothing else is queued. A restart
// between the watermark and the deletion re-sends nothing: the uploader starts
// after the watermark (Acked), and the rows below it are deleted after the start.
//
// ackedSeq is the watermark as an SQL expression, read in the statement's own
// snapshot (never a cached value that a concurrent commit could move).
const ackedSeq = `(SELECT coalesce(max(value), 0) FROM meta WHERE key = 'outbox_acked')`

// PurgeAckedOutbox deletes up to limit acknowledged outbox entries, oldest first,
// in one transaction, and reports how many it deleted and whether acknowledged
// entries remain. secure_delete zeroes the deleted rows in the pages the
// transaction writes; the next checkpoint copies those pages into the main file,
// as for any delete. It changes no count the engine or the uploader reads: the
// acknowledgement already took the entries out of the backlog.
func (db *DB) PurgeAckedOutbox(ctx context.Context, limit int) (deleted int, more bool, err error) {
	if limit <= 0 {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: limit %d: must be positive", limit)
	}
	if err := db.writable(); err != nil {
		return 0, false, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writable(); err != nil {
		return 0, false, err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: %w", err)
	}
	defer tx.Rollback()
	// The rowid range of the first limit+1 acknowledged rows: a range delete on the
	// primary key, and whether one is left beyond it.
	var upTo, next int64
	if err := tx.QueryRowContext(ctx, `SELECT
		coalesce((SELECT seq FROM outbox WHERE seq <= `+ackedSeq+` ORDER BY seq LIMIT 1 OFFSET ?), 0),
		coalesce((SELECT seq FROM outbox WHERE seq <= `+ackedSeq+` ORDER BY seq LIMIT 1 OFFSET ?), 0)`,
		limit-1, limit).Scan(&upTo, &next); err != nil {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: %w", err)
	}
	q, args := `DELETE FROM outbox WHERE seq <= `+ackedSeq, []any(nil)
	if upTo > 0 {
		q, args = `DELETE FROM outbox WHERE seq <= ?`, []any{upTo}
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: %w", err)
	}
	if n == 0 {
		return 0, false, nil // nothing written: no commit needed
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("store: purge acknowledged outbox: %w", err)
	}
	return int(n), next > 0, nil
}
