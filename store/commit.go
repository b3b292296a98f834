package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

// statements are prepared once on the writer's single connection and reused by
// every Commit through tx.StmtContext, which finds them already prepared there.
type statements struct {
	staff, state, health, visit, epr, counter, auditHead *sql.Stmt
	event, alarm, audit, outbox                          multiInsert
}

// rowsPerInsert is how many rows one multi-row INSERT carries. Per statement,
// database/sql and the driver cost about as much as SQLite's work for a row, so a
// storm's inserts go rowsPerInsert at a time.
const rowsPerInsert = 20

// multiInsert inserts rows into one table with a statement for rowsPerInsert rows
// and one for a single row (the remainder).
type multiInsert struct {
	width     int // columns per row
	one, many *sql.Stmt
}

// prepare prepares "INSERT INTO table (columns) VALUES (?,...),... tail" for one
// and for rowsPerInsert rows; tail may be an upsert clause, applied row by row.
func (m *multiInsert) prepare(ctx context.Context, w *sql.DB, table, columns, tail string) error {
	m.width = strings.Count(columns, ",") + 1
	row := "(?" + strings.Repeat(",?", m.width-1) + ")"
	head := "INSERT INTO " + table + " (" + columns + ") VALUES "
	var err error
	if m.one, err = w.PrepareContext(ctx, head+row+tail); err != nil {
		return err
	}
	m.many, err = w.PrepareContext(ctx, head+row+strings.Repeat(","+row, rowsPerInsert-1)+tail)
	return err
}

// exec inserts the rows whose values args holds back to back (width values each)
// and returns the rowid of the last one.
func (m *multiInsert) exec(ctx context.Context, tx *sql.Tx, args []any) (last int64, err error) {
	var many, one *sql.Stmt
	for len(args) > 0 {
		var st *sql.Stmt
		n := rowsPerInsert * m.width
		if len(args) >= n {
			if many == nil {
				many = tx.StmtContext(ctx, m.many)
			}
			st = many
		} else {
			if one == nil {
				one = tx.StmtContext(ctx, m.one)
			}
			st, n = one, m.width
		}
		res, err := st.ExecContext(ctx, args[:n]...)
		if err != nil {
			return 0, err
		}
		if last, err = res.LastInsertId(); err != nil {
			return 0, err
		}
		args = args[n:]
	}
	return last, nil
}

func (s *statements) prepare(ctx context.Context, w *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.staff, `INSERT INTO staff (` + staffColumns + `) VALUES (?,?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, phone = excluded.phone,
			email = excluded.email, roles = excluded.roles, zone = excluded.zone,
			secret_hash = excluded.secret_hash`},
		{&s.state, `INSERT INTO staff_state (` + stateColumns + `) VALUES (?,?,?,?,?,?,?,?,?)
			ON CONFLICT (staff_id) DO UPDATE SET on_duty = excluded.on_duty,
			availability = excluded.availability, last_offered_at = excluded.last_offered_at,
			pos_lat = excluded.pos_lat, pos_lon = excluded.pos_lon, pos_floor = excluded.pos_floor,
			pos_accuracy_m = excluded.pos_accuracy_m, pos_at = excluded.pos_at`},
		{&s.health, `INSERT INTO health (` + healthColumns + `) VALUES (?,?,?,?,?)
			ON CONFLICT (transmitter_id) DO UPDATE SET last_seen = excluded.last_seen,
			battery = excluded.battery, link_quality = excluded.link_quality, online = excluded.online`},
		{&s.visit, `INSERT INTO visits (` + visitColumns + `) VALUES (?,?,?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET staff_id = excluded.staff_id, room = excluded.room,
			resident = excluded.resident, start_at = excluded.start_at, end_at = excluded.end_at,
			alarm_id = excluded.alarm_id, note = excluded.note`},
		{&s.epr, `INSERT INTO epr_records (` + eprColumns + `) VALUES (?,?,?,?) ON CONFLICT DO NOTHING`},
		{&s.counter, `UPDATE meta SET value = ? WHERE key = 'alarm_counter'`},
		// The audit head, in the same transaction as each audit insert: deleting the
		// table's tail cannot reach it, so VerifyAudit sees a truncation (even after
		// a restart). The hash is stored as a blob (the column has INTEGER affinity).
		{&s.auditHead, `INSERT INTO meta (key, value) VALUES ('audit_head_seq', ?), ('audit_head_hash', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`},
	} {
		st, err := w.PrepareContext(ctx, p.query)
		if err != nil {
			return err
		}
		*p.dst = st
	}
	if err := s.event.prepare(ctx, w, "events", eventColumns, ""); err != nil {
		return err
	}
	// id, transmitter, kind and raised_at never change: leaving them out of the
	// update keeps the raised_at index untouched on every transition.
	if err := s.alarm.prepare(ctx, w, "alarms", alarmColumns, ` ON CONFLICT (id) DO UPDATE SET
		priority = excluded.priority, state = excluded.state, updated_at = excluded.updated_at,
		count = excluded.count, policy = excluded.policy, tier = excluded.tier,
		tier_started_at = excluded.tier_started_at, round = excluded.round,
		assignee = excluded.assignee, accepted_at = excluded.accepted_at, offers = excluded.offers,
		deadline = excluded.deadline, forwarded = excluded.forwarded, walk_test = excluded.walk_test, text = excluded.text`); err != nil {
		return err
	}
	if err := s.audit.prepare(ctx, w, "audit", auditColumns, ""); err != nil {
		return err
	}
	return s.outbox.prepare(ctx, w, "outbox", "seq, kind, v, body, at, clock_synced, boot, since_boot_ms, health_of", "")
}

