package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	vakt "github.com/vakt/vakt"
)

// Retention (G5): PurgeRetention deletes history older than the periods the engine
// computed (vakt.RetentionPurge; the clock rules are the engine's, see
// engine/retention.go). Everything runs in one BEGIN IMMEDIATE transaction with the
// "retention.purged" audit entry that counts it, so a crash leaves either all of it
// or none. secure_delete zeroes the freed cells; the TRUNCATE checkpoint that
// removes the old pages from the WAL is the engine's file scrub (PurgePositions),
// which it runs right after a purge that deleted anything.
//
// The audit chain loses its oldest entries only as a prefix. The last deleted entry's
// seq and hash are kept in meta (audit_anchor_seq, audit_anchor_hash) in the same
// transaction, and VerifyAudit starts from them: the first remaining entry must be
// anchor+1 and name the anchor's hash as its prev.

// defaultRetentionLimit is vakt.RetentionPurge.Limit's default.
const defaultRetentionLimit = 10_000

// maxPendingCheck is the longest outbox the acknowledged check reads. It parses
// every queued entry on the engine's loop (≈3 µs each: 100,000 took 300 ms,
// BenchmarkRetentionBacklog), so with a longer backlog (the cloud away) the purge
// of acknowledged kinds waits for the cloud to catch up (RetentionResult.Backlog):
// history is kept longer during an outage, never deleted unacknowledged.
const maxPendingCheck = 10_000

// unsyncedBefore is the time before which a stored time is unsynced (ClockUnsynced).
var unsyncedBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// PurgeRetention implements vakt.RetentionPurger.
func (db *DB) PurgeRetention(ctx context.Context, p vakt.RetentionPurge) (vakt.RetentionResult, error) {
	var res vakt.RetentionResult
	if err := db.writable(); err != nil {
		return res, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writable(); err != nil {
		return res, err
	}
	if p.Limit <= 0 {
		p.Limit = defaultRetentionLimit
	}
	head := db.head
	cur := cursors{outboxSeq: db.outboxSeq}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store: retention: %w", err)
	}
	defer tx.Rollback()
	r := retention{ctx: ctx, tx: tx, p: p, res: &res}
	backlog := p.RequireAcked && db.outboxLen.Load() > db.maxPending
	steps := []struct {
		what string
		cut  time.Time
		run  func(c int64) error
	}{
		{"alarms", p.Alarms, r.alarms},
		{"events", p.Events, r.events},
		{"visits", p.Visits, r.visits},
		{"epr records", p.EPR, r.epr},
		{"audit", p.Audit, r.audit},
	}
	for _, s := range steps {
		if s.cut.IsZero() {
			continue
		}
		if backlog && s.what != "events" {
			res.Backlog = true
			continue
		}
		if err := s.run(s.cut.UnixNano()); err != nil {
			return vakt.RetentionResult{}, fmt.Errorf("store: retention: %s: %w", s.what, err)
		}
	}
	if !p.RequireAcked {
		if err := r.outbox(); err != nil {
			return vakt.RetentionResult{}, fmt.Errorf("store: retention: outbox: %w", err)
		}
	}
	queued := int64(0)
	if res.Total() > 0 {
		rec := vakt.AuditRecord{At: p.At, Actor: "system", Action: "retention.purged",
			Subject: fmt.Sprintf("retention:alarms=%d,events=%d,visits=%d,epr_records=%d,audit=%d,outbox=%d",
				res.Alarms, res.Events, res.Visits, res.EPR, res.Audit, res.Outbox)}
		if head, err = db.appendAudit(ctx, tx, head, &cur, rec, p.Origin); err != nil {
			return vakt.RetentionResult{}, fmt.Errorf("store: retention: audit: %w", err)
		}
		queued = 1
	}
	if err := tx.Commit(); err != nil {
		return vakt.RetentionResult{}, fmt.Errorf("store: retention: %w", err)
	}
	db.head, db.outboxSeq = head, cur.outboxSeq
	db.outboxLen.Add(queued - res.Outbox)
	if res.Total() > 0 {
		db.log.Info("retention purged", "alarms", res.Alarms, "events", res.Events, "visits", res.Visits,
			"epr_records", res.EPR, "audit", res.Audit, "outbox", res.Outbox, "more", res.More)
	}
	return res, nil
}

// appendAudit chains one audit record after head inside tx and queues it for the
// cloud, as Commit does for a batch's records.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, head auditHead, cur *cursors, r vakt.AuditRecord, o vakt.OutboxOrigin) (auditHead, error) {
	e := vakt.AuditEntry{Seq: head.seq + 1, At: r.At, Actor: r.Actor, Action: r.Action, Subject: r.Subject, Prev: head.hash}
	if e.At.IsZero() {
		e.At = db.now()
	}
	e.At = time.Unix(0, e.At.UnixNano()).UTC()
	e.Hash = e.ChainHash()
	if _, err := db.st.audit.exec(ctx, tx, []any{e.Seq, e.At.UnixNano(), e.Actor, e.Action, e.Subject, e.Prev, e.Hash}); err != nil {
		return head, err
	}
	body, err := json.Marshal(vakt.OutboxAudit{Seq: e.Seq, At: e.At.Format(time.RFC3339Nano),
		Actor: e.Actor, Action: e.Action, Subject: e.Subject, Prev: e.Prev, Hash: e.Hash})
	if err != nil {
		return head, err
	}
	seq, err := cur.nextOutbox(ctx, tx)
	if err != nil {
		return head, err
	}
	if _, err := db.st.outbox.exec(ctx, tx, []any{seq, vakt.OutboxKindAudit, vakt.OutboxVersions[vakt.OutboxKindAudit], body,
		e.At.UnixNano(), o.ClockSynced, o.Boot, o.SinceBoot.Milliseconds(), nil}); err != nil {
		return head, err
	}
	if _, err := tx.StmtContext(ctx, db.st.auditHead).ExecContext(ctx, e.Seq, []byte(e.Hash)); err != nil {
		return head, err
	}
	return auditHead{seq: e.Seq, hash: e.Hash}, nil
}

type retention struct {
	ctx  context.Context
	tx   *sql.Tx
	p    vakt.RetentionPurge
	res  *vakt.RetentionResult
	pend *pendingSet
}

// pendingSet is what the outbox still holds, by kind: rows it names are not
// acknowledged by the cloud yet. It is read at most once per purge, and only when
// some row is old enough to go: with the cloud away the outbox may hold a million
// entries, and reading them all each hour would hold the write lock for seconds.
type pendingSet struct {
	alarms, visits, eprVisits map[string]bool
	minAudit                  int64 // 0: no audit entry queued
}