func (s *statements) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.staff, s.state, s.health, s.visit, s.epr, s.counter, s.auditHead,
		s.event.one, s.event.many, s.alarm.one, s.alarm.many, s.audit.one, s.audit.many, s.outbox.one, s.outbox.many} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Commit applies the whole batch in one BEGIN IMMEDIATE transaction, committed with
// synchronous=FULL: when it returns nil all of it is on disk, otherwise none of it.
//
// In order: b.Removals and b.Erasures are applied (see vakt.Erasure); events are
// inserted; alarms, directory entries, staff states,
// transmitter health and visits are upserted as whole rows (except that an alarm's
// transmitter, kind and raised time are kept from its first insert); EPR records are
// inserted (a repeat of the same visit, system and time is ignored); logins are
// kept and ended; b.OutboxAckedUpTo is recorded as the acknowledged seq if higher (the entries up to it
// leave every outbox read at once and the file later, see PurgeAckedOutbox); the directory
// cursor is stored; each b.Outbox entry is queued (At defaults to now); then each
// audit record is chained
// (Seq = previous + 1, At defaults to now, Prev = previous hash, Hash =
// ChainHash) and queued in the outbox too, as kind "audit" with the JSON body
// {"seq","at","actor","action","subject","prev","hash"}, "at" being the RFC 3339
// UTC text the hash covers.
//
// On success the Seq of every b.Outbox entry is set. The cached audit head and
// alarm counter move only when the transaction committed.
func (db *DB) Commit(ctx context.Context, b *vakt.Batch) error {
	if b == nil || b.Empty() {
		return nil
	}
	if err := db.writable(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writable(); err != nil {
		return err
	}

	head, counter := db.head, db.counter
	cur := cursors{outboxSeq: db.outboxSeq}
	seqs := make([]int64, len(b.Outbox))
	var acked int64
	err := db.apply(ctx, b, &head, &counter, &cur, seqs, &acked)
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	db.head, db.counter, db.outboxSeq = head, counter, cur.outboxSeq
	queued := int64(len(b.Outbox) + len(b.Audit))
	if db.localOnly {
		queued = 0
	}
	db.outboxLen.Add(queued - acked)
	for i := range b.Outbox {
		b.Outbox[i].Seq = seqs[i]
	}
	return nil
}

// cursors are the store's cached counters besides the audit head and the alarm
// counter, advanced in a copy during a transaction and kept only if it committed.
type cursors struct {
	outboxSeq int64 // highest outbox seq used (outboxFloor)
	looked    bool  // the table's largest seq was read in this transaction
}

// nextOutbox returns the seq for the next outbox entry and advances c. Once per
// transaction it also looks at the table's largest seq (one cached page), so a row
// written beside the store, such as a test's fixture, is never collided with.
func (c *cursors) nextOutbox(ctx context.Context, tx *sql.Tx) (int64, error) {
	if !c.looked {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM outbox`).Scan(&n); err != nil {
			return 0, fmt.Errorf("outbox seq: %w", err)
		}
		c.outboxSeq, c.looked = max(c.outboxSeq, n), true
	}
	c.outboxSeq++
	return c.outboxSeq, nil
}

// apply runs the transaction, advancing head, counter and cur in the caller's copies.
func (db *DB) apply(ctx context.Context, b *vakt.Batch, head *auditHead, counter *int64, cur *cursors, seqs []int64, acked *int64) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	now := db.now()

	// Removals and erasures come first: the batch's own rows are written after
	// them as given, so a person erased and added again in one batch (a directory
	// page saying so) ends up added. The engine leaves out of the batch the rows it
	// had queued for the person before the erasure.
	for _, id := range b.Removals {
		for _, q := range []struct{ what, query string }{
			{"directory", `DELETE FROM staff WHERE id = ?`},
			{"state", `DELETE FROM staff_state WHERE staff_id = ?`},
			{"sessions", `DELETE FROM sessions WHERE staff_id = ?`},
		} {
			if _, err := tx.ExecContext(ctx, q.query, string(id)); err != nil {
				return fmt.Errorf("remove staff %s: %s: %w", id, q.what, err)
			}
		}
	}
	for _, er := range b.Erasures {
		if er.Staff == "" || er.Pseudonym == "" || er.Pseudonym == er.Staff {
			return fmt.Errorf("erase staff %q: the pseudonym must be set and differ from the id", er.Staff)
		}
		if err := erase(ctx, tx, er.Staff, er.Pseudonym); err != nil {
			return fmt.Errorf("erase staff %s: %w", er.Staff, err)
		}
	}

	if len(b.Events) > 0 {
		args := make([]any, 0, len(b.Events)*db.st.event.width)
		for i := range b.Events {
			e := &b.Events[i]
			args = append(args, string(e.Transmitter), string(e.Kind), int64(e.Priority), e.Source, e.SourceID,
				e.Raw, e.Text, intPtr(e.Battery), intPtr(e.LinkQuality), nanos(e.ReceivedAt),
				string(e.Alarm), e.Duplicate)
		}
		if _, err := db.st.event.exec(ctx, tx, args); err != nil {
			return fmt.Errorf("events: %w", err)
		}
	}

	if len(b.Alarms) > 0 {
		args := make([]any, 0, len(b.Alarms)*db.st.alarm.width)
		next := *counter
		for i := range b.Alarms {
			a := &b.Alarms[i]
			offers, err := encodeOffers(a.Offers)
			if err != nil {
				return fmt.Errorf("alarm %s: offers: %w", a.ID, err)
			}
			args = append(args, string(a.ID), string(a.Transmitter), string(a.Kind), int64(a.Priority),
				string(a.State), nanos(a.RaisedAt), nanos(a.UpdatedAt), int64(a.Count), a.Policy,
				int64(a.Tier), nanos(a.TierStartedAt), int64(a.Round), string(a.Assignee),
				nanos(a.AcceptedAt), offers, nanos(a.Deadline), a.Forwarded, a.WalkTest, a.Text)
			if n, ok := vakt.ParseAlarmID(a.ID); ok && n > next {
				next = n
			}
		}
		if _, err := db.st.alarm.exec(ctx, tx, args); err != nil {
			return fmt.Errorf("alarms: %w", err)
		}
		if next != *counter {
			if _, err := tx.StmtContext(ctx, db.st.counter).ExecContext(ctx, next); err != nil {
				return fmt.Errorf("alarm counter: %w", err)
			}
			*counter = next
		}
	}

	if len(b.Directory) > 0 {
		st := tx.StmtContext(ctx, db.st.staff)
		for i := range b.Directory {
			s := &b.Directory[i]
			roles, err := encodeRoles(s.Roles)
			if err != nil {
				return fmt.Errorf("staff %s: roles: %w", s.ID, err)
			}
			if _, err := st.ExecContext(ctx, s.ID, s.Name, s.Phone, s.Email, roles, s.Zone, s.SecretHash); err != nil {
				return fmt.Errorf("staff %s: %w", s.ID, err)
			}
		}
	}

	if len(b.Staff) > 0 {
		st := tx.StmtContext(ctx, db.st.state)
		for i := range b.Staff {
			s := &b.Staff[i]
			var lat, lon, floor, acc, at any
			if p := s.Position; p != nil {
				lat, lon, floor, acc, at = p.Lat, p.Lon, int64(p.Floor), p.AccuracyM, nanos(p.At)
			}
			if _, err := st.ExecContext(ctx, s.Staff, s.OnDuty, string(s.Availability),
				nanos(s.LastOfferedAt), lat, lon, floor, acc, at); err != nil {
				return fmt.Errorf("staff state %s: %w", s.Staff, err)
			}
		}
	}

	if len(b.Health) > 0 {
		st := tx.StmtContext(ctx, db.st.health)
		for i := range b.Health {
			h := &b.Health[i]
			if _, err := st.ExecContext(ctx, h.Transmitter, nanos(h.LastSeen), intPtr(h.Battery),
				intPtr(h.LinkQuality), h.Online); err != nil {
				return fmt.Errorf("health %s: %w", h.Transmitter, err)
			}
		}
	}

	if len(b.Visits) > 0 {
		st := tx.StmtContext(ctx, db.st.visit)
		for i := range b.Visits {
			v := &b.Visits[i]
			if _, err := st.ExecContext(ctx, v.ID, v.Staff, v.Room, v.Resident, nanos(v.Start),
				nanos(v.End), v.Alarm, v.Note); err != nil {
				return fmt.Errorf("visit %s: %w", v.ID, err)
			}
		}
	}

	if len(b.EPR) > 0 {
		st := tx.StmtContext(ctx, db.st.epr)
		for i := range b.EPR {
			r := &b.EPR[i]
			if _, err := st.ExecContext(ctx, r.Visit, r.System, nanos(r.SentAt), r.Staff); err != nil {
				return fmt.Errorf("epr record of visit %s: %w", r.Visit, err)
			}
		}
	}

	// The outbound queue: rows upserted as given, finished ones deleted, in this
	// transaction, so "routing said forward" is durable with the alarm change.
	for i := range b.Deliveries {
		d := &b.Deliveries[i]
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, alarm_id, target, restore, address,
			zone, kind, text, seq, delivered, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, delivered = excluded.delivered`,
			d.ID, string(d.Alarm), d.Target, d.Restore, d.Address, int64(d.Zone), string(d.Kind), d.Text,
			int64(d.Seq), d.Delivered, d.Created.UnixNano()); err != nil {
			return fmt.Errorf("delivery %s: %w", d.ID, err)
		}
	}
	for _, id := range b.DeliveriesDone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delivery %s done: %w", id, err)
		}
	}

	// Phone logins: kept by token hash; expired ones go whenever logins are written.
	for _, id := range b.SessionsEnded {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE staff_id = ?`, string(id)); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
	}
	if len(b.Sessions) > 0 || len(b.Logouts) > 0 {
		for _, se := range b.Sessions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, staff_id, expires_at) VALUES (?, ?, ?)
				ON CONFLICT (token_hash) DO UPDATE SET staff_id = excluded.staff_id, expires_at = excluded.expires_at`,
				se.TokenHash, string(se.Staff), nanos(se.Expires)); err != nil {
				return fmt.Errorf("session: %w", err)
			}
		}
		for _, h := range b.Logouts {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, h); err != nil {
				return fmt.Errorf("logout: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, now.UnixNano()); err != nil {
			return fmt.Errorf("expired sessions: %w", err)
		}
	}

	if b.OutboxAckedUpTo > 0 {
		// One small write: the watermark. The acknowledged rows stay in the table,
		// invisible to every outbox read (they all read above the watermark), until
		// PurgeAckedOutbox deletes them in small chunks while the writer is idle:
		// deleting 1,000 rows here with secure_delete wrote ~250 zeroed pages and
		// brought the next checkpoint closer, and a press queued behind it waited
		// (P5). What the acknowledgement takes out of the backlog is counted, not
		// written: a read of the seq range, already in the page cache.
		var prev int64
		if err := tx.QueryRowContext(ctx, `SELECT `+ackedSeq).Scan(&prev); err != nil {
			return fmt.Errorf("outbox acknowledgement: %w", err)
		}
		if b.OutboxAckedUpTo > prev {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE seq > ? AND seq <= ?`,
				prev, b.OutboxAckedUpTo).Scan(acked); err != nil {
				return fmt.Errorf("outbox acknowledgement: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'outbox_acked'`,
				b.OutboxAckedUpTo); err != nil {
				return fmt.Errorf("outbox acknowledgement: %w", err)
			}
		}
	}
	if b.DirectoryCursor != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sync_state (key, value) VALUES ('directory_cursor', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, *b.DirectoryCursor); err != nil {
			return fmt.Errorf("directory cursor: %w", err)
		}
	}

	// The batch's outbox entries, then each audit entry, chained and queued too
	// (only the chain when no cloud is configured: Options.LocalOnly).
	var outbox []any
	if !db.localOnly {
		outbox = make([]any, 0, (len(b.Outbox)+len(b.Audit))*db.st.outbox.width)
	}
	for i := range b.Outbox {
		if db.localOnly {
			break
		}
		o := &b.Outbox[i]
		at := o.At
		if at.IsZero() {
			at = now
		}
		body := o.Body
		if body == nil {
			body = []byte{} // body is NOT NULL; an empty entry is still an entry
		}
		v := o.V
		if v <= 0 {
			v = max(vakt.OutboxVersions[o.Kind], 1)
		}
		var healthOf any
		if o.Kind == vakt.OutboxKindHealth {
			var h vakt.OutboxHealth
			if json.Unmarshal(body, &h) == nil && h.Transmitter != "" {
				healthOf = h.Transmitter // unreadable: never compacted
			}
		}
		seq, err := cur.nextOutbox(ctx, tx)
		if err != nil {
			return err
		}
		seqs[i] = seq
		outbox = append(outbox, seq, o.Kind, v, body, nanos(at), b.Origin.ClockSynced, b.Origin.Boot,
			b.Origin.SinceBoot.Milliseconds(), healthOf)
	}
	if len(b.Audit) > 0 {
		audit := make([]any, 0, len(b.Audit)*db.st.audit.width)
		for i := range b.Audit {
			r := &b.Audit[i]
			e := vakt.AuditEntry{Seq: head.seq + 1, At: r.At, Actor: r.Actor, Action: r.Action,
				Subject: r.Subject, Prev: head.hash}
			if e.At.IsZero() {
				e.At = now
			}
			// Stored as nanoseconds, so hash what reads will return.
			e.At = time.Unix(0, e.At.UnixNano()).UTC()
			e.Hash = e.ChainHash()
			audit = append(audit, e.Seq, e.At.UnixNano(), e.Actor, e.Action, e.Subject, e.Prev, e.Hash)
			*head = auditHead{seq: e.Seq, hash: e.Hash}
			if db.localOnly {
				continue
			}
			body, err := json.Marshal(vakt.OutboxAudit{Seq: e.Seq, At: e.At.Format(time.RFC3339Nano),
				Actor: e.Actor, Action: e.Action, Subject: e.Subject, Prev: e.Prev, Hash: e.Hash})
			if err != nil {
				return fmt.Errorf("audit %d: %w", e.Seq, err)
			}
			seq, err := cur.nextOutbox(ctx, tx)
			if err != nil {
				return err
			}
			outbox = append(outbox, seq, vakt.OutboxKindAudit, vakt.OutboxVersions[vakt.OutboxKindAudit], body, e.At.UnixNano(),
				b.Origin.ClockSynced, b.Origin.Boot, b.Origin.SinceBoot.Milliseconds(), nil)
		}
		if _, err := db.st.audit.exec(ctx, tx, audit); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if _, err := tx.StmtContext(ctx, db.st.auditHead).ExecContext(ctx, head.seq, []byte(head.hash)); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
	}
	if len(outbox) > 0 {
		if _, err := db.st.outbox.exec(ctx, tx, outbox); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	if b.CompactHealth {
		// Only health samples a newer sample of the same transmitter supersedes;
		// alarms, audit, visits and EPR records are never dropped.
		// One pass over the health samples' index (ordered by seq, migration 0007)
		// finds each transmitter's newest; a second deletes the rest. Above the
		// watermark only: rows already acknowledged are counted out of the backlog
		// and wait for PurgeAckedOutbox.
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox INDEXED BY outbox_health WHERE health_of IS NOT NULL
			AND seq > `+ackedSeq+`
			AND seq NOT IN (SELECT max(seq) FROM outbox INDEXED BY outbox_health WHERE health_of IS NOT NULL GROUP BY health_of)`)
		if err != nil {
			return fmt.Errorf("outbox health compaction: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("outbox health compaction: %w", err)
		}
		*acked += n
	}

	return tx.Commit()
}