// pending loads the pending set. The body is stored as a blob, and SQLite reads a
// blob given to a JSON function as JSONB, hence the cast.
func (r *retention) pending() (*pendingSet, error) {
	if r.pend != nil {
		return r.pend, nil
	}
	ps := &pendingSet{alarms: map[string]bool{}, visits: map[string]bool{}, eprVisits: map[string]bool{}}
	rows, err := r.tx.QueryContext(r.ctx, `SELECT kind, CASE kind
		WHEN 'alarm' THEN json_extract(CAST(body AS TEXT), '$.id')
		WHEN 'visit' THEN json_extract(CAST(body AS TEXT), '$.id')
		WHEN 'epr' THEN json_extract(CAST(body AS TEXT), '$.visit')
		ELSE json_extract(CAST(body AS TEXT), '$.seq') END
		FROM outbox WHERE kind IN ('alarm', 'visit', 'epr', 'audit') AND seq > `+ackedSeq)
	if err != nil {
		return nil, fmt.Errorf("read pending outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var ref sql.NullString
		if err := rows.Scan(&kind, &ref); err != nil {
			return nil, fmt.Errorf("read pending outbox: %w", err)
		}
		switch kind {
		case vakt.OutboxKindAlarm:
			ps.alarms[ref.String] = true
		case vakt.OutboxKindVisit:
			ps.visits[ref.String] = true
		case vakt.OutboxKindEPR:
			ps.eprVisits[ref.String] = true
		case vakt.OutboxKindAudit:
			if n, err := strconv.ParseInt(ref.String, 10, 64); err == nil && (ps.minAudit == 0 || n < ps.minAudit) {
				ps.minAudit = n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending outbox: %w", err)
	}
	r.pend = ps
	return ps, nil
}

// oldRows selects, in insertion order, the key and a reference (the pending-set
// key) of table's rows whose time x is before the cutoff ?1, among rows matching
// filter. A row with an unsynced time (before ?2) has no known age: it is selected
// only when a row inserted after it (a larger rowid) has a trusted time before the
// cutoff.
func oldRows(key, ref, table, x, filter string) string {
	return `SELECT ` + key + `, ` + ref + ` FROM ` + table + ` WHERE ` + x + ` < ?1 AND ` + filter + ` AND (` + x + ` >= ?2
		OR rowid < (SELECT max(rowid) FROM ` + table + ` WHERE ` + x + ` >= ?2 AND ` + x + ` < ?1 AND ` + filter + `))
		ORDER BY rowid`
}

// keys runs an oldRows query and returns up to Limit keys whose reference the
// cloud has acknowledged (skip reports a pending one; nil: sync off).
func (r *retention) keys(query string, cut int64, skip func(ps *pendingSet, ref string) bool) ([]string, error) {
	rows, err := r.tx.QueryContext(r.ctx, query, cut, unsyncedBefore)
	if err != nil {
		return nil, err
	}
	type row struct{ key, ref string }
	var found []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.key, &x.ref); err != nil {
			rows.Close()
			return nil, err
		}
		found = append(found, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var ps *pendingSet
	if r.p.RequireAcked && len(found) > 0 {
		if ps, err = r.pending(); err != nil {
			return nil, err
		}
	}
	var keys []string
	for _, x := range found {
		if ps != nil && skip(ps, x.ref) {
			continue
		}
		if len(keys) == r.p.Limit {
			r.res.More = true
			break
		}
		keys = append(keys, x.key)
	}
	return keys, nil
}

func (r *retention) exec(query string, args ...any) (int64, error) {
	res, err := r.tx.ExecContext(r.ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// alarms deletes closed alarms last changed before the cutoff, with their events.
func (r *retention) alarms(cut int64) error {
	filter := `state IN ('completed', 'cancelled') AND id NOT IN (SELECT alarm_id FROM deliveries)`
	ids, err := r.keys(oldRows("id", "id", "alarms", "coalesce(updated_at, raised_at, 0)", filter), cut,
		func(ps *pendingSet, id string) bool { return ps.alarms[id] })
	if err != nil {
		return err
	}
	for _, id := range ids {
		n, err := r.exec(`DELETE FROM events WHERE alarm_id = ?`, id)
		if err != nil {
			return err
		}
		r.res.Events += n
		if n, err = r.exec(`DELETE FROM alarms WHERE id = ?`, id); err != nil {
			return err
		}
		r.res.Alarms += n
	}
	return nil
}

// visits deletes visits that ended before the cutoff.
func (r *retention) visits(cut int64) error {
	ids, err := r.keys(oldRows("id", "id", "visits", "end_at", "end_at IS NOT NULL"), cut,
		func(ps *pendingSet, id string) bool { return ps.visits[id] })
	if err != nil {
		return err
	}
	for _, id := range ids {
		n, err := r.exec(`DELETE FROM visits WHERE id = ?`, id)
		if err != nil {
			return err
		}
		r.res.Visits += n
	}
	return nil
}

// epr deletes EPR-sent records sent before the cutoff.
func (r *retention) epr(cut int64) error {
	ids, err := r.keys(oldRows("CAST(rowid AS TEXT)", "visit_id", "epr_records", "coalesce(sent_at, 0)", "1"), cut,
		func(ps *pendingSet, visit string) bool { return ps.eprVisits[visit] })
	if err != nil {
		return err
	}
	for _, id := range ids {
		n, err := r.exec(`DELETE FROM epr_records WHERE rowid = ?`, id)
		if err != nil {
			return err
		}
		r.res.EPR += n
	}
	return nil
}

// prefix walks rows (key, time) in key order from after start and returns the
// keys to delete under the prefix rule: the walk stops at the first row with a
// trusted time at or after the cutoff; rows with an
// unsynced time go only if a trusted row before the cutoff follows them. eligible
// filters which walked rows may go (events: only those that opened no alarm).
func (r *retention) prefix(query string, start, cut int64, eligible func(key int64, extra string) bool) ([]int64, error) {
	const page = 1000
	var del, pending []int64
	cursor := start
	for {
		rows, err := r.tx.QueryContext(r.ctx, query, cursor, page)
		if err != nil {
			return nil, err
		}
		n, done := 0, false
		for rows.Next() {
			var key, t int64
			var extra string
			if err := rows.Scan(&key, &t, &extra); err != nil {
				rows.Close()
				return nil, err
			}
			n++
			cursor = key
			if t >= unsyncedBefore && t >= cut {
				done = true
				break
			}
			if eligible == nil || eligible(key, extra) {
				pending = append(pending, key)
			}
			if t >= unsyncedBefore { // trusted and before the cutoff
				del, pending = append(del, pending...), pending[:0]
				if len(del) >= r.p.Limit {
					del, r.res.More, done = del[:r.p.Limit], true, true
					break
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if done || n < page {
			return del, nil
		}
	}
}

// events deletes events that opened no alarm, received before the cutoff. Events
// are walked by id (their commit order) from the oldest: there is no index on
// received_at (P6), and the purge leaves only kept rows behind it.
func (r *retention) events(cut int64) error {
	del, err := r.prefix(`SELECT id, coalesce(received_at, 0), alarm_id FROM events WHERE id > ? ORDER BY id LIMIT ?`,
		0, cut, func(_ int64, alarm string) bool { return alarm == "" })
	if err != nil {
		return err
	}
	for _, id := range del {
		n, err := r.exec(`DELETE FROM events WHERE id = ?`, id)
		if err != nil {
			return err
		}
		r.res.Events += n
	}
	return nil
}

// audit deletes the oldest audit entries made before the cutoff, as a prefix of the
// chain, never one the cloud has not acknowledged, and records the last deleted
// entry as the anchor verification starts from.
func (r *retention) audit(cut int64) error {
	anchor, _, err := readAuditAnchor(r.ctx, r.tx)
	if err != nil {
		return err
	}
	del, err := r.prefix(`SELECT seq, at, '' FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, anchor, cut, nil)
	if err != nil || len(del) == 0 {
		return err
	}
	if r.p.RequireAcked {
		ps, err := r.pending()
		if err != nil {
			return err
		}
		if ps.minAudit > 0 {
			// Only entries before the first one still queued.
			i := 0
			for i < len(del) && del[i] < ps.minAudit {
				i++
			}
			if del = del[:i]; len(del) == 0 {
				return nil
			}
		}
	}
	upTo := del[len(del)-1]
	var hash string
	if err := r.tx.QueryRowContext(r.ctx, `SELECT hash FROM audit WHERE seq = ?`, upTo).Scan(&hash); err != nil {
		return err
	}
	n, err := r.exec(`DELETE FROM audit WHERE seq <= ?`, upTo)
	if err != nil {
		return err
	}
	r.res.Audit += n
	_, err = r.exec(`INSERT INTO meta (key, value) VALUES ('audit_anchor_seq', ?), ('audit_anchor_hash', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, upTo, []byte(hash))
	return err
}

// outbox, with cloud sync off, deletes outbox entries older than every cutoff set:
// no cloud will take them, and they repeat the rows retention deletes.
func (r *retention) outbox() error {
	var cut int64
	for _, c := range []time.Time{r.p.Alarms, r.p.Events, r.p.Visits, r.p.EPR, r.p.Audit} {
		if c.IsZero() {
			return nil // a kind kept without limit: its entries stay too
		}
		if n := c.UnixNano(); cut == 0 || n < cut {
			cut = n
		}
	}
	// Above the watermark: acknowledged rows are out of the count already and go
	// by PurgeAckedOutbox.
	var acked int64
	if err := r.tx.QueryRowContext(r.ctx, `SELECT `+ackedSeq).Scan(&acked); err != nil {
		return err
	}
	del, err := r.prefix(`SELECT seq, coalesce(at, 0), '' FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, acked, cut, nil)
	if err != nil || len(del) == 0 {
		return err
	}
	n, err := r.exec(`DELETE FROM outbox WHERE seq > ? AND seq <= ?`, acked, del[len(del)-1])
	if err != nil {
		return err
	}
	r.res.Outbox += n
	// The seqs deleted stay used (outboxFloor), also when this emptied the table.
	_, err = r.exec(`INSERT INTO meta (key, value) VALUES ('outbox_floor', ?)
		ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, del[len(del)-1])
	return err
}

// readAuditAnchor returns the seq and hash of the last audit entry retention
// deleted (0, "" when none was).
func readAuditAnchor(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, string, error) {
	var seq sql.NullInt64
	var hash []byte
	err := q.QueryRowContext(ctx, `SELECT (SELECT value FROM meta WHERE key = 'audit_anchor_seq'),
		(SELECT value FROM meta WHERE key = 'audit_anchor_hash')`).Scan(&seq, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("store: read audit anchor: %w", err)
	}
	return seq.Int64, string(hash), nil
}

// newestRecorded returns the newest time among the last audit entry, the last
// event, the newest raised alarm and the newest health sample: each is one index
// or rowid lookup (health is one row per transmitter).
func newestRecorded(ctx context.Context, tx *sql.Tx) (time.Time, error) {
	var n sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT at FROM audit ORDER BY seq DESC LIMIT 1), 0),
		coalesce((SELECT received_at FROM events ORDER BY id DESC LIMIT 1), 0),
		coalesce((SELECT max(raised_at) FROM alarms), 0),
		coalesce((SELECT max(last_seen) FROM health), 0))`).Scan(&n)
	if err != nil || !n.Valid || n.Int64 == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, n.Int64).UTC(), nil
}
